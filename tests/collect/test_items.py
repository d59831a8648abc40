"""Items: adding them once, overlap targets, gold, pages and the assignments of an item."""

from __future__ import annotations

import pytest

from preflab import collect
from preflab.errors import InputError, NotFoundError

from .conftest import Seeded


def test_adding_the_same_items_again_adds_nothing(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        items, total = collect.list_items(conn, seeded.project_id, limit=100)
    specs = [{"prompt_id": i.prompt_id, "response_ids": i.response_ids} for i in items]
    with seeded.db.transaction() as conn:
        added = collect.add_items(conn, seeded.project_id, specs)
    with seeded.db.connect() as conn:
        assert total == collect.list_items(conn, seeded.project_id)[1]
    assert (added, total) == (0, 6)


def test_overlap_is_deterministic_and_reopens_items(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        first = collect.apply_overlap(conn, seeded.project_id, 3, 0.5)
        again = collect.apply_overlap(conn, seeded.project_id, 3, 0.5)
        items, _ = collect.list_items(conn, seeded.project_id, limit=100)
    assert first == again == sum(i.target == 3 for i in items)
    assert all(i.is_open for i in items) and {i.target for i in items} <= {1, 3}
    with pytest.raises(InputError), seeded.db.transaction() as conn:
        collect.apply_overlap(conn, seeded.project_id, 0, 0.5)


def test_mark_gold_keeps_the_answer_and_unknown_items_are_not_found(seeded: Seeded) -> None:
    item_id = seeded.item_ids[0]
    with seeded.db.connect() as conn:
        rid = collect.get_item(conn, item_id).response_ids[1]
    with seeded.db.transaction() as conn:
        collect.mark_gold(conn, item_id, {"preferred": rid})
    with seeded.db.connect() as conn:
        item = collect.get_item(conn, item_id)
    assert item is not None and (item.is_gold, item.gold_answer) == (True, {"preferred": rid})
    with pytest.raises(NotFoundError), seeded.db.transaction() as conn:
        collect.mark_gold(conn, "no-such-item", {})


def test_an_items_assignments_say_who_was_served_and_why(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        alice = collect.get_user_by_username(conn, "alice")
        assert alice is not None
        view = collect.serve_task(conn, seeded.project_id, alice)
    assert view is not None
    with seeded.db.connect() as conn:
        rows = collect.list_assignments(conn, view.task.item.item_id)
    assert [(a.user_id, a.status) for a in rows] == [("human:alice", "reserved")]
    assert rows[0].shown_order == view.task.assignment.shown_order
    assert "highest open priority" in (rows[0].reason or "")
