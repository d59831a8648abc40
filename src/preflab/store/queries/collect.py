"""Queries of the annotation app: users, tokens, projects, guidelines, items and progress.

The queue itself (serving, reservations, submissions, skips) lives in
:mod:`preflab.store.queries.queue` and is re-exported here, so the app imports one module.
Functions take a SQLAlchemy ``Session`` and never commit: the caller's unit of work does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.store.items import make_item_id, make_response_ids_key
from preflab.store.queries.queue import (
    SUBMIT_COLUMNS,
    Task,
    expire_reservations,
    find_judgment_by_key,
    get_task,
    next_task,
    skip_task,
    submit_judgment,
)
from preflab.store.queries.scope import connection_of
from preflab.store.tables import (
    ApiToken,
    Assignment,
    GuidelineRow,
    Item,
    JudgeRow,
    JudgmentRow,
    ProjectMember,
    ProjectRow,
    ResponseRow,
    User,
    utcnow,
)

__all__ = [
    "ROLES",
    "Progress",
    "SubmitContext",
    "Task",
    "add_guideline_version",
    "add_items",
    "add_member",
    "apply_overlap",
    "assignment_counts",
    "create_api_token",
    "create_project",
    "create_user",
    "current_guideline",
    "expire_reservations",
    "find_judgment_by_key",
    "get_guideline",
    "get_project",
    "get_task",
    "get_user",
    "get_user_by_token_hash",
    "get_user_by_username",
    "imported_answers",
    "is_member",
    "list_items",
    "list_judgments",
    "list_members",
    "list_projects",
    "list_users",
    "load_guideline_state",
    "load_project_for_user",
    "load_project_state",
    "load_response_texts",
    "load_submit_context",
    "load_user",
    "load_user_by_token_hash",
    "make_item_id",
    "mark_gold",
    "member_guideline_version",
    "next_task",
    "project_for_user",
    "project_progress",
    "set_member_guideline_version",
    "set_user_active",
    "skip_task",
    "submit_judgment",
]

ROLES = ("admin", "annotator")


def _aware(ts: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; treat them as the UTC they were stored as."""
    if ts is None or ts.tzinfo is not None:
        return ts
    from datetime import UTC

    return ts.replace(tzinfo=UTC)


# ---------------------------------------------------------------- users and tokens


def create_user(
    session: Session,
    username: str,
    password_hash: str,
    *,
    role: str = "annotator",
    vendor: str | None = None,
    team: str | None = None,
) -> User:
    """Add a user (and the human judge whose id is the user's id); return the new row.

    Raises:
        InputError: unknown role or empty username.
        ConflictError: the username is taken.
    """
    username = username.strip()
    if not username or len(username) > 200 or any(c.isspace() for c in username):
        raise InputError(
            f"username must be 1-200 characters without spaces, got {username!r}",
            field="username",
        )
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    if get_user_by_username(session, username) is not None:
        raise ConflictError(f"user {username!r} already exists", field="username")
    user = User(
        user_id=f"human:{username}",
        username=username,
        password_hash=password_hash,
        role=role,
        vendor=vendor,
        team=team,
        is_active=True,
    )
    session.add(user)
    if session.get(JudgeRow, user.user_id) is None:
        session.add(
            JudgeRow(judge_id=user.user_id, kind="human", name=username, vendor=vendor, team=team)
        )
    session.flush()
    return user


def get_user(session: Session, user_id: str) -> User | None:
    """Return the user with this id, or None."""
    return session.get(User, user_id)


def get_user_by_username(session: Session, username: str) -> User | None:
    """Return the user with this username, or None."""
    return session.scalars(select(User).where(User.username == username)).first()


def list_users(session: Session, *, offset: int = 0, limit: int = 100) -> list[User]:
    """Return users ordered by username, one page."""
    q = select(User).order_by(User.username).offset(offset).limit(limit)
    return list(session.scalars(q))


