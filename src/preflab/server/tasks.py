"""The units of work of the task page and the task API: serve, show, submit and skip.

Each function runs one call of :mod:`preflab.collect` in one transaction on the app's
:class:`~preflab.server.db.Database`; a judgment is acknowledged only after its transaction
commits. What is HTTP-process state lives here: the sweep of expired reservations, at most
every ``SWEEP_SECONDS`` per process, the retry of a submission whose twin won the race, and the
bounds of the client's clock (``started_at_ms``), which only the server can check against now.
"""

from __future__ import annotations

import time

from preflab import collect
from preflab.errors import ConflictError, InputError
from preflab.server.db import Database
from preflab.server.deps import Caller
from preflab.settings import Settings

__all__ = ["SWEEP_SECONDS", "check_started_at", "serve_next", "show_task", "skip", "submit"]

SWEEP_SECONDS = 10.0
# How far ahead of the server's clock a client's ``started_at_ms`` may be (clock skew).
STARTED_SKEW_MS = 24 * 3600 * 1000


def serve_next(
    db: Database, settings: Settings, project_id: str, user: collect.User | Caller
) -> collect.TaskView | None:
    """Reserve the user's next task in the project (or resume a live one); None when done.

    The caller (a :class:`Caller`) is looked up in the same transaction.

    Raises:
        NotFoundError: a project the user may not see.
    """
    now = time.monotonic()
    if now >= db.next_sweep:
        db.next_sweep = now + SWEEP_SECONDS
        with db.transaction() as conn:
            collect.expire_reservations(conn)
    with db.transaction() as conn:
        who = user.user(conn, write=True) if isinstance(user, Caller) else user
        return collect.serve_task(conn, project_id, who,
                                  reservation_seconds=settings.reservation_seconds)


def show_task(db: Database, user: collect.User, assignment_id: str) -> collect.TaskView:
    """Return one of the user's tasks, in a project the user may still see."""
    with db.connect() as conn:
        return collect.show_task(conn, assignment_id, user)


def submit(
    db: Database, user: collect.User | Caller, assignment_id: str, sub: collect.JudgmentCreate
) -> tuple[collect.Judgment, bool]:
    """Validate and store a submission in one transaction; return it and whether it is new.

    A repeated ``submission_id`` returns the first stored judgment (idempotent), also when a
    concurrent twin of the same submission committed first.

    Raises:
        InputError: ``started_at_ms`` is not a time between 1970 and now (plus a day of skew).
    """
    check_started_at(sub.started_at_ms)
    try:
        with db.transaction() as conn:
            who = user.user(conn, write=True) if isinstance(user, Caller) else user
            return collect.submit(conn, who.user_id, assignment_id, sub)
    except ConflictError:
        with db.connect() as conn:
            prior = collect.find_judgment_by_key(conn, sub.submission_id)
            who = user.user(conn) if isinstance(user, Caller) else user
        if prior is not None and prior.judge_id == who.user_id:
            return prior, False
        raise


def check_started_at(started_at_ms: int | None, field: str = "body.started_at_ms") -> None:
    """Refuse a task-shown time that is no real moment: before 1970 or after tomorrow.

    Raises:
        InputError: naming ``field``; the client should send ``Date.now()`` of when the task
            was shown, or leave the field out.
    """
    if started_at_ms is None:
        return
    latest = int(time.time() * 1000) + STARTED_SKEW_MS
    if not 0 <= started_at_ms <= latest:
        raise InputError(
            f"{started_at_ms} is not a time in milliseconds since 1970 up to now (a day of "
            "clock skew allowed); send Date.now() of when the task was shown, or leave it out",
            field=field, value=started_at_ms)


def skip(db: Database, user: collect.User, assignment_id: str, reason: str) -> None:
    """Skip one of the user's reserved tasks, with the reason."""
    with db.transaction() as conn:
        collect.skip_task(conn, assignment_id, user.user_id, reason)
