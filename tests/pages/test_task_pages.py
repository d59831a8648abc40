"""Headless Chromium: log in, judge by keyboard alone, reload mid-task, rank, see progress."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from preflab.collect import ProjectCreate
from preflab.store.tables import JudgmentRow

from .conftest import login, support

pytestmark = pytest.mark.browser


def _judgments(seeded, project_id=None):  # type: ignore[no-untyped-def]
    with seeded.db.read() as s:
        q = select(JudgmentRow)
        if project_id:
            q = q.where(JudgmentRow.project_id == project_id)
        return list(s.scalars(q))


def test_pairwise_by_keyboard_with_reload_keeps_draft(page, seeded) -> None:  # type: ignore[no-untyped-def]
    login(page, "alice")
    page.goto(f"/projects/{seeded.project_id}/work")
    page.wait_for_selector("#task-form")
    task_url = page.url
    sub_id = page.input_value("input[name=submission_id]")
    assert len(sub_id) >= 8
    page.keyboard.press("4")                       # right slightly better
    page.keyboard.press("f")                       # flag harmful
    assert page.is_checked("input[name=choice][value='4']")
    page.reload()                                  # the browser "dies" mid-task
    page.wait_for_selector("#task-form")
    assert page.url == task_url
    assert page.is_checked("input[name=choice][value='4']")
    assert page.is_checked("#flag-harmful")
    assert page.input_value("input[name=submission_id]") == sub_id  # same submission id
    assert page.text_content("#draft-status") == "Draft restored"
    left, right = page.eval_on_selector_all("#responses .response",
                                            "els => els.map(e => e.dataset.rid)")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != task_url)
    rows = _judgments(seeded)
    assert len(rows) == 1
    j = rows[0]
    assert j.response_ids == [left, right]
    assert (j.value["preferred"], j.value["strength"]) == (right, 1)
    assert j.flags == ["harmful"] and j.idempotency_key == sub_id
    assert j.started_at is not None and j.submitted_at >= j.started_at
    # going back and submitting the old page again makes no second judgment
    page.go_back()
    page.goto(f"/projects/{seeded.project_id}/mine")
    assert page.locator("#judgments tbody tr").count() == 1


def test_help_tie_both_bad_and_skip_keys(page, seeded) -> None:  # type: ignore[no-untyped-def]
    login(page, "alice")
    page.goto(f"/projects/{seeded.project_id}/work")
    page.wait_for_selector("#task-form")
    page.keyboard.press("?")
    assert page.is_visible("#help-dialog")
    page.keyboard.press("?")
    assert not page.is_visible("#help-dialog")
    page.keyboard.press("t")
    assert page.is_checked("input[name=choice][value='3']")  # middle of the 5-point scale
    page.keyboard.press("b")
    assert page.is_checked("input[name=choice][value='both_bad']")
    first = page.url
    page.keyboard.press("s")
    assert page.is_visible("#skip-dialog")
    page.keyboard.type("not my language")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != first)
    assert page.url.rsplit("/", 1)[-1] != first.rsplit("/", 1)[-1]
    assert _judgments(seeded) == []


def test_enter_without_a_choice_submits_nothing(page, seeded) -> None:  # type: ignore[no-untyped-def]
    login(page, "alice")
    page.goto(f"/projects/{seeded.project_id}/work")
    page.wait_for_selector("#task-form")
    url = page.url
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.url == url and _judgments(seeded) == []


def test_ranking_by_keyboard_and_by_drag(page, seeded) -> None:  # type: ignore[no-untyped-def]
    pid = support.seed_project(seeded.db, ProjectCreate(name="Rank", kind="ranking"), ["alice"])
    support.add_prompt_items(seeded.db, pid, [("Rank 1?", ["one", "two", "three"]),
                                              ("Rank 2?", ["four", "five", "six"])])
    login(page, "alice")
    page.goto(f"/projects/{pid}/work")
    page.wait_for_selector("#task-form")
    ids = page.eval_on_selector_all("#responses .response", "els => els.map(e => e.dataset.rid)")
    page.keyboard.press("j")        # focus the first response
    page.keyboard.press("3")
    page.keyboard.press("j")
    page.keyboard.press("1")
    page.keyboard.press("j")
    page.keyboard.press("1")        # a tie for first
    url = page.url
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: u != url)
    first = _judgments(seeded, pid)[0]
    assert first.value == {"groups": [[ids[1], ids[2]], [ids[0]]]}
    # second item: drag the last response to the top
    page.wait_for_selector("#task-form")
    ids = page.eval_on_selector_all("#responses .response", "els => els.map(e => e.dataset.rid)")
    cards = page.locator("#responses .response")
    cards.nth(2).drag_to(cards.nth(0), target_position={"x": 5, "y": 5})
    order = page.eval_on_selector_all("#responses .response", "els => els.map(e => e.dataset.rid)")
    assert order == [ids[2], ids[0], ids[1]]
    url = page.url
    page.click("#submit")
    page.wait_for_url(lambda u: u != url)
    second = next(j for j in _judgments(seeded, pid) if j.judgment_id != first.judgment_id)
    assert second.value == {"groups": [[ids[2]], [ids[0]], [ids[1]]]}


def test_admin_sees_progress(page, seeded) -> None:  # type: ignore[no-untyped-def]
    login(page, "alice")
    page.goto(f"/projects/{seeded.project_id}/work")
    page.wait_for_selector("#task-form")
    page.keyboard.press("1")
    url = page.url
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: u != url)
    page.context.clear_cookies()
    login(page, "admin")
    page.goto(f"/admin/projects/{seeded.project_id}")
    assert page.text_content("#stat-judgments").strip() == "1"
    assert "human:alice" in page.text_content("#annotators")
