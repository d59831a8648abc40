"""The queue: serve items to annotators, keep reservations, show and skip tasks.

Each item keeps two counters, ``done`` and ``reserved``, and the flag ``is_open``
(``done + reserved < target``). An item is served only through a conditional
``UPDATE … WHERE done + reserved < target``: SQLite serializes writers and PostgreSQL re-checks
the condition under the row lock, so two annotators never get the last open slot of an item.
On PostgreSQL the candidate select also takes ``FOR UPDATE SKIP LOCKED`` so concurrent servers
skip rows being claimed instead of waiting.

Every statement is prebuilt Core (built once at import, no ORM loads), and every read comes
back as the frozen rows of :mod:`preflab.collect.rows`: the claim is one ``UPDATE … RETURNING``
that hands back the item, and :func:`serve_task` reads the project, the caller's membership,
the guidelines in force and the caller's live reservation in one statement. Functions take a
``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import (
    ASSIGNMENTS as _A,
    GUIDELINES as _GUIDELINES,
    ITEMS as _I,
    MEMBERS as _MEMBERS,
    PROJECTS as _PROJECTS,
    PROMPTS as _P,
    RESPONSES as _R,
)
from preflab.collect.gold import is_gold_due, require_gold_standing
from preflab.collect.items import ITEM_COLUMNS
from preflab.collect.projects import PROJECT_COLUMNS, project_for_user
from preflab.collect.rows import (
    Assignment,
    Item,
    Project,
    Prompt,
    Response,
    Task,
    TaskView,
    User,
    columns,
)
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "RESERVATION_SECONDS",
    "expire_reservations",
    "get_task",
    "next_task",
    "serve_task",
    "show_task",
    "skip_task",
]

RESERVATION_SECONDS = 900
_MAX_ROUNDS = 50

_A_COLUMNS = columns(Assignment, _A)


def digest(*parts: Any) -> str:
    """Return a short stable hash of JSON-encodable parts (ids of assignments, judgments)."""
    raw = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


_EXPIRED = select(_A.c.assignment_id, _A.c.item_id).where(
    _A.c.status == "reserved", _A.c.expires_at < bindparam("b_now")).limit(500)
_EXPIRE = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == "reserved")
    .values(status="expired")
)
_RELEASE = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"))
    .values(reserved=_I.c.reserved - 1, is_open=(_I.c.done + _I.c.reserved - 1) < _I.c.target)
)
# The claim: take a slot only while one is free, and hand the item back in the same statement.
_CLAIM = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"), _I.c.done + _I.c.reserved < _I.c.target)
    .values(reserved=_I.c.reserved + 1, is_open=(_I.c.done + _I.c.reserved + 1) < _I.c.target)
    .returning(*ITEM_COLUMNS)
)
# gold items are shown to every annotator, once each: no slot limit, outside the overlap
_CLAIM_GOLD = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"), _I.c.is_gold == True)  # noqa: E712
    .values(reserved=_I.c.reserved + 1, is_open=(_I.c.done + _I.c.reserved + 1) < _I.c.target)
    .returning(*ITEM_COLUMNS)
)
_LIVE = (
    select(*_A_COLUMNS)
    .where(_A.c.project_id == bindparam("b_project_id"), _A.c.user_id == bindparam("b_user_id"),
           _A.c.status == "reserved", _A.c.expires_at > bindparam("b_now"))
    .limit(1)
)
_SERVED = select(func.count()).select_from(_A).where(
    _A.c.project_id == bindparam("b_project_id"), _A.c.user_id == bindparam("b_user_id"),
    _A.c.status != "expired",
)
_ASSIGNMENT = select(*_A_COLUMNS).where(_A.c.assignment_id == bindparam("b_assignment_id"))
_ITEM = select(*ITEM_COLUMNS).where(_I.c.item_id == bindparam("b_item_id"))
_INSERT_ASSIGNMENT = insert(_A)
_REUSE_ASSIGNMENT = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == "expired")
    .values(status="reserved", reserved_at=bindparam("b_now"), expires_at=bindparam("b_expires"),
            shown_order=bindparam("b_order"), reason=bindparam("b_reason"))
)
_SKIP = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == "reserved")
    .values(status="skipped", reason=bindparam("b_reason"))
)
# the prompt and the item's responses in one statement (one row per response found)
_N_PROMPT = len(columns(Prompt, _P))
_PROMPT_RESPONSES = (
    select(*columns(Prompt, _P, "p_"), *columns(Response, _R, "r_"))
    .select_from(_P.outerjoin(_R, _R.c.response_id.in_(bindparam("b_ids", expanding=True))))
    .where(_P.c.prompt_id == bindparam("b_prompt_id"))
)
_GUIDELINE_TEXT = select(_GUIDELINES.c.text).where(
    _GUIDELINES.c.project_id == bindparam("project_id"),
    _GUIDELINES.c.version == bindparam("version"),
)
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


def _candidates_stmt(gold: bool, postgres: bool) -> Any:
    mine = _A.alias("mine")
    q = (
        select(_I.c.item_id, _I.c.priority, _I.c.done, _I.c.target, mine.c.status)
        .select_from(_I.outerjoin(mine, and_(mine.c.item_id == _I.c.item_id,
                                             mine.c.user_id == bindparam("b_user_id"))))
        .where(_I.c.project_id == bindparam("b_project_id"), _I.c.is_gold == gold,
               mine.c.status.is_(None) if gold
               else or_(mine.c.status.is_(None), mine.c.status == "expired"))
        .order_by(_I.c.priority.desc(), _I.c.item_id.desc())
    )
    if not gold:
        # a plain comparison (not IS TRUE) lets SQLite walk the ix_items_open index
        q = q.where(_I.c.is_open == True)  # noqa: E712
    if postgres:
        # rows another transaction is claiming right now are skipped, not waited for
        return q.with_for_update(skip_locked=True, of=_I).limit(4)
    return q.limit(16)


_CANDIDATES = {(g, pg): _candidates_stmt(g, pg) for g in (False, True) for pg in (False, True)}


def _project_state_stmt(member_only: bool) -> Any:
    """The project, its guideline state for the caller and the caller's live reservation."""
    g, a, p = _GUIDELINES, _A, _PROJECTS
    m_last = _MEMBERS.alias("m_last")  # not the members table the visibility check joins
    latest = select(g.c.version, g.c.text).where(g.c.project_id == p.c.project_id)
    latest = latest.order_by(g.c.version.desc()).limit(1).correlate(p)
    q = select(
        *PROJECT_COLUMNS,
        latest.with_only_columns(g.c.version).scalar_subquery().label("g_version"),
        latest.with_only_columns(g.c.text).scalar_subquery().label("g_text"),
        select(m_last.c.last_guideline_version)
        .where(m_last.c.project_id == p.c.project_id, m_last.c.user_id == bindparam("user_id"))
        .correlate(p).scalar_subquery().label("g_last"),
        # the caller's live reservation in the project, if any (the queue serves it first)
        select(a.c.assignment_id)
        .where(a.c.project_id == p.c.project_id, a.c.user_id == bindparam("user_id"),
               a.c.status == "reserved", a.c.expires_at > bindparam("now"))
        .limit(1).correlate(p).scalar_subquery().label("g_live"),
    ).where(p.c.project_id == bindparam("project_id"))
    if member_only:
        q = q.join_from(p, _MEMBERS, and_(_MEMBERS.c.project_id == p.c.project_id,
                                          _MEMBERS.c.user_id == bindparam("user_id")))
    return q


