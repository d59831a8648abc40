"""The queue and submissions: next task, read a task, submit a judgment, skip."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from preflab.collect import JudgmentCreate
from preflab.server import tasks
from preflab.server.api.v1.schemas import JudgmentPublic, SkipCreate, TaskNext, TaskPublic
from preflab.server.deps import CallerDep, CurrentUser, DbDep

router = APIRouter(tags=["tasks"])


def _next(db: Any, settings: Any, user: Any, project_id: str) -> bytes:
    view = tasks.serve_next(db, settings, project_id, user)  # checks the project is visible
    return json.dumps({"task": view.to_dict() if view else None}, ensure_ascii=False).encode()


# The handlers are coroutines that hand their unit of work to ``db.run`` (inline on SQLite, a
# worker thread on PostgreSQL; see preflab.server.db). Next task and submit look the caller up
# inside that unit's transaction (see deps.Caller). Both, and "read task", declare their
# response schema (it is in /openapi.json) but encode the body once themselves: a returned
# model would be validated again on the way out. tests/server/test_api.py checks the bodies
# against the schemas.


@router.post("/projects/{project_id}/tasks/next", response_model=TaskNext)
async def next_task(project_id: str, user: CallerDep, request: Request) -> Response:
    """Reserve your next task (or return the one you hold); ``{"task": null}`` when done."""
    # the app's state read directly: two dependencies fewer to resolve on the hottest route
    db, settings = request.app.state.db, request.app.state.settings
    body = await db.run(_next, db, settings, user, project_id)
    return Response(body, media_type="application/json")


@router.get("/tasks/{assignment_id}", response_model=TaskPublic)
async def read_task(assignment_id: str, user: CurrentUser, db: DbDep) -> Response:
    """Return one of your tasks: prompt, responses in the order shown, guidelines version."""
    view = await db.run(tasks.show_task, db, user, assignment_id)
    return Response(json.dumps(view.to_dict(), ensure_ascii=False).encode(),
                    media_type="application/json")


@router.post("/tasks/{assignment_id}/judgments", status_code=201,
             response_model=JudgmentPublic)
async def submit_judgment(
    assignment_id: str, body: JudgmentCreate, user: CallerDep, request: Request
) -> Response:
    """Submit the judgment of a task. Repeating a ``submission_id`` returns the stored
    judgment with status 200 instead of making a second one."""
    db = request.app.state.db
    row, created = await db.run(tasks.submit, db, user, assignment_id, body)
    return Response(JudgmentPublic.of(row).model_dump_json(), status_code=201 if created else 200,
                    media_type="application/json")


@router.post("/tasks/{assignment_id}/skip", status_code=204)
async def skip_task(assignment_id: str, body: SkipCreate, user: CurrentUser,
                    db: DbDep) -> Response:
    """Skip a task you hold, saying why; the item goes back to the queue."""
    await db.run(tasks.skip, db, user, assignment_id, body.reason)
    return Response(status_code=204)
