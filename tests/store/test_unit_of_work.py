"""Units of work commit at the end and roll back on errors."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from preflab.collect import list_projects as collect_list_projects
from preflab.store.queries import ensure_project
from preflab.store.tables import ProjectRow
from preflab.store.unit_of_work import read_scope, session_scope, write_scope


def list_projects(engine: Engine) -> list:
    """The projects' rows, oldest first (the annotation layer's read)."""
    with read_scope(engine) as conn:
        return collect_list_projects(conn)


def test_write_scope_commits_when_the_block_ends(engine: Engine) -> None:
    with write_scope(engine) as conn:
        ensure_project(conn, "one")
    assert ["one"] == [p.name for p in list_projects(engine)]


def test_write_scope_rolls_back_everything_on_error(engine: Engine) -> None:
    with pytest.raises(KeyError), write_scope(engine) as conn:
        ensure_project(conn, "one")
        ensure_project(conn, "two")
        raise KeyError("boom")
    assert [] == list_projects(engine)


def test_session_scope_commits_orm_objects_and_rolls_back_on_error(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(ProjectRow(project_id="p1", name="one"))
    with pytest.raises(ValueError), session_scope(engine) as session:
        session.add(ProjectRow(project_id="p2", name="two"))
        session.flush()
        raise ValueError("boom")
    with read_scope(engine) as conn:
        assert 1 == conn.execute(select(func.count()).select_from(ProjectRow.__table__)).scalar()
