"""Projects: find, create and list."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select

from preflab.errors import ConflictError
from preflab.records import Project
from preflab.store.queries.scope import reading
from preflab.store.tables import ProjectRow, utcnow

__all__ = ["create_project", "ensure_project", "find_project", "list_projects", "make_project_id"]

_projects = ProjectRow.__table__


def make_project_id(name: str) -> str:
    """Return a readable, stable id for a project name (a slug plus a short hash).

    >>> make_project_id("HH harmless, 2024")
    'hh-harmless-2024-c19b4e0d'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "project"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def find_project(conn: Connection, id_or_name: str) -> Row[Any] | None:
    """Return the ``projects`` row whose id or name is ``id_or_name``, or None."""
    by_id = conn.execute(select(_projects).where(_projects.c.project_id == id_or_name)).first()
    if by_id is not None:
        return by_id
    return conn.execute(select(_projects).where(_projects.c.name == id_or_name)).first()


def create_project(conn: Connection, project: Project) -> None:
    """Insert ``project``; never commits.

    Raises:
        ConflictError: a project with that id or name exists.
    """
    if find_project(conn, project.project_id) or find_project(conn, project.name):
        raise ConflictError(
            f"a project named {project.name!r} (or with id {project.project_id!r}) exists; "
            "choose another name.",
            field="name",
            value=project.name,
        )
    conn.execute(
        insert(ProjectRow).values(
            project_id=project.project_id,
            name=project.name,
            kind=project.kind.value,
            scale=project.scale,
            allow_tie=project.allow_tie,
            allow_both_bad=project.allow_both_bad,
            attributes=list(project.attributes),
            overlap=project.overlap,
            overlap_share=project.overlap_share,
            gold_share=project.gold_share,
            config=project.config,
            created_at=utcnow(),
        )
    )


def ensure_project(conn: Connection, name: str) -> Row[Any]:
    """Return the project named (or with id) ``name``, creating it with defaults if missing."""
    row = find_project(conn, name)
    if row is None:
        create_project(conn, Project(project_id=make_project_id(name), name=name))
        row = find_project(conn, name)
        assert row is not None
    return row


def list_projects(bind: Engine | Connection) -> list[Project]:
    """Return every project, oldest first."""
    with reading(bind) as conn:
        rows = conn.execute(select(_projects).order_by(_projects.c.created_at, _projects.c.name))
        out = []
        for r in rows.mappings():
            data = {k: r[k] for k in Project.model_fields if k in r}
            if isinstance(data.get("config"), str):
                data["config"] = json.loads(data["config"])
            out.append(Project.model_validate(data))
        return out
