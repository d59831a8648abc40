"""What the task page and the task API share: serve, show, submit and skip a task.

Each function runs one unit of work on the app's :class:`~preflab.server.db.Database`; a
judgment is acknowledged only after its transaction commits.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from preflab.errors import ConflictError, NotFoundError
from preflab.server.db import Database
from preflab.server.deps import Caller
from preflab.server.judging import JudgmentCreate, build_value
from preflab.settings import Settings
from preflab.store.queries import collect
from preflab.store.queries.scope import connection_of
from preflab.store.tables import JudgmentRow, ProjectRow, User, utcnow

__all__ = ["SWEEP_SECONDS", "TaskView", "serve_next", "show_task", "skip", "submit"]

SWEEP_SECONDS = 10.0


@dataclass(frozen=True)
class TaskView:
    """A task as pages and the API show it."""

    task: collect.Task
    project: ProjectRow
    guideline_version: int | None
    guideline_text: str
    guideline_changes: list[str]  # unified diff since the version last worked under

    def to_dict(self) -> dict[str, Any]:
        t = self.task
        return {
            "assignment_id": t.assignment.assignment_id,
            "item_id": t.item.item_id,
            "project_id": self.project.project_id,
            "kind": self.project.kind,
            "status": t.assignment.status,
            "expires_at": _iso(t.assignment.expires_at),
            "prompt": {"prompt_id": t.prompt.prompt_id, "messages": t.prompt.messages},
            "responses": [{"response_id": r.response_id, "content": r.content}
                          for r in t.responses],
            "guideline_version": self.guideline_version,
            "guideline_changes": self.guideline_changes,
        }


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()


def _view(
    bind: Any,
    project: ProjectRow,
    user: User,
    task: collect.Task,
    guideline_state: tuple[int | None, str, int | None, str | None] | None = None,
) -> TaskView:
    if guideline_state is None:
        guideline_state = collect.load_guideline_state(connection_of(bind), project.project_id,
                                                       user.user_id)
    version, text, last, old_text = guideline_state
    changes: list[str] = []
    if version is not None and last is not None and last != version:
        changes = list(difflib.unified_diff(
            (old_text or "").splitlines(), text.splitlines(),
            f"version {last}", f"version {version}", lineterm="", n=1,
        ))
    return TaskView(task, project, version, text, changes)


def serve_next(
    db: Database, settings: Settings, project: ProjectRow | str, user: User | Caller
) -> TaskView | None:
    """Reserve the user's next task in the project (or resume a live one); None when done.

    ``project`` may be given by id: it is then looked up (and checked visible to the user) in
    the same transaction, as is the user when given as a :class:`Caller`. Expired reservations are also swept here, at most every
    ``SWEEP_SECONDS`` per process.

    Raises:
        NotFoundError: a project id the user may not see.
    """
    now = time.monotonic()
    if now >= getattr(db, "next_sweep", 0.0):
        db.next_sweep = now + SWEEP_SECONDS  # type: ignore[attr-defined]
        with db.transaction() as conn:
            collect.expire_reservations(conn, utcnow())
    with db.transaction() as conn:
        if isinstance(user, Caller):
            user = user.user(conn)
        state, has_live, at = None, None, utcnow()
        if isinstance(project, str):
            found = collect.load_project_state(conn, project, user, at)
            if found is None:
                raise NotFoundError(f"no project {project!r}", field="project_id")
            project, state = found
            has_live = project.g_live is not None
        task = collect.next_task(
            conn, project, user.user_id, now=at, reservation_seconds=settings.reservation_seconds,
            seed=project.project_id, has_live=has_live,
        )
        return None if task is None else _view(conn, project, user, task, state)


def show_task(db: Database, project_of: Any, user: User, assignment_id: str) -> TaskView:
    """Return one of the user's tasks (``project_of(project_id)`` checks visibility)."""
    with db.read() as s:
        task = collect.get_task(s, assignment_id, user.user_id)
        project = project_of(task.item.project_id)
        return _view(s, project, user, task)


def submit(
    db: Database, user: User | Caller, assignment_id: str, sub: JudgmentCreate
) -> tuple[JudgmentRow, bool]:
    """Validate and store a submission in one transaction; return it and whether it is new.

    A repeated ``submission_id`` returns the first stored judgment (idempotent). Owning the
    assignment is what allows the submission: it was served from a project the user may see.
    """
    started = (
        datetime.fromtimestamp(sub.started_at_ms / 1000, UTC) if sub.started_at_ms else None
    )
    try:
        with db.transaction() as conn:
            if isinstance(user, Caller):
                user = user.user(conn)
            ctx = collect.load_submit_context(conn, assignment_id, sub.submission_id)
            if ctx is None or ctx.user_id != user.user_id:
                raise NotFoundError(f"no task {assignment_id!r}", field="assignment_id")
            project = ctx.project
            # flagged spans are checked against the responses' texts in this transaction
            texts = (collect.load_response_texts(conn, ctx.shown_order)
                     if getattr(sub, "spans", None) else None)
            value = build_value(project, ctx.shown_order, sub, texts)
            version = ctx.guideline_version
            row, created = collect.submit_judgment(
                conn,
                assignment_id=assignment_id,
                user_id=user.user_id,
                kind=project.kind,
                value=value,
                idempotency_key=sub.submission_id,
                guideline_version=version,
                started_at=started,
                comment=sub.comment,
                flags=sub.flags,
                assignment=ctx.assignment,
                key_is_new=ctx.key_judge_id is None,
            )
            if created and (not ctx.is_member or ctx.last_guideline_version != version):
                collect.set_member_guideline_version(conn, project.project_id, user.user_id,
                                                     version)
            return row, created
    except ConflictError:
        # a concurrent twin of this very submission may have committed first
        with db.connect() as conn:
            prior = collect.find_judgment_by_key(conn, sub.submission_id)
            if isinstance(user, Caller):
                user = user.user(conn)
        if prior is not None and prior.judge_id == user.user_id:
            return prior, False
        raise


def skip(db: Database, user: User, assignment_id: str, reason: str) -> None:
    """Skip one of the user's reserved tasks, with the reason."""
    with db.transaction() as conn:
        collect.skip_task(conn, assignment_id, user.user_id, reason)
