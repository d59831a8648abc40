"""The queue: serve items to annotators, keep reservations, take submissions and skips.

Each item keeps two counters, ``done`` and ``reserved``, and the flag ``is_open``
(``done + reserved < target``). An item is served only through a conditional
``UPDATE … WHERE done + reserved < target``: SQLite serializes writers and PostgreSQL re-checks
the condition under the row lock, so two annotators never get the last open slot of an item.
On PostgreSQL the candidate select also takes ``FOR UPDATE SKIP LOCKED`` so concurrent servers
skip rows being claimed instead of waiting. Functions take a session and never commit.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from preflab.errors import ConflictError, InputError, NotFoundError
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
    """An item served to one annotator, with everything a task page shows."""

    assignment: Assignment
    item: Item
    prompt: PromptRow
    responses: list[ResponseRow]  # in the order shown
    reason: str


def expire_reservations(session: Session, now: datetime) -> int:
    """Free reservations whose time ran out; return how many were freed."""
    q = select(Assignment.assignment_id, Assignment.item_id).where(
        Assignment.status == "reserved", Assignment.expires_at < now
    )
    freed = 0
    for assignment_id, item_id in session.execute(q.limit(500)).all():
        res = _update(
            session,
            update(Assignment)
            .where(Assignment.assignment_id == assignment_id, Assignment.status == "reserved")
            .values(status="expired")
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            _release(session, item_id)
            freed += 1
    return freed


def _update(session: Session, stmt: Any) -> Any:
    # Counters change under concurrent writers: never patch loaded objects from the statement,
    # callers re-read what they need.
    return session.execute(stmt, execution_options={"synchronize_session": False})


def _release(session: Session, item_id: str) -> None:
    _update(
        session,
        update(Item)
        .where(Item.item_id == item_id)
        .values(reserved=Item.reserved - 1, is_open=(Item.done + Item.reserved - 1) < Item.target)
    )


def _claim(session: Session, item_id: str, is_gold: bool) -> bool:
    cond = [Item.item_id == item_id]
    if not is_gold:  # gold items are shown to every annotator; no slot limit
        cond.append(Item.done + Item.reserved < Item.target)
    res = _update(
        session,
        update(Item)
        .where(*cond)
        .values(reserved=Item.reserved + 1, is_open=(Item.done + Item.reserved + 1) < Item.target)
    )
    return res.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def _shown_order(item: Item, user_id: str, seed: str) -> list[str]:
    order = list(item.response_ids)
    random.Random(_digest(seed, item.item_id, user_id)).shuffle(order)
    return order


def _candidates(
    session: Session, project_id: str, user_id: str, *, gold: bool, limit: int
) -> list[tuple[str, int, int, int, str | None]]:
    """Open items in queue order that the user was not served (or whose serving expired).

    Returns ``(item_id, priority, done, target, status of the user's expired assignment)``.
    """
    mine = aliased(Assignment)
    q = (
        select(Item.item_id, Item.priority, Item.done, Item.target, mine.status)
        .outerjoin(mine, and_(mine.item_id == Item.item_id, mine.user_id == user_id))
        .where(Item.project_id == project_id, Item.is_gold == gold,
               or_(mine.status.is_(None), mine.status == "expired"))
        .order_by(Item.priority.desc(), Item.item_id.desc())
        .limit(limit)
    )
    if not gold:
        # a plain comparison (not IS TRUE) lets SQLite walk the ix_items_open index
        q = q.where(Item.is_open == True)
    if session.get_bind().dialect.name == "postgresql":
        # rows another transaction is claiming right now are skipped, not waited for
        q = q.with_for_update(skip_locked=True, of=Item).limit(4)
    return [tuple(r) for r in session.execute(q).all()]  # type: ignore[misc]


_MAX_ROUNDS = 50


def _wants_gold(session: Session, project: ProjectRow, user_id: str) -> bool:
    if project.gold_share <= 0:
        return False
    n = _served_count(session, project.project_id, user_id) + 1
    # deterministic frequency: the n-th task is gold when floor(n·share) steps up
    return int(n * project.gold_share) > int((n - 1) * project.gold_share)


def next_task(
    session: Session,
    project: ProjectRow,
    user_id: str,
    *,
    now: datetime | None = None,
    reservation_seconds: int = 900,
    seed: str = "preflab",
) -> Task | None:
    """Reserve and return the user's next item in the project, or None when nothing is left.

    Order: the user's live reservation first; then a gold item when the project's gold share is
    due (the n-th task is gold when ``floor(n·share)`` steps up); otherwise the open item with
    the highest priority (ties by item id) that the user has not been served. The item is
    claimed with ``UPDATE … WHERE done + reserved < target``; a lost race moves to the next
    candidate. Expired reservations are freed when no open item is left (and by
    :func:`expire_reservations`, which the app also runs now and then). The reason (why this
    item) is stored on the assignment.
    """
    now = now or utcnow()
    live = session.scalars(
        select(Assignment).where(
            Assignment.project_id == project.project_id,
            Assignment.user_id == user_id,
            Assignment.status == "reserved",
            Assignment.expires_at > now,
        )
    ).first()
    if live is not None:
        return get_task(session, live.assignment_id, user_id)

    order = [True, False] if _wants_gold(session, project, user_id) else [False]
    swept = False
    for _round in range(_MAX_ROUNDS):
        for gold in order:
            candidates = _candidates(session, project.project_id, user_id, gold=gold, limit=16)
            for item_id, priority, done, target, prev in candidates:
                if not _claim(session, item_id, gold):
                    continue  # another annotator took the slot since the select
                if gold:
                    reason = (f"gold item: gold share {project.gold_share:.0%} of tasks was due "
                              f"(task {_served_count(session, project.project_id, user_id) + 1})")
                else:
                    reason = (
                        f"highest open priority ({priority}); {done} of {target} judgments "
                        "done; first in queue order (priority, then item id) not yet served "
                        "to you"
                    )
                return _reserve(session, project, item_id, user_id, now, reservation_seconds,
                                seed, reason, reuse=prev is not None)
            if candidates:
                break  # every candidate was taken meanwhile: select again (fresh snapshot)
        else:
            # nothing open at all: free expired reservations once, then look again
            if swept or not expire_reservations(session, now):
                return None
            swept = True
    return None


def _served_count(session: Session, project_id: str, user_id: str) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                Assignment.project_id == project_id,
                Assignment.user_id == user_id,
                Assignment.status != "expired",
            )
        )
        or 0
    )


def _reserve(
    session: Session,
    project: ProjectRow,
    item_id: str,
    user_id: str,
    now: datetime,
    reservation_seconds: int,
    seed: str,
    reason: str,
    *,
    reuse: bool,
) -> Task:
    item = session.get(Item, item_id)
    assert item is not None
    expires = now + timedelta(seconds=reservation_seconds)
    order = _shown_order(item, user_id, seed)
    assignment_id = "a_" + _digest(item_id, user_id)
    old = session.get(Assignment, assignment_id) if reuse else None
    if old is not None:  # an expired reservation of this user on this item: reuse its row
        old.status, old.reserved_at, old.expires_at = "reserved", now, expires
        old.shown_order, old.reason = order, reason
        assignment = old
    else:
        assignment = Assignment(
            assignment_id=assignment_id,
            item_id=item_id,
            user_id=user_id,
            project_id=project.project_id,
            status="reserved",
            reserved_at=now,
            expires_at=expires,
            shown_order=order,
            reason=reason,
        )
        session.add(assignment)
    session.flush()
    return _load_task(session, assignment, item)


def _load_task(session: Session, assignment: Assignment, item: Item) -> Task:
    prompt = session.get(PromptRow, item.prompt_id)
    if prompt is None:
        raise NotFoundError(f"item {item.item_id} names a missing prompt {item.prompt_id}")
    order = list(assignment.shown_order or item.response_ids)
    rows = {r.response_id: r for r in session.scalars(
        select(ResponseRow).where(ResponseRow.response_id.in_(order))
    )}
    missing = [r for r in order if r not in rows]
    if missing:
        raise NotFoundError(f"item {item.item_id} names missing responses {missing}")
    return Task(assignment, item, prompt, [rows[r] for r in order], assignment.reason or "")


def get_task(session: Session, assignment_id: str, user_id: str | None) -> Task:
    """Return an assignment with its item, prompt and responses (as shown).

    Args:
        session: the unit of work.
        assignment_id: the assignment.
        user_id: the user asking; None for admins, who may see any assignment.

    Raises:
        NotFoundError: no such assignment for this user (another user's is "not found" too).
    """
    a = session.get(Assignment, assignment_id)
    if a is None or (user_id is not None and a.user_id != user_id):
        raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
    item = session.get(Item, a.item_id)
    assert item is not None
    return _load_task(session, a, item)


def find_judgment_by_key(session: Session, idempotency_key: str) -> JudgmentRow | None:
    """Return the judgment stored under this submission id, or None."""
    return session.scalars(
        select(JudgmentRow).where(JudgmentRow.idempotency_key == idempotency_key)
    ).first()


def submit_judgment(
    session: Session,
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
) -> tuple[JudgmentRow, bool]:
    """Store the judgment of a served task; return it and whether it is new.

    A repeat of the same ``idempotency_key`` by the same user returns the stored judgment
    unchanged (a double click or a retried request makes one judgment). A submission after the
    reservation expired is accepted while the item still has an open slot.

    Raises:
        NotFoundError: the assignment is not this user's.
        ConflictError: the key was used by someone else, the task was already judged or
            skipped, or its reservation expired and the item filled up meanwhile.
    """
    now = now or utcnow()
    prior = find_judgment_by_key(session, idempotency_key)
    if prior is not None:
        if prior.judge_id != user_id:
            raise ConflictError(
                "this submission id was already used by another judge; send a fresh one",
                field="submission_id",
            )
        return prior, False
    a = session.get(Assignment, assignment_id)
    if a is None or a.user_id != user_id:
        raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
    item = session.get(Item, a.item_id)
    assert item is not None
    if a.status in ("submitted", "skipped"):
        raise ConflictError(
            f"task {assignment_id} was already {a.status}; ask for the next task",
            field="assignment_id",
        )
    was = a.status
    judgment_id = "j_" + _digest(idempotency_key, user_id)
    took = _update(
        session,
        update(Assignment)
        .where(Assignment.assignment_id == assignment_id, Assignment.status == was)
        .values(status="submitted", judgment_id=judgment_id)
    )
    if took.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"task {assignment_id} changed meanwhile; retry", field="assignment_id")
    if was == "reserved":
        _update(
            session,
            update(Item)
            .where(Item.item_id == item.item_id)
            .values(done=Item.done + 1, reserved=Item.reserved - 1)
        )
    else:  # expired: the slot was released, take a free one if any is left
        cond = [Item.item_id == item.item_id]
        if not item.is_gold:
            cond.append(Item.done + Item.reserved < Item.target)
        res = _update(
            session,
            update(Item)
            .where(*cond)
            .values(done=Item.done + 1, is_open=(Item.done + Item.reserved + 1) < Item.target)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError(
                "your reservation of this task expired and other annotators filled it; "
                "ask for the next task",
                field="assignment_id",
            )
    started = _aware(started_at) or _aware(a.reserved_at)
    if started is not None and (started > now or started < now - timedelta(days=2)):
        started = _aware(a.reserved_at)
    row = JudgmentRow(
        judgment_id=judgment_id,
        prompt_id=item.prompt_id,
        response_ids=list(a.shown_order or item.response_ids),
        kind=kind,
        judge_id=user_id,
        value=value,
        item_id=item.item_id,
        project_id=item.project_id,
        guideline_version=guideline_version,
        batch_id=item.batch_id,
        started_at=started,
        submitted_at=now,
        comment=comment or None,
        flags=list(flags),
        idempotency_key=idempotency_key,
        source="app",
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent twin with the same key won the race
        raise ConflictError(
            "this submission is being stored by a concurrent request; retry to get it",
            field="submission_id",
        ) from exc
    return row, True


def skip_task(session: Session, assignment_id: str, user_id: str, reason: str) -> None:
    """Mark a reserved task skipped (with the reason) and free its slot.

    Raises:
        InputError: empty reason.
        NotFoundError: not this user's task.
    """
    if not reason.strip():
        raise InputError("say why you skip this task", field="reason")
    a = session.get(Assignment, assignment_id)
    if a is None or a.user_id != user_id:
        raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
    res = _update(
        session,
        update(Assignment)
        .where(Assignment.assignment_id == assignment_id, Assignment.status == "reserved")
        .values(status="skipped", reason=f"skipped: {reason.strip()[:500]}")
    )
    if res.rowcount == 1:  # type: ignore[attr-defined]
        _release(session, a.item_id)
    session.flush()