def set_user_active(session: Session, username: str, is_active: bool) -> User:
    """Enable or disable a user; a disabled user cannot log in or use tokens.

    Raises:
        NotFoundError: no such user.
    """
    user = get_user_by_username(session, username)
    if user is None:
        raise NotFoundError(f"no user named {username!r}", field="username")
    user.is_active = is_active
    session.flush()
    return user


def create_api_token(session: Session, user_id: str, name: str, token_hash: str) -> ApiToken:
    """Store the hash of a new API token for a user."""
    row = ApiToken(token_hash=token_hash, user_id=user_id, name=name)
    session.add(row)
    session.flush()
    return row


def get_user_by_token_hash(session: Session, token_hash: str) -> User | None:
    """Return the active user owning an unrevoked token with this hash, or None."""
    q = (
        select(User)
        .join(ApiToken, ApiToken.user_id == User.user_id)
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked.is_(False))
    )
    return session.scalars(q).first()


# Core statements for the per-request look-ups (built once: no ORM session, no statement
# building per request). They return detached rows built from the columns.
_USERS = User.__table__
_PROJECTS = ProjectRow.__table__
_MEMBERS = ProjectMember.__table__
_USER_BY_TOKEN = (
    select(_USERS)
    .join(ApiToken.__table__, ApiToken.__table__.c.user_id == _USERS.c.user_id)
    .where(ApiToken.__table__.c.token_hash == bindparam("token_hash"),
           ApiToken.__table__.c.revoked == False)
    .limit(1)
)
_USER_BY_ID = select(_USERS).where(_USERS.c.user_id == bindparam("user_id"))
_PROJECT_BY_ID = select(_PROJECTS).where(_PROJECTS.c.project_id == bindparam("project_id"))
_PROJECT_OF_MEMBER = (
    select(_PROJECTS)
    .join(_MEMBERS, _MEMBERS.c.project_id == _PROJECTS.c.project_id)
    .where(_PROJECTS.c.project_id == bindparam("project_id"),
           _MEMBERS.c.user_id == bindparam("user_id"))
)


def load_user_by_token_hash(
    conn: Connection, token_hash: str, *, as_row: bool = False
) -> User | None:
    """Return the owner of an unrevoked token with this hash (detached), or None.

    With ``as_row``, the result row itself (same attributes, read-only, no ORM instance built).
    """
    row = conn.execute(_USER_BY_TOKEN, {"token_hash": token_hash}).first()
    if row is None or as_row:
        return row  # type: ignore[return-value]
    return User(**row._mapping)


def load_user(conn: Connection, user_id: str, *, as_row: bool = False) -> User | None:
    """Return the user with this id (detached), or None (``as_row``: the row itself)."""
    row = conn.execute(_USER_BY_ID, {"user_id": user_id}).first()
    if row is None or as_row:
        return row  # type: ignore[return-value]
    return User(**row._mapping)


def load_project_for_user(conn: Connection, project_id: str, user: User) -> ProjectRow | None:
    """Like :func:`project_for_user`, on a plain connection; the project comes back detached."""
    if user.role == "admin":
        row = conn.execute(_PROJECT_BY_ID, {"project_id": project_id}).first()
    else:
        row = conn.execute(_PROJECT_OF_MEMBER,
                           {"project_id": project_id, "user_id": user.user_id}).first()
    return None if row is None else ProjectRow(**row._mapping)


