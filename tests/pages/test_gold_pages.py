"""Gold in Chromium (issue 13): the admin marks an item gold on its page with the keyboard, sees
the gold accuracy plot on the project page, sets a stopping threshold with the keyboard, and
the flagged annotator's work page says why no task comes."""

from __future__ import annotations

from sqlalchemy import update

from preflab import collect
from preflab.collect.core_tables import PROJECTS

from .conftest import Seeded, login


def _answer_gold_wrong(seeded: Seeded, user: str, item_id: str) -> None:
    """Serve ``user`` tasks until the gold item comes; answer it with the other response."""
    with seeded.db.transaction() as conn:
        conn.execute(update(PROJECTS).where(PROJECTS.c.project_id == seeded.project_id)
                     .values(gold_share=0.5))
    for i in range(len(seeded.item_ids)):
        with seeded.db.write() as s:
            t = collect.next_task(s, collect.get_project(s, seeded.project_id), f"human:{user}")
            assert t is not None
            expected = (t.item.gold_answer or {}).get("preferred")
            other = next(r for r in t.item.response_ids if r != expected)
            collect.submit_judgment(
                s, assignment_id=t.assignment.assignment_id, user_id=f"human:{user}",
                kind="pairwise", value={"scale": 5, "preferred": other, "strength": 1,
                                        "tie": False, "both_bad": False},
                idempotency_key=f"gold-page-{i}", guideline_version=1)
            if t.item.item_id == item_id:
                return
    raise AssertionError("the gold item never came")


def test_admin_marks_gold_by_keyboard_and_sees_the_accuracy_plot(page, browser, live_server,
                                                                  seeded: Seeded) -> None:
    item_id = seeded.item_ids[0]
    with seeded.db.connect() as conn:
        second = collect.get_item(conn, item_id).response_ids[1]
    login(page, "admin")
    page.goto(f"/admin/projects/{seeded.project_id}/items/{item_id}")
    assert "Not gold" in page.locator("#gold-state").inner_text()
    page.focus("#gold-form input[name=choice] >> nth=0")
    page.keyboard.press("ArrowDown")  # the second response is the better one
    page.keyboard.press("Tab")  # the JSON box, left empty
    page.keyboard.press("Tab")  # the button
    page.keyboard.press("Enter")
    page.wait_for_selector("#gold-answer")
    assert f'{{"preferred": "{second}"}}' == page.locator("#gold-answer").inner_text()
    with seeded.db.connect() as conn:
        item = collect.get_item(conn, item_id)
    assert (item.is_gold, item.gold_answer) == (True, {"preferred": second})

    _answer_gold_wrong(seeded, "alice", item_id)
    page.goto(f"/admin/projects/{seeded.project_id}#gold")
    assert page.locator("#gold-plot svg circle").count() == 1  # alice's one gold answer
    assert "human:alice" in page.locator("#gold-plot svg").inner_html()
    assert "0 / 1" == page.locator("#gold-annotators tr[data-judge='human:alice'] td.num").first \
        .inner_text()

    page.focus("#gold-threshold input[name=min_accuracy]")
    page.keyboard.press("Control+A")
    page.keyboard.type("75")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # stop serving a flagged annotator
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#gold-annotators tr.flagged")  # the page after the form's redirect
    standing = page.locator("#gold-annotators tr[data-judge='human:alice'] td.standing")
    assert standing.inner_text().startswith("flagged, no new tasks: gold accuracy 0%")
    assert page.locator("#gold-plot svg text", has_text="minimum (75%)").count() == 1  # legend

    context = browser.new_context(base_url=live_server.url)  # alice, in her own browser
    try:
        annotator = context.new_page()
        login(annotator, "alice")
        response = annotator.goto(f"/projects/{seeded.project_id}/work")
        assert response is not None and response.status == 403
        assert "below the minimum 75% after 1 gold items" in annotator.content()
    finally:
        context.close()
