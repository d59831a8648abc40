"""The queue: overlap, priority, gold frequency, reservations, idempotent submits, skips."""

from __future__ import annotations

from datetime import timedelta

import pytest

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.store.tables import Item, JudgmentRow, utcnow

from .conftest import Seeded, add_prompt_items, seed_project

PAIRWISE = {"scale": 5, "preferred": None, "strength": 0, "tie": True, "both_bad": False}


def _uid(name: str) -> str:
    return f"human:{name}"


def _next(seeded: Seeded, user: str, project_id: str | None = None, **kw):
    with seeded.db.write() as s:
        project = collect.get_project(s, project_id or seeded.project_id)
        return collect.next_task(s, project, _uid(user), **kw)


def _submit(seeded: Seeded, task, user: str, key: str, **kw):
    with seeded.db.write() as s:
        return collect.submit_judgment(
            s, assignment_id=task.assignment.assignment_id, user_id=_uid(user), kind="pairwise",
            value=PAIRWISE, idempotency_key=key, guideline_version=1, **kw)


def test_live_reservation_is_served_again(seeded: Seeded) -> None:
    first = _next(seeded, "alice")
    again = _next(seeded, "alice")
    assert first.assignment.assignment_id == again.assignment.assignment_id


def test_two_annotators_share_an_overlap_item_then_it_closes(seeded: Seeded) -> None:
    a = _next(seeded, "alice")
    b = _next(seeded, "bob")
    assert a.item.item_id == b.item.item_id  # the first open item takes both of its slots
    _submit(seeded, a, "alice", "k-alice-1")
    _submit(seeded, b, "bob", "k-bob-1")
    with seeded.db.read() as s:
        item = s.get(Item, a.item.item_id)
        assert (item.done, item.reserved, item.is_open) == (2, 0, False)


def test_last_slot_goes_to_one_annotator_only(seeded: Seeded) -> None:
    with seeded.db.write() as s:
        s.query(Item).filter(Item.project_id == seeded.project_id).update(
            {"target": 1}, synchronize_session=False)
    tasks = [_next(seeded, u) for u in ("alice", "bob")]
    assert tasks[0].item.item_id != tasks[1].item.item_id


def test_every_item_is_served_until_full_then_none(seeded: Seeded) -> None:
    served = []
    for i in range(20):
        t = _next(seeded, "alice")
        if t is None:
            break
        served.append(t.item.item_id)
        _submit(seeded, t, "alice", f"k-{i}-alice")
    assert sorted(served) == sorted(seeded.item_ids)  # each once, then nothing left for alice
    assert _next(seeded, "alice") is None


def test_priority_orders_the_queue(seeded: Seeded) -> None:
    with seeded.db.write() as s:
        s.get(Item, seeded.item_ids[3]).priority = 5
    assert _next(seeded, "alice").item.item_id == seeded.item_ids[3]


def test_reason_explains_the_choice(seeded: Seeded) -> None:
    t = _next(seeded, "alice")
    assert "priority" in t.reason and "0 of 2 judgments done" in t.reason


def test_expired_reservation_frees_the_slot(seeded: Seeded) -> None:
    with seeded.db.write() as s:
        s.query(Item).update({"target": 1}, synchronize_session=False)
    t = _next(seeded, "alice", reservation_seconds=60)
    later = utcnow() + timedelta(seconds=120)
    with seeded.db.write() as s:
        assert collect.expire_reservations(s, later) == 1  # the app's periodic sweep
    b = _next(seeded, "bob", now=later)
    assert b.item.item_id == t.item.item_id  # alice's slot was freed and handed to bob
    with pytest.raises(ConflictError, match="expired"):
        _submit(seeded, t, "alice", "k-late-alice")


def test_when_nothing_is_open_expired_reservations_are_freed_on_demand(seeded: Seeded) -> None:
    with seeded.db.write() as s:
        s.query(Item).filter(Item.item_id != seeded.item_ids[0]).update(
            {"target": 0, "is_open": False}, synchronize_session=False)
        s.get(Item, seeded.item_ids[0]).target = 1
    t = _next(seeded, "alice", reservation_seconds=60)
    assert _next(seeded, "bob") is None  # alice holds the only slot
    b = _next(seeded, "bob", now=utcnow() + timedelta(seconds=120))
    assert b.item.item_id == t.item.item_id