_GUIDELINES = GuidelineRow.__table__
_ASSIGNMENTS = Assignment.__table__
_GUIDELINE_STATE = (
    select(
        _GUIDELINES.c.version,
        _GUIDELINES.c.text,
        select(_MEMBERS.c.last_guideline_version)
        .where(_MEMBERS.c.project_id == bindparam("project_id"),
               _MEMBERS.c.user_id == bindparam("user_id"))
        .scalar_subquery().label("last_version"),
    )
    .where(_GUIDELINES.c.project_id == bindparam("project_id"))
    .order_by(_GUIDELINES.c.version.desc())
    .limit(1)
)
_GUIDELINE_TEXT = select(_GUIDELINES.c.text).where(
    _GUIDELINES.c.project_id == bindparam("project_id"),
    _GUIDELINES.c.version == bindparam("version"),
)
_ITEMS = Item.__table__
_SUBMIT_CONTEXT = (
    select(
        *SUBMIT_COLUMNS,
        select(func.max(_GUIDELINES.c.version))
        .where(_GUIDELINES.c.project_id == _ASSIGNMENTS.c.project_id)
        .scalar_subquery().label("ctx_version"),
        select(_MEMBERS.c.last_guideline_version)
        .where(_MEMBERS.c.project_id == _ASSIGNMENTS.c.project_id,
               _MEMBERS.c.user_id == _ASSIGNMENTS.c.user_id)
        .scalar_subquery().label("ctx_last_version"),
        select(_MEMBERS.c.user_id)
        .where(_MEMBERS.c.project_id == _ASSIGNMENTS.c.project_id,
               _MEMBERS.c.user_id == _ASSIGNMENTS.c.user_id)
        .exists().label("ctx_is_member"),
        *(c.label(f"p_{c.name}") for c in _PROJECTS.c),
        select(JudgmentRow.__table__.c.judge_id)
        .where(JudgmentRow.__table__.c.idempotency_key == bindparam("key"))
        .limit(1)
        .scalar_subquery().label("ctx_key_judge"),
    )
    .join_from(_ASSIGNMENTS, _ITEMS, _ITEMS.c.item_id == _ASSIGNMENTS.c.item_id)
    .join(_PROJECTS, _PROJECTS.c.project_id == _ASSIGNMENTS.c.project_id)
    .where(_ASSIGNMENTS.c.assignment_id == bindparam("assignment_id"))
)


@dataclass(frozen=True, slots=True)
class SubmitContext:
    """What a submission needs besides the judgment itself, read in one statement."""

    user_id: str
    shown_order: list[str]
    project: ProjectRow
    guideline_version: int | None  # the project's current version
    last_guideline_version: int | None  # the version the user last worked under
    is_member: bool
    assignment: Any  # the row of queue.SUBMIT_COLUMNS, for submit_judgment(assignment=…)
    key_judge_id: str | None = None  # who stored a judgment under the submission id, if any


_PROJECT_LABELS = [(c.name, f"p_{c.name}") for c in _PROJECTS.c]


def load_submit_context(
    conn: Connection, assignment_id: str, submission_id: str | None = None
) -> SubmitContext | None:
    """Return the assignment's owner and order, its project (read-only, attributes as on
    :class:`ProjectRow`), guideline versions and, given a submission id, the judge who already
    used it; None for no such assignment."""
    row = conn.execute(_SUBMIT_CONTEXT, {"assignment_id": assignment_id,
                                         "key": submission_id}).first()
    if row is None:
        return None
    m = row._mapping
    project = SimpleNamespace(**{name: m[label] for name, label in _PROJECT_LABELS})
    return SubmitContext(row.user_id, list(row.shown_order or []), project,  # type: ignore[arg-type]
                         m["ctx_version"], m["ctx_last_version"], bool(m["ctx_is_member"]), row,
                         m["ctx_key_judge"])


_RESPONSE_TEXTS = select(ResponseRow.__table__.c.response_id, ResponseRow.__table__.c.content).where(
    ResponseRow.__table__.c.response_id.in_(bindparam("ids", expanding=True))
)


def load_response_texts(conn: Connection, response_ids: Sequence[str]) -> dict[str, str]:
    """Return response id → content for the stored ones among ``response_ids``."""
    if not response_ids:
        return {}
    return {rid: text for rid, text in conn.execute(_RESPONSE_TEXTS, {"ids": list(response_ids)})}


