"""Projects, their members and their guidelines.

A project is created from a validated :class:`ProjectCreate` (the question config, overlap
target and gold share); its id comes from its name by the store's one rule
(:func:`preflab.store.queries.projects.make_project_id`), which imports use too. Functions take
a ``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import (
    GUIDELINES as _G,
    MEMBERS as _M,
    PROJECTS as _P,
    USERS as _U,
)
from preflab.collect.rows import Guideline, Project, User, columns
from preflab.errors import NotFoundError
from preflab.records.models import PAIRWISE_SCALES
from preflab.store.queries.projects import insert_project, make_project_id
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "DEFAULT_SPAN_LABELS",
    "HELPSTEER_ATTRIBUTES",
    "ProjectCreate",
    "add_guideline_version",
    "add_member",
    "build_project",
    "create_project",
    "current_guideline",
    "get_guideline",
    "get_project",
    "is_member",
    "list_members",
    "list_projects",
    "member_guideline_version",
    "project_for_user",
    "set_member_guideline_version",
]

# HelpSteer2 (Wang et al., 2024, arXiv:2406.08673, sec. 2): five attributes on a 0-4 scale.
HELPSTEER_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")

# Span labels of fine-grained feedback, after Wu et al. (2023, arXiv:2306.01693): a span of a
# response is flagged as a factual error, unsafe or irrelevant content.
DEFAULT_SPAN_LABELS = ("factual error", "unsafe", "irrelevant")


class ProjectCreate(BaseModel):
    """A new project's question config, overlap target and gold share."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["pairwise", "ranking", "rating", "binary"] = "pairwise"
    scale: int = 5
    allow_tie: bool = True
    allow_both_bad: bool = True
    attributes: list[str] = Field(default_factory=list)
    overlap: int = Field(default=1, ge=1, le=50)
    overlap_share: float = Field(default=1.0, ge=0.0, le=1.0)
    gold_share: float = Field(default=0.0, ge=0.0, le=0.5)
    reason_tags: list[str] = Field(default_factory=list)
    allow_comment: bool = True
    span_flags: bool = False
    span_labels: list[str] = Field(default_factory=list, max_length=9)
    critique: bool | Literal["required"] = False

    @model_validator(mode="after")
    def _check(self) -> ProjectCreate:
        if self.span_flags and not self.span_labels:
            self.span_labels = list(DEFAULT_SPAN_LABELS)
        labels = [x.strip() for x in self.span_labels]
        if any(not x or len(x) > 60 for x in labels) or len(set(labels)) != len(labels):
            raise ValueError("span_labels must be distinct, non-empty and at most 60 characters")
        self.span_labels = labels
        if self.kind == "pairwise" and self.scale not in PAIRWISE_SCALES:
            raise ValueError(f"scale must be one of {PAIRWISE_SCALES}, got {self.scale}")
        if self.kind == "rating" and not self.attributes:
            self.attributes = list(HELPSTEER_ATTRIBUTES)
        if self.kind == "binary" and not self.reason_tags:
            self.reason_tags = ["unhelpful", "incorrect", "harmful", "off-topic"]
        return self


PROJECT_COLUMNS = columns(Project, _P)
_BY_ID = select(*PROJECT_COLUMNS).where(_P.c.project_id == bindparam("project_id"))
_OF_MEMBER = (
    select(*PROJECT_COLUMNS)
    .join(_M, _M.c.project_id == _P.c.project_id)
    .where(_P.c.project_id == bindparam("project_id"), _M.c.user_id == bindparam("user_id"))
)
_ALL = select(*PROJECT_COLUMNS).order_by(_P.c.created_at, _P.c.project_id)
_ALL_OF_MEMBER = (
    select(*PROJECT_COLUMNS)
    .join(_M, _M.c.project_id == _P.c.project_id)
    .where(_M.c.user_id == bindparam("user_id"))
    .order_by(_P.c.created_at, _P.c.project_id)
)
_MEMBER = select(_M.c.last_guideline_version).where(
    _M.c.project_id == bindparam("project_id"), _M.c.user_id == bindparam("user_id"))
_MEMBERS = (
    select(*columns(User, _U))
    .join(_M, _M.c.user_id == _U.c.user_id)
    .where(_M.c.project_id == bindparam("project_id"))
    .order_by(_U.c.username)
)
_GUIDELINE_COLUMNS = columns(Guideline, _G)
_CURRENT_GUIDELINE = (
    select(*_GUIDELINE_COLUMNS).where(_G.c.project_id == bindparam("project_id"))
    .order_by(_G.c.version.desc()).limit(1)
)
_GUIDELINE = select(*_GUIDELINE_COLUMNS).where(
    _G.c.project_id == bindparam("project_id"), _G.c.version == bindparam("version"))
_LAST_VERSION = select(func.max(_G.c.version)).where(_G.c.project_id == bindparam("project_id"))
_SET_MEMBER_VERSION = (
    update(_M)
    .where(_M.c.project_id == bindparam("b_project_id"), _M.c.user_id == bindparam("b_user_id"))
    .values(last_guideline_version=bindparam("b_version"))
)


def _critique_mode(critique: bool | str) -> str:
    return "required" if critique == "required" else ("optional" if critique else "off")


