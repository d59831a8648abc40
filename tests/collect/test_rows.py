"""The rows of the annotation layer: frozen, slotted, and the same type from every read."""

from __future__ import annotations

import dataclasses

import pytest

from preflab import collect
from preflab.collect import rows
from preflab.store.tables import Assignment, Item, JudgmentRow, ProjectRow, User

from .conftest import Seeded


@pytest.mark.parametrize(("row_type", "table"), [
    (rows.User, User), (rows.Project, ProjectRow), (rows.Item, Item),
    (rows.Assignment, Assignment), (rows.Judgment, JudgmentRow)])
def test_each_row_has_its_tables_columns(row_type: type, table: type) -> None:
    names = [f.name for f in dataclasses.fields(row_type)]
    assert sorted(names) == sorted(c.name for c in table.__table__.c)


def test_a_served_task_is_made_of_frozen_slotted_rows(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        alice = collect.get_user_by_username(conn, "alice")
        assert alice is not None
        view = collect.serve_task(conn, seeded.project_id, alice)
        again = collect.serve_task(conn, seeded.project_id, alice)  # the live one, resumed
        shown = collect.show_task(conn, view.task.assignment.assignment_id, alice)
    assert view is not None and again is not None
    parts = [alice, view, view.task, view.project, view.task.assignment, view.task.item,
             view.task.prompt, *view.task.responses]
    for part in parts:
        assert dataclasses.is_dataclass(part) and not hasattr(part, "__dict__"), part
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, dataclasses.fields(part)[0].name, None)
    assert again.task.assignment.assignment_id == view.task.assignment.assignment_id
    assert shown.task == again.task and shown.guideline_version == view.guideline_version == 1


def test_the_layers_public_names_all_exist() -> None:
    missing = [name for name in collect.__all__ if not hasattr(collect, name)]
    assert [] == missing and "serve_task" in collect.__all__
