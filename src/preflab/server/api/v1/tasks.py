"""The queue and submissions: next task, read a task, submit a judgment, skip."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from preflab.server import tasks
from preflab.server.api.v1.schemas import JudgmentPublic, SkipCreate
from preflab.server.deps import CurrentUser, DbDep, SettingsDep, visible_project
from preflab.server.judging import JudgmentCreate

router = APIRouter(tags=["tasks"])


@router.post("/projects/{project_id}/tasks/next")
def next_task(project_id: str, user: CurrentUser, db: DbDep,
              settings: SettingsDep) -> dict[str, Any]:
    """Reserve your next task (or return the one you hold); ``{"task": null}`` when done."""
    project = visible_project(db, user, project_id)
    view = tasks.serve_next(db, settings, project, user)
    return {"task": view.to_dict() if view else None}


@router.get("/tasks/{assignment_id}")
def read_task(assignment_id: str, user: CurrentUser, db: DbDep) -> dict[str, Any]:
    """Return one of your tasks: prompt, responses in the order shown, guidelines version."""
    view = tasks.show_task(db, lambda pid: visible_project(db, user, pid), user, assignment_id)
    return view.to_dict()


@router.post("/tasks/{assignment_id}/judgments", status_code=201)
def submit_judgment(
    assignment_id: str, body: JudgmentCreate, user: CurrentUser, db: DbDep, response: Response
) -> JudgmentPublic:
    """Submit the judgment of a task. Repeating a ``submission_id`` returns the stored
    judgment with status 200 instead of making a second one."""
    row, created = tasks.submit(db, user, assignment_id, body)
    if not created:
        response.status_code = 200
    return JudgmentPublic.of(row)


@router.post("/tasks/{assignment_id}/skip", status_code=204)
def skip_task(assignment_id: str, body: SkipCreate, user: CurrentUser, db: DbDep) -> Response:
    """Skip a task you hold, saying why; the item goes back to the queue."""
    tasks.skip(db, user, assignment_id, body.reason)
    return Response(status_code=204)
