"""The queue: serve items to annotators, keep reservations, take submissions and skips.

Each item keeps two counters, ``done`` and ``reserved``, and the flag ``is_open``
(``done + reserved < target``). An item is served only through a conditional
``UPDATE … WHERE done + reserved < target``: SQLite serializes writers and PostgreSQL re-checks
the condition under the row lock, so two annotators never get the last open slot of an item.
On PostgreSQL the candidate select also takes ``FOR UPDATE SKIP LOCKED`` so concurrent servers
skip rows being claimed instead of waiting. Functions take a session and never commit.

Serving and submitting run prebuilt Core statements (built once at import, no ORM loads) on a
session's connection or on a plain connection: the claim is one ``UPDATE … RETURNING`` that
hands back the item, and a :class:`Task` carries the rows as read (attribute access by column
name) rather than ORM instances, whose construction cost a fifth of a submission's CPU.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.store.queries.scope import connection_of
from preflab.store.tables import (
    Assignment,
    Item,
    JudgmentRow,
    ProjectRow,
    PromptRow,
    ResponseRow,
    utcnow,
)

__all__ = [
    "SUBMIT_COLUMNS",
    "Task",
    "expire_reservations",
    "find_judgment_by_key",
    "get_task",
    "next_task",
    "skip_task",
    "submit_judgment",
]


def _digest(*parts: Any) -> str:
    raw = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _aware(ts: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; treat them as the UTC they were stored as."""
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Task:
    """An item served to one annotator, with everything a task page shows.

    The parts are read-only rows with the columns of their tables as attributes
    (``task.item.item_id``, ``task.prompt.messages``…).
    """

    assignment: Any  # a row of assignments
    item: Any  # a row of items
    prompt: Any  # a row of prompts
    responses: list[Any]  # rows of responses, in the order shown
    reason: str


_A = cast(Table, Assignment.__table__)
_I = cast(Table, Item.__table__)
_P = cast(Table, PromptRow.__table__)
_R = cast(Table, ResponseRow.__table__)
_J = cast(Table, JudgmentRow.__table__)


def expire_reservations(session: Session | Connection, now: datetime) -> int:
    """Free reservations whose time ran out; return how many were freed."""
    q = select(_A.c.assignment_id, _A.c.item_id).where(
        _A.c.status == "reserved", _A.c.expires_at < now
    )
    conn = connection_of(session)
    freed = 0
    for assignment_id, item_id in conn.execute(q.limit(500)).all():
        res = conn.execute(_EXPIRE, {"b_assignment_id": assignment_id})
        if res.rowcount == 1:
            conn.execute(_RELEASE, {"b_item_id": item_id})
            freed += 1
    return freed


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
    .returning(*_I.c)
)
# gold items are shown to every annotator: no slot limit
_CLAIM_GOLD = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"))
    .values(reserved=_I.c.reserved + 1, is_open=(_I.c.done + _I.c.reserved + 1) < _I.c.target)
    .returning(*_I.c)
)
_LIVE = (
    select(_A)
    .where(_A.c.project_id == bindparam("b_project_id"), _A.c.user_id == bindparam("b_user_id"),
           _A.c.status == "reserved", _A.c.expires_at > bindparam("b_now"))
    .limit(1)
)
_SERVED = select(func.count()).select_from(_A).where(
    _A.c.project_id == bindparam("b_project_id"), _A.c.user_id == bindparam("b_user_id"),
    _A.c.status != "expired",
)
_ASSIGNMENT = select(_A).where(_A.c.assignment_id == bindparam("b_assignment_id"))
_ITEM = select(_I).where(_I.c.item_id == bindparam("b_item_id"))
_INSERT_ASSIGNMENT = insert(_A)
_REUSE_ASSIGNMENT = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == "expired")
    .values(status="reserved", reserved_at=bindparam("b_now"), expires_at=bindparam("b_expires"),
            shown_order=bindparam("b_order"), reason=bindparam("b_reason"))
)
# What a submission reads of the assignment and its item (one statement; callers that read
# more in the same statement select these columns too and pass the row to submit_judgment).
SUBMIT_COLUMNS = (
    _A.c.user_id, _A.c.status, _A.c.item_id, _A.c.reserved_at, _A.c.shown_order,
    _A.c.judgment_id, _I.c.prompt_id, _I.c.response_ids, _I.c.project_id, _I.c.batch_id,
    _I.c.is_gold,
)
_ASSIGNMENT_ITEM = (
    select(*SUBMIT_COLUMNS)
    .join_from(_A, _I, _I.c.item_id == _A.c.item_id)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"))
)
_BY_KEY = select(_J).where(_J.c.idempotency_key == bindparam("b_key")).limit(1)
_TAKE = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == bindparam("b_was"))
    .values(status="submitted", judgment_id=bindparam("b_judgment_id"))
)
_DONE_RESERVED = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"))
    .values(done=_I.c.done + 1, reserved=_I.c.reserved - 1)
)
_DONE_FREE = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"), _I.c.done + _I.c.reserved < _I.c.target)
    .values(done=_I.c.done + 1, is_open=(_I.c.done + _I.c.reserved + 1) < _I.c.target)
)
_DONE_GOLD = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"))
    .values(done=_I.c.done + 1, is_open=(_I.c.done + _I.c.reserved + 1) < _I.c.target)
)
_INSERT_JUDGMENT = insert(_J)