def _with_guideline_state(q: Any) -> Any:
    g, m, p, a = _GUIDELINES, _MEMBERS, _PROJECTS, Assignment.__table__
    m = m.alias("m_last")  # not the members table the outer query may join
    latest = select(g.c.version, g.c.text).where(g.c.project_id == p.c.project_id)
    latest = latest.order_by(g.c.version.desc()).limit(1).correlate(p)
    return q.add_columns(
        latest.with_only_columns(g.c.version).scalar_subquery().label("g_version"),
        latest.with_only_columns(g.c.text).scalar_subquery().label("g_text"),
        select(m.c.last_guideline_version)
        .where(m.c.project_id == p.c.project_id, m.c.user_id == bindparam("user_id"))
        .correlate(p)
        .scalar_subquery().label("g_last"),
        # the user's live reservation in the project, if any (the queue serves it first)
        select(a.c.assignment_id)
        .where(a.c.project_id == p.c.project_id, a.c.user_id == bindparam("user_id"),
               a.c.status == "reserved", a.c.expires_at > bindparam("now"))
        .limit(1)
        .correlate(p)
        .scalar_subquery().label("g_live"),
    )


_PROJECT_STATE_ADMIN = _with_guideline_state(_PROJECT_BY_ID)
_PROJECT_STATE_MEMBER = _with_guideline_state(_PROJECT_OF_MEMBER)


def load_project_state(
    conn: Connection, project_id: str, user: Any, now: datetime | None = None
) -> tuple[Any, tuple[int | None, str, int | None, str | None]] | None:
    """Return the project (a read-only row) if the user may see it, with the guideline state
    :func:`load_guideline_state` returns, in one statement; None for no visible project.

    The row's ``g_live`` is the id of the user's reservation in the project still live at
    ``now`` (default: now), or None.
    """
    stmt = _PROJECT_STATE_ADMIN if user.role == "admin" else _PROJECT_STATE_MEMBER
    row = conn.execute(stmt, {"project_id": project_id, "user_id": user.user_id,
                              "now": now or utcnow()}).first()
    if row is None:
        return None
    return row, _guideline_state(conn, project_id, row.g_version, row.g_text, row.g_last)


def _guideline_state(
    conn: Connection, project_id: str, current: int | None, text: str | None, last: int | None
) -> tuple[int | None, str, int | None, str | None]:
    """Complete ``(current, text, last)`` with the last version's text when it differs."""
    if current is None:
        return None, "", None, None
    old_text: str | None = None
    if last is not None and last != current:
        old = conn.execute(_GUIDELINE_TEXT, {"project_id": project_id, "version": last}).scalar()
        old_text = old or ""
    return current, text or "", last, old_text


def load_guideline_state(
    conn: Connection, project_id: str, user_id: str
) -> tuple[int | None, str, int | None, str | None]:
    """Return ``(current version, its text, user's last version, that version's text)``.

    The last version's text is read only when it differs from the current one (for the diff).
    """
    row = conn.execute(_GUIDELINE_STATE, {"project_id": project_id, "user_id": user_id}).first()
    if row is None:
        return None, "", None, None
    return _guideline_state(conn, project_id, *row)


# ---------------------------------------------------------------- projects and members


def create_project(session: Session, project: ProjectRow) -> ProjectRow:
    """Add a project row (built by the caller from a validated config).

    Raises:
        ConflictError: the id or name is taken.
    """
    if session.get(ProjectRow, project.project_id) is not None:
        raise ConflictError(f"project {project.project_id!r} already exists", field="name")
    if session.scalars(select(ProjectRow).where(ProjectRow.name == project.name)).first():
        raise ConflictError(f"a project named {project.name!r} already exists", field="name")
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project_id: str) -> ProjectRow:
    """Return a project.

    Raises:
        NotFoundError: no such project.
    """
    row = session.get(ProjectRow, project_id)
    if row is None:
        raise NotFoundError(f"no project {project_id!r}", field="project_id")
    return row