_PROJECT_STATE = {False: _project_state_stmt(False), True: _project_state_stmt(True)}
_N_PROJECT = len(PROJECT_COLUMNS)


def expire_reservations(session: Session | Connection, now: datetime | None = None) -> int:
    """Free reservations whose time ran out (up to 500 per call); return how many were freed."""
    conn = connection_of(session)
    freed = 0
    for assignment_id, item_id in conn.execute(_EXPIRED, {"b_now": now or utcnow()}).all():
        if conn.execute(_EXPIRE, {"b_assignment_id": assignment_id}).rowcount == 1:
            conn.execute(_RELEASE, {"b_item_id": item_id})
            freed += 1
    return freed


def _served_count(conn: Connection, project_id: str, user_id: str) -> int:
    return conn.execute(_SERVED, {"b_project_id": project_id, "b_user_id": user_id}).scalar() or 0


def _wants_gold(conn: Connection, project: Project, user_id: str, seed: str) -> int | None:
    """Return the task number when the user's next task is a gold one (see
    :func:`preflab.collect.gold.is_gold_due`: seeded per annotator, not every k-th), else None."""
    if project.gold_share <= 0:
        return None
    n = _served_count(conn, project.project_id, user_id) + 1
    return n if is_gold_due(n, project.gold_share, seed, project.project_id, user_id) else None