def _candidates_stmt(gold: bool, postgres: bool) -> Any:
    mine = _A.alias("mine")
    q = (
        select(_I.c.item_id, _I.c.priority, _I.c.done, _I.c.target, mine.c.status)
        .select_from(_I.outerjoin(mine, and_(mine.c.item_id == _I.c.item_id,
                                             mine.c.user_id == bindparam("b_user_id"))))
        .where(_I.c.project_id == bindparam("b_project_id"), _I.c.is_gold == gold,
               or_(mine.c.status.is_(None), mine.c.status == "expired"))
        .order_by(_I.c.priority.desc(), _I.c.item_id.desc())
    )
    if not gold:
        # a plain comparison (not IS TRUE) lets SQLite walk the ix_items_open index
        q = q.where(_I.c.is_open == True)
    if postgres:
        # rows another transaction is claiming right now are skipped, not waited for
        return q.with_for_update(skip_locked=True, of=_I).limit(4)
    return q.limit(16)


_CANDIDATES = {(g, pg): _candidates_stmt(g, pg) for g in (False, True) for pg in (False, True)}


def _shown_order(response_ids: Sequence[str], item_id: str, user_id: str, seed: str) -> list[str]:
    order = list(response_ids)
    random.Random(_digest(seed, item_id, user_id)).shuffle(order)
    return order


