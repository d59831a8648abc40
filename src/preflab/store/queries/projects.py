"""Projects in the store: the one project id rule, find a project, insert one.

The annotation layer (:mod:`preflab.collect.projects`) creates and lists projects for the app
and the CLI; imports that name a new project (``import_chunks(..., create_project=True)``)
create it here with :func:`ensure_project`. Both go through :func:`insert_project`, and both
take the id from the name by :func:`make_project_id`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, insert, or_, select

from preflab.errors import ConflictError
from preflab.records import Project
from preflab.store.tables import ProjectRow, utcnow

__all__ = ["ensure_project", "find_project", "insert_project", "make_project_id"]

_projects = cast(Table, ProjectRow.__table__)
_BY_ID = select(_projects).where(_projects.c.project_id == bindparam("key"))
_BY_NAME = select(_projects).where(_projects.c.name == bindparam("key"))
_TAKEN = select(_projects.c.project_id).where(
    or_(_projects.c.project_id == bindparam("project_id"), _projects.c.name == bindparam("name"))
).limit(1)


def make_project_id(name: str) -> str:
    """Return the URL-safe id of a project named ``name``: its lowercase words joined by "-".

    >>> make_project_id("HH harmless, 2024")
    'hh-harmless-2024'
    >>> make_project_id("!!!")
    'project'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "project"


def find_project(conn: Connection, id_or_name: str) -> Row[Any] | None:
    """Return the ``projects`` row whose id or name is ``id_or_name``, or None."""
    by_id = conn.execute(_BY_ID, {"key": id_or_name}).first()
    if by_id is not None:
        return by_id
    return conn.execute(_BY_NAME, {"key": id_or_name}).first()


def insert_project(conn: Connection, values: Mapping[str, Any]) -> None:
    """Insert a project row (``values`` by column name); never commits.

    Raises:
        ConflictError: a project with that id or name exists.
    """
    taken = conn.execute(_TAKEN, {"project_id": values["project_id"],
                                  "name": values["name"]}).first()
    if taken is not None:
        raise ConflictError(
            f"a project named {values['name']!r} (or with id {values['project_id']!r}) "
            "exists; choose another name.",
            field="name",
            value=values["name"],
        )
    conn.execute(insert(_projects).values({"created_at": utcnow(), **values}))


def ensure_project(conn: Connection, name: str) -> Row[Any]:
    """Return the project named (or with id) ``name``, creating it with defaults if missing.

    Raises:
        ConflictError: another project's name gives the same id.
    """
    row = find_project(conn, name)
    if row is None:
        project = Project(project_id=make_project_id(name), name=name)
        insert_project(conn, {
            "project_id": project.project_id, "name": project.name, "kind": project.kind.value,
            "scale": project.scale, "allow_tie": project.allow_tie,
            "allow_both_bad": project.allow_both_bad, "attributes": list(project.attributes),
            "overlap": project.overlap, "overlap_share": project.overlap_share,
            "gold_share": project.gold_share, "config": project.config,
        })
        row = conn.execute(_BY_ID, {"key": project.project_id}).one()
    return row