def list_projects(session: Session, user: User | None = None) -> list[ProjectRow]:
    """Return all projects (admins, ``user=None``) or the projects the user is a member of."""
    q = select(ProjectRow).order_by(ProjectRow.created_at, ProjectRow.project_id)
    if user is not None and user.role == "annotator":
        q = q.join(ProjectMember, ProjectMember.project_id == ProjectRow.project_id).where(
            ProjectMember.user_id == user.user_id
        )
    return list(session.scalars(q))


def add_member(session: Session, project_id: str, user_id: str) -> None:
    """Make a user a member of a project (no-op if already one)."""
    if session.get(ProjectMember, (project_id, user_id)) is None:
        session.add(ProjectMember(project_id=project_id, user_id=user_id))
        session.flush()


def project_for_user(session: Session, project_id: str, user: User) -> ProjectRow | None:
    """Return the project if ``user`` may see it (admins: any; others: members), else None."""
    if user.role == "admin":
        return session.get(ProjectRow, project_id)
    q = (
        select(ProjectRow)
        .join(ProjectMember, ProjectMember.project_id == ProjectRow.project_id)
        .where(ProjectRow.project_id == project_id, ProjectMember.user_id == user.user_id)
    )
    return session.scalars(q).first()


def is_member(session: Session, project_id: str, user_id: str) -> bool:
    """Return whether the user is a member of the project."""
    return session.get(ProjectMember, (project_id, user_id)) is not None


def list_members(session: Session, project_id: str) -> list[User]:
    """Return the project's members ordered by username."""
    q = (
        select(User)
        .join(ProjectMember, ProjectMember.user_id == User.user_id)
        .where(ProjectMember.project_id == project_id)
        .order_by(User.username)
    )
    return list(session.scalars(q))


# ---------------------------------------------------------------- guidelines


def add_guideline_version(
    session: Session, project_id: str, text: str, author: str | None
) -> GuidelineRow:
    """Store ``text`` as the project's next guideline version and return it."""
    last = session.scalar(
        select(func.max(GuidelineRow.version)).where(GuidelineRow.project_id == project_id)
    )
    row = GuidelineRow(project_id=project_id, version=(last or 0) + 1, text=text, author=author)
    session.add(row)
    session.flush()
    return row


def current_guideline(session: Session, project_id: str) -> GuidelineRow | None:
    """Return the project's newest guideline version, or None."""
    q = (
        select(GuidelineRow)
        .where(GuidelineRow.project_id == project_id)
        .order_by(GuidelineRow.version.desc())
        .limit(1)
    )
    return session.scalars(q).first()


def get_guideline(session: Session, project_id: str, version: int) -> GuidelineRow | None:
    """Return one guideline version, or None."""
    return session.get(GuidelineRow, (project_id, version))


def member_guideline_version(session: Session, project_id: str, user_id: str) -> int | None:
    """Return the guideline version the user last worked under in this project."""
    row = session.get(ProjectMember, (project_id, user_id))
    return row.last_guideline_version if row else None


_SET_MEMBER_VERSION = (
    update(_MEMBERS)
    .where(_MEMBERS.c.project_id == bindparam("b_project_id"),
           _MEMBERS.c.user_id == bindparam("b_user_id"))
    .values(last_guideline_version=bindparam("b_version"))
)


def set_member_guideline_version(
    session: Session | Connection, project_id: str, user_id: str, version: int | None
) -> None:
    """Record the guideline version the user works under now (a member row if none yet)."""
    conn = connection_of(session)
    params = {"b_project_id": project_id, "b_user_id": user_id, "b_version": version}
    if conn.execute(_SET_MEMBER_VERSION, params).rowcount == 0:
        conn.execute(insert(_MEMBERS).values(project_id=project_id, user_id=user_id,
                                             last_guideline_version=version))


# ---------------------------------------------------------------- items