def test_late_submission_is_kept_while_a_slot_is_free(seeded: Seeded) -> None:
    t = _next(seeded, "alice", reservation_seconds=60)
    with seeded.db.write() as s:
        collect.expire_reservations(s, utcnow() + timedelta(seconds=120))
    row, created = _submit(seeded, t, "alice", "k-late-ok")
    assert created and row.item_id == t.item.item_id


def test_same_submission_id_makes_one_judgment(seeded: Seeded) -> None:
    t = _next(seeded, "alice")
    first, created1 = _submit(seeded, t, "alice", "dup-key-1")
    second, created2 = _submit(seeded, t, "alice", "dup-key-1")
    assert (created1, created2) == (True, False)
    assert first.judgment_id == second.judgment_id
    with seeded.db.read() as s:
        assert s.query(JudgmentRow).count() == 1
        assert s.get(Item, t.item.item_id).done == 1


def test_submission_id_of_another_judge_is_refused(seeded: Seeded) -> None:
    _submit(seeded, _next(seeded, "alice"), "alice", "shared-key")
    with pytest.raises(ConflictError, match="another judge"):
        _submit(seeded, _next(seeded, "bob"), "bob", "shared-key")


def test_another_users_task_is_not_found(seeded: Seeded) -> None:
    t = _next(seeded, "alice")
    with pytest.raises(NotFoundError):
        _submit(seeded, t, "bob", "k-bob-steal")


def test_skip_needs_a_reason_and_frees_the_slot(seeded: Seeded) -> None:
    t = _next(seeded, "alice")
    with pytest.raises(InputError, match="why"), seeded.db.write() as s:
        collect.skip_task(s, t.assignment.assignment_id, _uid("alice"), "  ")
    with seeded.db.write() as s:
        collect.skip_task(s, t.assignment.assignment_id, _uid("alice"), "not English")
    with seeded.db.read() as s:
        assert s.get(Item, t.item.item_id).reserved == 0
    assert _next(seeded, "alice").item.item_id != t.item.item_id  # skipped items stay skipped


def test_shown_order_is_recorded_and_varies(seeded: Seeded) -> None:
    orders = set()
    for i in range(len(seeded.item_ids)):
        t = _next(seeded, "alice")
        row, _ = _submit(seeded, t, "alice", f"order-{i}")
        assert row.response_ids == [r.response_id for r in t.responses]
        assert sorted(row.response_ids) == sorted(t.item.response_ids)
        orders.add(tuple(row.response_ids) == tuple(t.item.response_ids))
    assert orders == {True, False}  # both left/right placements occur


def test_gold_items_come_at_the_configured_share(seeded: Seeded) -> None:
    # issue 13: the share holds over each block of GOLD_BLOCK tasks, at seeded places
    pid = seed_project(seeded.db, ProjectCreate(name="Gold", gold_share=0.25), ["alice"])
    add_prompt_items(seeded.db, pid, [(f"G{i}?", [f"ga{i}", f"gb{i}"]) for i in range(6)],
                     is_gold=True, gold_answer={"tie": True})
    add_prompt_items(seeded.db, pid, [(f"N{i}?", [f"na{i}", f"nb{i}"]) for i in range(16)])
    gold = []
    for i in range(collect.gold.GOLD_BLOCK):
        t = _next(seeded, "alice", project_id=pid)
        gold.append(t.item.is_gold)
        _submit(seeded, t, "alice", f"gold-{i}")
    assert sum(gold) == 5
    assert gold != [False, False, False, True] * 5  # not every 4th task
    with seeded.db.read() as s:
        progress = collect.project_progress(s, pid)
    assert progress.gold == [{"judge_id": "human:alice", "correct": 5, "total": 5,
                              "accuracy": 1.0, "flagged": False}]


def test_progress_counts_per_annotator(seeded: Seeded) -> None:
    for user in ("alice", "bob"):
        _submit(seeded, _next(seeded, user), user, f"p-{user}")
    with seeded.db.read() as s:
        p = collect.project_progress(s, seeded.project_id)
    assert (p.items, p.judgments, p.complete_items, p.target_judgments) == (6, 2, 1, 12)
    assert [a["judge_id"] for a in p.per_annotator] == ["human:alice", "human:bob"]