def next_task(
    session: Session | Connection,
    project: Project,
    user_id: str,
    *,
    now: datetime | None = None,
    reservation_seconds: int = RESERVATION_SECONDS,
    seed: str = "preflab",
) -> Task | None:
    """Reserve and return the user's next item in the project, or None when nothing is left.

    Order: the user's live reservation first; then, when the project's gold share makes this
    task a gold one (:func:`preflab.collect.gold.is_gold_due`, seeded per annotator), a gold
    item the user was never served, in a seeded order; otherwise the open item with the
    highest priority (ties by item id) that the user has not been served. A gold item takes no
    overlap slot: every annotator may get it once. The item is
    claimed with ``UPDATE … WHERE done + reserved < target``; a lost race moves to the next
    candidate. Expired reservations are freed when no open item is left (and by
    :func:`expire_reservations`, which the app also runs now and then). The reason (why this
    item) is stored on the assignment. The responses' screen order is a shuffle seeded by
    ``seed``, the item and the user.
    """
    now = now or utcnow()
    conn = connection_of(session)
    live = conn.execute(_LIVE, {"b_project_id": project.project_id, "b_user_id": user_id,
                                "b_now": now}).first()
    if live is not None:
        return _load_task(conn, Assignment(*live), None)
    return _claim_next(conn, project, user_id, now, reservation_seconds, seed)


def _claim_next(conn: Connection, project: Project, user_id: str, now: datetime,
                reservation_seconds: int, seed: str) -> Task | None:
    """Claim a new item for a user known to hold no live reservation in the project."""
    if project.config and project.config.get("gold_threshold"):
        require_gold_standing(conn, project, user_id)
    due = _wants_gold(conn, project, user_id, seed)
    order = [True, False] if due is not None else [False]
    swept = False
    for _round in range(_MAX_ROUNDS):
        for gold in order:
            stmt = _CANDIDATES[gold, conn.dialect.name == "postgresql"]
            candidates = list(conn.execute(stmt, {"b_user_id": user_id,
                                                  "b_project_id": project.project_id}))
            if gold:  # which gold item comes is seeded per annotator too
                random.Random(digest(seed, user_id, due)).shuffle(candidates)
            for item_id, priority, done, target, prev in candidates:
                claimed = conn.execute(_CLAIM_GOLD if gold else _CLAIM,
                                       {"b_item_id": item_id}).first()
                if claimed is None:
                    continue  # another annotator took the slot since the select
                if gold:
                    reason = (f"gold item: task {due} of yours falls on gold (gold share "
                              f"{project.gold_share:.0%}, places seeded per annotator)")
                else:
                    reason = (
                        f"highest open priority ({priority}); {done} of {target} judgments "
                        "done; first in queue order (priority, then item id) not yet served "
                        "to you"
                    )
                return _reserve(conn, project, Item(*claimed), user_id, now,
                                reservation_seconds, seed, reason, reuse=prev is not None)
            if candidates:
                break  # every candidate was taken meanwhile: select again (fresh snapshot)
        else:
            # nothing open at all: free expired reservations once, then look again
            if swept or not expire_reservations(conn, now):
                return None
            swept = True
    return None


def _shown_order(response_ids: Sequence[str], item_id: str, user_id: str, seed: str) -> list[str]:
    order = list(response_ids)
    random.Random(digest(seed, item_id, user_id)).shuffle(order)
    return order


def _reserve(
    conn: Connection,
    project: Project,
    item: Item,
    user_id: str,
    now: datetime,
    reservation_seconds: int,
    seed: str,
    reason: str,
    *,
    reuse: bool,
) -> Task:
    expires = now + timedelta(seconds=reservation_seconds)
    order = _shown_order(item.response_ids, item.item_id, user_id, seed)
    assignment = Assignment(
        assignment_id="a_" + digest(item.item_id, user_id), item_id=item.item_id,
        user_id=user_id, status="reserved", reserved_at=now, expires_at=expires,
        shown_order=order, reason=reason, judgment_id=None, project_id=project.project_id)
    if reuse:  # an expired reservation of this user on this item: reuse its row
        res = conn.execute(_REUSE_ASSIGNMENT, {
            "b_assignment_id": assignment.assignment_id, "b_now": now, "b_expires": expires,
            "b_order": order, "b_reason": reason})
        if res.rowcount != 1:
            raise ConflictError(f"task {assignment.assignment_id} changed meanwhile; retry",
                                field="assignment_id")
    else:
        conn.execute(_INSERT_ASSIGNMENT, {
            "assignment_id": assignment.assignment_id, "item_id": item.item_id,
            "user_id": user_id, "project_id": project.project_id, "status": "reserved",
            "reserved_at": now, "expires_at": expires, "shown_order": order, "reason": reason,
            "judgment_id": None})
    return _load_task(conn, assignment, item)