def _candidates(
    conn: Connection, project_id: str, user_id: str, *, gold: bool
) -> list[tuple[str, int, int, int, str | None]]:
    """Open items in queue order that the user was not served (or whose serving expired).

    Returns ``(item_id, priority, done, target, status of the user's expired assignment)``.
    """
    stmt = _CANDIDATES[gold, conn.dialect.name == "postgresql"]
    rows = conn.execute(stmt, {"b_user_id": user_id, "b_project_id": project_id}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


_MAX_ROUNDS = 50


def _wants_gold(conn: Connection, project: ProjectRow, user_id: str) -> bool:
    if project.gold_share <= 0:
        return False
    n = _served_count(conn, project.project_id, user_id) + 1
    # deterministic frequency: the n-th task is gold when floor(n·share) steps up
    return int(n * project.gold_share) > int((n - 1) * project.gold_share)


def next_task(
    session: Session | Connection,
    project: ProjectRow,
    user_id: str,
    *,
    now: datetime | None = None,
    reservation_seconds: int = 900,
    seed: str = "preflab",
    has_live: bool | None = None,
) -> Task | None:
    """Reserve and return the user's next item in the project, or None when nothing is left.

    ``has_live=False`` says the caller saw in this transaction, at ``now``, that the user holds
    no live reservation in the project (saves one read); None: look.

    Order: the user's live reservation first; then a gold item when the project's gold share is
    due (the n-th task is gold when ``floor(n·share)`` steps up); otherwise the open item with
    the highest priority (ties by item id) that the user has not been served. The item is
    claimed with ``UPDATE … WHERE done + reserved < target``; a lost race moves to the next
    candidate. Expired reservations are freed when no open item is left (and by
    :func:`expire_reservations`, which the app also runs now and then). The reason (why this
    item) is stored on the assignment.
    """
    now = now or utcnow()
    conn = connection_of(session)
    if has_live is not False:
        live = conn.execute(_LIVE, {"b_project_id": project.project_id, "b_user_id": user_id,
                                    "b_now": now}).first()
        if live is not None:
            return _load_task(conn, live, None)

    order = [True, False] if _wants_gold(conn, project, user_id) else [False]
    swept = False
    for _round in range(_MAX_ROUNDS):
        for gold in order:
            candidates = _candidates(conn, project.project_id, user_id, gold=gold)
            for item_id, priority, done, target, prev in candidates:
                claimed = conn.execute(_CLAIM_GOLD if gold else _CLAIM,
                                       {"b_item_id": item_id}).first()
                if claimed is None:
                    continue  # another annotator took the slot since the select
                if gold:
                    reason = (f"gold item: gold share {project.gold_share:.0%} of tasks was due "
                              f"(task {_served_count(conn, project.project_id, user_id) + 1})")
                else:
                    reason = (
                        f"highest open priority ({priority}); {done} of {target} judgments "
                        "done; first in queue order (priority, then item id) not yet served "
                        "to you"
                    )
                return _reserve(conn, project, claimed, user_id, now,
                                reservation_seconds, seed, reason, reuse=prev is not None)
            if candidates:
                break  # every candidate was taken meanwhile: select again (fresh snapshot)
        else:
            # nothing open at all: free expired reservations once, then look again
            if swept or not expire_reservations(conn, now):
                return None
            swept = True
    return None


def _served_count(conn: Connection, project_id: str, user_id: str) -> int:
    return conn.execute(_SERVED, {"b_project_id": project_id, "b_user_id": user_id}).scalar() or 0


def _reserve(
    conn: Connection,
    project: ProjectRow,
    item: Any,
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
    assignment_id = "a_" + _digest(item.item_id, user_id)
    values = {"assignment_id": assignment_id, "item_id": item.item_id, "user_id": user_id,
              "project_id": project.project_id, "status": "reserved", "reserved_at": now,
              "expires_at": expires, "shown_order": order, "reason": reason,
              "judgment_id": None}
    if reuse:  # an expired reservation of this user on this item: reuse its row
        res = conn.execute(_REUSE_ASSIGNMENT, {"b_assignment_id": assignment_id, "b_now": now,
                                               "b_expires": expires, "b_order": order,
                                               "b_reason": reason})
        if res.rowcount != 1:
            raise ConflictError(f"task {assignment_id} changed meanwhile; retry",
                                field="assignment_id")
        assignment = conn.execute(_ASSIGNMENT, {"b_assignment_id": assignment_id}).one()
    else:
        conn.execute(_INSERT_ASSIGNMENT, values)
        assignment = SimpleNamespace(**values)
    return _load_task(conn, assignment, item)


_P_LABELS = [(c.name, f"p_{c.name}") for c in _P.c]
_R_LABELS = [(c.name, f"r_{c.name}") for c in _R.c]
# the prompt and the item's responses in one statement (one row per response found)
_PROMPT_RESPONSES = (
    select(*(c.label(f"p_{c.name}") for c in _P.c), *(c.label(f"r_{c.name}") for c in _R.c))
    .select_from(_P.outerjoin(_R, _R.c.response_id.in_(bindparam("b_ids", expanding=True))))
    .where(_P.c.prompt_id == bindparam("b_prompt_id"))
)


def _load_task(conn: Connection, assignment: Any, item: Any | None) -> Task:
    if item is None:
        item = conn.execute(_ITEM, {"b_item_id": assignment.item_id}).one()
    order = list(assignment.shown_order or item.response_ids)
    found = conn.execute(_PROMPT_RESPONSES, {"b_prompt_id": item.prompt_id, "b_ids": order}).all()
    if not found:
        raise NotFoundError(f"item {item.item_id} names a missing prompt {item.prompt_id}")
    m = found[0]._mapping
    prompt = SimpleNamespace(**{name: m[label] for name, label in _P_LABELS})
    rows = {}
    for r in found:
        m = r._mapping
        if m["r_response_id"] is not None:
            rows[m["r_response_id"]] = SimpleNamespace(**{n: m[label] for n, label in _R_LABELS})
    missing = [r for r in order if r not in rows]
    if missing:
        raise NotFoundError(f"item {item.item_id} names missing responses {missing}")
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
    return _load_task(conn, row, None)


def find_judgment_by_key(
    session: Session | Connection, idempotency_key: str
) -> JudgmentRow | None:
    """Return the judgment stored under this submission id (detached), or None."""
    row = connection_of(session).execute(_BY_KEY, {"b_key": idempotency_key}).first()
    return None if row is None else JudgmentRow(**row._mapping)


def submit_judgment(
    session: Session | Connection,
    *,
    assignment_id: str,
    user_id: str,
    kind: str,
    value: dict[str, Any],
    idempotency_key: str,
    guideline_version: int | None,
    started_at: datetime | None = None,
    comment: str | None = None,
    flags: Sequence[str] = (),
    now: datetime | None = None,
    assignment: Any = None,
    key_is_new: bool = False,
) -> tuple[JudgmentRow, bool]:
    """Store the judgment of a served task; return it and whether it is new.

    A repeat of the same ``idempotency_key`` by the same user returns the stored judgment
    unchanged (a double click or a retried request makes one judgment). A submission after the
    reservation expired is accepted while the item still has an open slot.

    Args:
        assignment: the row of :data:`SUBMIT_COLUMNS` for ``assignment_id`` when the caller
            has read it already in this transaction (saves one read).
        key_is_new: the caller saw in this transaction that no judgment uses the key (saves
            one read).

    Raises:
        NotFoundError: the assignment is not this user's.
        ConflictError: the key was used by someone else, the task was already judged or
            skipped, or its reservation expired and the item filled up meanwhile.
    """
    now = now or utcnow()
    conn = connection_of(session)
    prior = None if key_is_new else find_judgment_by_key(conn, idempotency_key)
    if prior is not None:
        if prior.judge_id != user_id:
            raise ConflictError(
                "this submission id was already used by another judge; send a fresh one",
                field="submission_id",
            )
        return prior, False
    a = assignment
    if a is None:
        a = conn.execute(_ASSIGNMENT_ITEM, {"b_assignment_id": assignment_id}).first()
    if a is None or a.user_id != user_id:
        raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
    item = a  # the row carries the item's columns too
    if a.status in ("submitted", "skipped"):
        raise ConflictError(
            f"task {assignment_id} was already {a.status}; ask for the next task",
            field="assignment_id",
        )
    judgment_id = "j_" + _digest(idempotency_key, user_id)
    took = conn.execute(_TAKE, {"b_assignment_id": assignment_id, "b_was": a.status,
                                "b_judgment_id": judgment_id})
    if took.rowcount != 1:
        raise ConflictError(f"task {assignment_id} changed meanwhile; retry", field="assignment_id")
    if a.status == "reserved":
        conn.execute(_DONE_RESERVED, {"b_item_id": item.item_id})
    else:  # expired: the slot was released, take a free one if any is left
        res = conn.execute(_DONE_GOLD if item.is_gold else _DONE_FREE, {"b_item_id": item.item_id})
        if res.rowcount != 1:
            raise ConflictError(
                "your reservation of this task expired and other annotators filled it; "
                "ask for the next task",
                field="assignment_id",
            )
    started = _aware(started_at) or _aware(a.reserved_at)
    if started is not None and (started > now or started < now - timedelta(days=2)):
        started = _aware(a.reserved_at)
    values = {
        "judgment_id": judgment_id,
        "prompt_id": item.prompt_id,
        "response_ids": list(a.shown_order or item.response_ids),
        "kind": kind,
        "judge_id": user_id,
        "value": value,
        "item_id": item.item_id,
        "project_id": item.project_id,
        "guideline_version": guideline_version,
        "batch_id": item.batch_id,
        "started_at": started,
        "submitted_at": now,
        "comment": comment or None,
        "flags": list(flags),
        "idempotency_key": idempotency_key,
        "source": "app",
        "source_line": None,
    }
    try:
        conn.execute(_INSERT_JUDGMENT, values)
    except IntegrityError as exc:  # a concurrent twin with the same key won the race
        raise ConflictError(
            "this submission is being stored by a concurrent request; retry to get it",
            field="submission_id",
        ) from exc
    return JudgmentRow(**values), True


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


_SKIP = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == "reserved")
    .values(status="skipped", reason=bindparam("b_reason"))
)