def build_project(spec: ProjectCreate) -> Project:
    """Return the project row a validated config makes (its id from its name)."""
    return Project(
        project_id=make_project_id(spec.name),
        name=spec.name,
        kind=spec.kind,
        scale=spec.scale if spec.kind == "pairwise" else 0,
        allow_tie=spec.allow_tie,
        allow_both_bad=spec.allow_both_bad,
        attributes=list(spec.attributes),
        overlap=spec.overlap,
        overlap_share=spec.overlap_share,
        gold_share=spec.gold_share,
        config={"reason_tags": spec.reason_tags, "allow_comment": spec.allow_comment,
                "scale_min": 0, "scale_max": 4, "span_flags": spec.span_flags,
                "span_labels": spec.span_labels if spec.span_flags else [],
                "critique": _critique_mode(spec.critique)},
        created_at=utcnow(),
    )


def create_project(session: Session | Connection, spec: ProjectCreate) -> Project:
    """Add the project a validated config describes; return it.

    Raises:
        ConflictError: a project with that id or name exists.
    """
    project = build_project(spec)
    values = {f: getattr(project, f) for f in Project.__dataclass_fields__}
    insert_project(connection_of(session), values)
    return project


def get_project(session: Session | Connection, project_id: str) -> Project:
    """Return a project.

    Raises:
        NotFoundError: no such project.
    """
    row = connection_of(session).execute(_BY_ID, {"project_id": project_id}).first()
    if row is None:
        raise NotFoundError(f"no project {project_id!r}; `preflab projects list` shows them",
                            field="project_id")
    return Project(*row)


def list_projects(session: Session | Connection, user: User | None = None) -> list[Project]:
    """Return all projects, oldest first (for admins or ``user=None``), or the user's own."""
    conn = connection_of(session)
    if user is None or user.role == "admin":
        rows = conn.execute(_ALL)
    else:
        rows = conn.execute(_ALL_OF_MEMBER, {"user_id": user.user_id})
    return [Project(*r) for r in rows]


def project_for_user(
    session: Session | Connection, project_id: str, user: User
) -> Project | None:
    """Return the project if ``user`` may see it (admins: any; others: members), else None."""
    conn = connection_of(session)
    if user.role == "admin":
        row = conn.execute(_BY_ID, {"project_id": project_id}).first()
    else:
        row = conn.execute(_OF_MEMBER, {"project_id": project_id,
                                        "user_id": user.user_id}).first()
    return None if row is None else Project(*row)


def add_member(session: Session | Connection, project_id: str, user_id: str) -> None:
    """Make a user a member of a project (no-op if already one)."""
    conn = connection_of(session)
    if conn.execute(_MEMBER, {"project_id": project_id, "user_id": user_id}).first() is None:
        conn.execute(insert(_M).values(project_id=project_id, user_id=user_id))


def is_member(session: Session | Connection, project_id: str, user_id: str) -> bool:
    """Return whether the user is a member of the project."""
    conn = connection_of(session)
    return conn.execute(_MEMBER, {"project_id": project_id, "user_id": user_id}).first() is not None


def list_members(session: Session | Connection, project_id: str) -> list[User]:
    """Return the project's members ordered by username."""
    return [User(*r) for r in connection_of(session).execute(_MEMBERS, {"project_id": project_id})]


def add_guideline_version(
    session: Session | Connection, project_id: str, text: str, author: str | None
) -> Guideline:
    """Store ``text`` as the project's next guideline version and return it."""
    conn = connection_of(session)
    last = conn.execute(_LAST_VERSION, {"project_id": project_id}).scalar()
    row = Guideline(project_id=project_id, version=(last or 0) + 1, text=text,
                    created_at=utcnow(), author=author)
    conn.execute(insert(_G).values(project_id=project_id, version=row.version, text=text,
                                   created_at=row.created_at, author=author))
    return row


def current_guideline(session: Session | Connection, project_id: str) -> Guideline | None:
    """Return the project's newest guideline version, or None."""
    row = connection_of(session).execute(_CURRENT_GUIDELINE, {"project_id": project_id}).first()
    return None if row is None else Guideline(*row)


def get_guideline(session: Session | Connection, project_id: str, version: int) -> Guideline | None:
    """Return one guideline version, or None."""
    row = connection_of(session).execute(_GUIDELINE, {"project_id": project_id,
                                                      "version": version}).first()
    return None if row is None else Guideline(*row)


def member_guideline_version(
    session: Session | Connection, project_id: str, user_id: str
) -> int | None:
    """Return the guideline version the user last worked under in this project."""
    return connection_of(session).execute(_MEMBER, {"project_id": project_id,
                                                    "user_id": user_id}).scalar()


def set_member_guideline_version(
    session: Session | Connection, project_id: str, user_id: str, version: int | None
) -> None:
    """Record the guideline version the user works under now (a member row if none yet)."""
    conn = connection_of(session)
    params = {"b_project_id": project_id, "b_user_id": user_id, "b_version": version}
    if conn.execute(_SET_MEMBER_VERSION, params).rowcount == 0:
        conn.execute(insert(_M).values(project_id=project_id, user_id=user_id,
                                       last_guideline_version=version))