def _load_task(conn: Connection, assignment: Assignment, item: Item | None) -> Task:
    if item is None:
        item = Item(*conn.execute(_ITEM, {"b_item_id": assignment.item_id}).one())
    order = list(assignment.shown_order or item.response_ids)
    found = conn.execute(_PROMPT_RESPONSES, {"b_prompt_id": item.prompt_id, "b_ids": order}).all()
    if not found:
        raise NotFoundError(f"item {item.item_id} names a missing prompt {item.prompt_id}; "
                            "import the prompt again", field="prompt_id", value=item.prompt_id)
    prompt = Prompt(*found[0][:_N_PROMPT])
    rows = {r[_N_PROMPT]: Response(*r[_N_PROMPT:]) for r in found if r[_N_PROMPT] is not None}
    missing = [r for r in order if r not in rows]
    if missing:
        raise NotFoundError(f"item {item.item_id} names missing responses {missing}; "
                            "import them again", field="response_ids")
    return Task(assignment, item, prompt, [rows[r] for r in order], assignment.reason or "")


def get_task(session: Session | Connection, assignment_id: str, user_id: str | None) -> Task:
    """Return an assignment with its item, prompt and responses (as shown).

    Args:
        session: the unit of work.
        assignment_id: the assignment.
        user_id: the user asking; None for admins, who may see any assignment.

    Raises:
        NotFoundError: no such assignment for this user (another user's is "not found" too).
    """
    conn = connection_of(session)
    row = conn.execute(_ASSIGNMENT, {"b_assignment_id": assignment_id}).first()
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
    return _load_task(conn, Assignment(*row), None)


def _guideline_state(
    conn: Connection, project_id: str, current: int | None, text: str | None, last: int | None
) -> tuple[int | None, str, list[str]]:
    """Return ``(current version, its text, the diff from the user's last version)``."""
    if current is None:
        return None, "", []
    text = text or ""
    if last is None or last == current:
        return current, text, []
    old = conn.execute(_GUIDELINE_TEXT, {"project_id": project_id, "version": last}).scalar()
    changes = list(difflib.unified_diff(
        (old or "").splitlines(), text.splitlines(),
        f"version {last}", f"version {current}", lineterm="", n=1,
    ))
    return current, text, changes


def _view(conn: Connection, project: Project, user_id: str, task: Task) -> TaskView:
    row = conn.execute(_GUIDELINE_STATE, {"project_id": project.project_id,
                                          "user_id": user_id}).first()
    state = (None, "", []) if row is None else _guideline_state(conn, project.project_id, *row)
    return TaskView(task, project, *state)


def serve_task(
    session: Session | Connection,
    project_id: str,
    user: User,
    *,
    now: datetime | None = None,
    reservation_seconds: int = RESERVATION_SECONDS,
) -> TaskView | None:
    """Reserve the user's next task in a project they may see (or resume their live one).

    Returns the task with its project and the guidelines in force (and the diff since the
    version the user last worked under); None when nothing is left. The screen order is seeded
    by the project id.

    Raises:
        NotFoundError: no such project, or the user may not see it (the same answer for both).
    """
    conn = connection_of(session)
    now = now or utcnow()
    row = conn.execute(_PROJECT_STATE[user.role != "admin"],
                       {"project_id": project_id, "user_id": user.user_id, "now": now}).first()
    if row is None:
        raise NotFoundError(f"no project {project_id!r}", field="project_id")
    project = Project(*row[:_N_PROJECT])
    version, text, last, live = row[_N_PROJECT:]
    task: Task | None
    if live is not None:
        task = _load_task(conn, Assignment(*conn.execute(
            _ASSIGNMENT, {"b_assignment_id": live}).one()), None)
    else:
        task = _claim_next(conn, project, user.user_id, now, reservation_seconds,
                           project.project_id)
    if task is None:
        return None
    return TaskView(task, project, *_guideline_state(conn, project_id, version, text, last))


def show_task(session: Session | Connection, assignment_id: str, user: User) -> TaskView:
    """Return one of the user's tasks with its project and the guidelines in force.

    Raises:
        NotFoundError: not the user's task, or its project is no longer visible to the user.
    """
    conn = connection_of(session)
    task = get_task(conn, assignment_id, user.user_id)
    project = project_for_user(conn, task.item.project_id, user)
    if project is None:
        raise NotFoundError(f"no project {task.item.project_id!r}", field="project_id")
    return _view(conn, project, user.user_id, task)


def skip_task(
    session: Session | Connection, assignment_id: str, user_id: str, reason: str
) -> None:
    """Mark a reserved task skipped (with the reason) and free its slot.

    Raises:
        InputError: empty reason.
        NotFoundError: not this user's task.
    """
    if not reason.strip():
        raise InputError("say why you skip this task", field="reason")
    conn = connection_of(session)
    a = conn.execute(_ASSIGNMENT, {"b_assignment_id": assignment_id}).first()
    if a is None or a.user_id != user_id:
        raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
    res = conn.execute(_SKIP, {"b_assignment_id": assignment_id,
                               "b_reason": f"skipped: {reason.strip()[:500]}"})
    if res.rowcount == 1:
        conn.execute(_RELEASE, {"b_item_id": a.item_id})