def add_items(
    session: Session,
    project_id: str,
    items: Sequence[dict[str, Any]],
    *,
    batch_id: str | None = None,
    source: str | None = None,
) -> int:
    """Add annotation items (``prompt_id``, ``response_ids``, optional ``priority``, ``is_gold``,
    ``gold_answer``); items already in the project are left alone. Return how many were added.
    """
    added = 0
    for spec in items:
        rids = list(spec["response_ids"])
        item_id = make_item_id(project_id, spec["prompt_id"], rids)
        if session.get(Item, item_id) is not None:
            continue
        session.add(
            Item(
                item_id=item_id,
                project_id=project_id,
                prompt_id=spec["prompt_id"],
                response_ids=rids,
                response_ids_key=make_response_ids_key(rids),
                is_gold=bool(spec.get("is_gold", False)),
                gold_answer=spec.get("gold_answer"),
                priority=int(spec.get("priority", 0)),
                target=int(spec.get("target", 1)),
                done=0,
                reserved=0,
                is_open=True,
                batch_id=batch_id,
                source=source,
            )
        )
        added += 1
    session.flush()
    return added


def apply_overlap(session: Session, project_id: str, overlap: int, share: float) -> int:
    """Set each item's judgment target: ``overlap`` on a ``share`` of items, 1 on the rest.

    The share is chosen deterministically by item id (a hash), so re-running gives the same
    items. Return how many items got the overlap target.
    """
    if overlap < 1:
        raise InputError(f"overlap must be at least 1, got {overlap}", field="overlap")
    if not 0.0 <= share <= 1.0:
        raise InputError(f"overlap share must be within 0..1, got {share}", field="overlap_share")
    count = 0
    for item in session.scalars(select(Item).where(Item.project_id == project_id)):
        bucket = int(hashlib.sha256(item.item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        item.target = overlap if bucket < share else 1
        count += item.target == overlap
        item.is_open = item.done + item.reserved < item.target
    session.flush()
    return count


def mark_gold(session: Session, item_id: str, answer: dict[str, Any]) -> None:
    """Make an item gold with its expected answer (e.g. ``{"preferred": "r_…"}``)."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFoundError(f"no item {item_id!r}", field="item_id")
    item.is_gold = True
    item.gold_answer = answer
    session.flush()


def list_items(
    session: Session, project_id: str, *, offset: int = 0, limit: int = 50
) -> tuple[list[Item], int]:
    """Return one page of a project's items (queue order) and the total count."""
    total = session.scalar(select(func.count()).where(Item.project_id == project_id)) or 0
    q = (
        select(Item)
        .where(Item.project_id == project_id)
        .order_by(Item.priority.desc(), Item.item_id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(q)), total


# ---------------------------------------------------------------- reading judgments, progress


def list_judgments(
    session: Session,
    project_id: str,
    *,
    judge_id: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[JudgmentRow], int]:
    """Return one page of a project's judgments (newest first), optionally one judge's only."""
    cond = [JudgmentRow.project_id == project_id]
    if judge_id is not None:
        cond.append(JudgmentRow.judge_id == judge_id)
    total = session.scalar(select(func.count()).select_from(JudgmentRow).where(*cond)) or 0
    q = (
        select(JudgmentRow)
        .where(*cond)
        .order_by(JudgmentRow.submitted_at.desc(), JudgmentRow.judgment_id)
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(q)), total


@dataclass(frozen=True, slots=True)
class Progress:
    """Counts for the admin progress page."""

    items: int
    complete_items: int
    target_judgments: int
    judgments: int
    reserved: int
    per_annotator: list[dict[str, Any]]
    per_batch: list[dict[str, Any]]
    gold: list[dict[str, Any]]


def _gold_correct(kind: str, value: dict[str, Any], answer: dict[str, Any]) -> bool:
    if kind == "pairwise":
        if answer.get("tie"):
            return bool(value.get("tie"))
        return value.get("preferred") == answer.get("preferred")
    if kind == "binary":
        return value.get("label") == answer.get("label")
    if kind == "ranking":
        groups = value.get("groups") or []
        return bool(groups) and answer.get("best") in groups[0]
    return False


def project_progress(session: Session, project_id: str) -> Progress:
    """Return progress of a project: items, judgments, per annotator, per batch, gold accuracy.

    Only judgments made in the app count (imported ones have their file as ``source``).
    """
    base = select(
        func.count(),
        func.coalesce(func.sum(Item.target), 0),
        func.coalesce(func.sum(Item.reserved), 0),
    ).where(Item.project_id == project_id, Item.is_gold.is_(False))
    n_items, target, reserved = session.execute(base).one()
    complete = session.scalar(
        select(func.count()).where(
            Item.project_id == project_id, Item.is_gold.is_(False), Item.done >= Item.target
        )
    )
    app_made = (JudgmentRow.project_id == project_id, JudgmentRow.source == "app")
    n_judg = session.scalar(select(func.count()).select_from(JudgmentRow).where(*app_made))
    per_user = session.execute(
        select(
            JudgmentRow.judge_id,
            func.count(),
            func.min(JudgmentRow.submitted_at),
            func.max(JudgmentRow.submitted_at),
        )
        .where(*app_made)
        .group_by(JudgmentRow.judge_id)
        .order_by(JudgmentRow.judge_id)
    ).all()
    skips = dict(
        session.execute(
            select(Assignment.user_id, func.count())
            .where(Assignment.project_id == project_id, Assignment.status == "skipped")
            .group_by(Assignment.user_id)
        ).all()
    )
    per_batch = session.execute(
        select(Item.batch_id, func.count(), func.coalesce(func.sum(Item.done), 0),
               func.coalesce(func.sum(Item.target), 0))
        .where(Item.project_id == project_id, Item.is_gold.is_(False))
        .group_by(Item.batch_id)
        .order_by(Item.batch_id)
    ).all()
    gold_rows = session.execute(
        select(JudgmentRow.judge_id, JudgmentRow.kind, JudgmentRow.value, Item.gold_answer)
        .join(Item, Item.item_id == JudgmentRow.item_id)
        .where(*app_made, Item.is_gold.is_(True))
    ).all()
    gold: dict[str, list[int]] = {}
    for judge_id, kind, value, answer in gold_rows:
        tally = gold.setdefault(judge_id, [0, 0])
        tally[1] += 1
        tally[0] += bool(answer) and _gold_correct(kind, value or {}, answer)
    return Progress(
        items=int(n_items),
        complete_items=int(complete or 0),
        target_judgments=int(target),
        judgments=int(n_judg or 0),
        reserved=int(reserved),
        per_annotator=[
            {"judge_id": j, "judgments": int(n), "skipped": int(skips.get(j, 0)),
             "first": _aware(a), "last": _aware(b)}
            for j, n, a, b in per_user
        ],
        per_batch=[
            {"batch_id": b, "items": int(n), "done": int(d), "target": int(t)}
            for b, n, d, t in per_batch
        ],
        gold=[
            {"judge_id": j, "correct": c, "total": t, "accuracy": c / t if t else None}
            for j, (c, t) in sorted(gold.items())
        ],
    )


def assignment_counts(session: Session, item_id: str) -> list[Assignment]:
    """Return the assignments of one item (for the admin's "why was this served" view)."""
    return list(
        session.scalars(
            select(Assignment).where(Assignment.item_id == item_id).order_by(
                Assignment.reserved_at
            )
        )
    )



def imported_answers(session: Session, project_id: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """Return ``(item_id, value)`` of imported pairwise judgments on the project's items.

    Used to seed gold items from a dataset that already carries an answer (e.g. HH-RLHF's
    chosen response), first items in id order.
    """
    q = (
        select(Item.item_id, JudgmentRow.value)
        .join(JudgmentRow, and_(JudgmentRow.prompt_id == Item.prompt_id,
                                JudgmentRow.project_id == Item.project_id))
        .where(Item.project_id == project_id, JudgmentRow.kind == "pairwise",
               or_(JudgmentRow.source.is_(None), JudgmentRow.source != "app"))
        .order_by(Item.item_id)
        .limit(limit)
    )
    return [(i, dict(v)) for i, v in session.execute(q).all()]
