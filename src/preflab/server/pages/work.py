"""Annotator pages: home, project, the task page, guidelines and "my judgments"."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from preflab import collect
from preflab.collect import FLAGS, JudgmentCreate, scale_labels
from preflab.errors import InputError
from preflab.server import tasks
from preflab.server.deps import CsrfForm, CurrentUser, DbDep, SettingsDep, visible_project

router = APIRouter()

PAGE = 50


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)


@router.get("/")
def home(request: Request, user: CurrentUser, db: DbDep) -> Response:
    with db.connect() as conn:
        projects = collect.list_projects(conn, user)
        mine = {p.project_id: collect.list_judgments(conn, p.project_id, judge_id=user.user_id,
                                                     limit=1)[1] for p in projects}
    return _render(request, "home.html", {"user": user, "projects": projects, "mine": mine})


@router.get("/projects/{project_id}")
def project_page(request: Request, project_id: str, user: CurrentUser, db: DbDep) -> Response:
    project = visible_project(db, user, project_id)
    with db.connect() as conn:
        _, mine = collect.list_judgments(conn, project_id, judge_id=user.user_id, limit=1)
        guideline = collect.current_guideline(conn, project_id)
    return _render(request, "project.html",
                   {"user": user, "project": project, "mine": mine, "guideline": guideline})


@router.get("/projects/{project_id}/work")
def work(request: Request, project_id: str, user: CurrentUser, db: DbDep,
         settings: SettingsDep) -> Response:
    project = visible_project(db, user, project_id)
    view = tasks.serve_next(db, settings, project.project_id, user)
    if view is None:
        return _render(request, "done.html", {"user": user, "project": project})
    return RedirectResponse(f"/tasks/{view.task.assignment.assignment_id}", status_code=303)


def _task_page(request: Request, user: Any, db: Any, assignment_id: str,
               error: str | None = None, status: int = 200) -> Response:
    view = tasks.show_task(db, user, assignment_id)
    if view.task.assignment.status == "submitted":
        return RedirectResponse(f"/projects/{view.project.project_id}/work", status_code=303)
    return _render(request, "task.html", {
        "user": user, "view": view, "project": view.project, "error": error,
        "labels": scale_labels(view.project.scale) if view.project.kind == "pairwise" else [],
        "flags": FLAGS, "config": view.project.config or {},
        # the original texts: span offsets count characters of these, not of the rendered HTML
        "span_texts": {r.response_id: r.content for r in view.task.responses},
    }, status)


@router.get("/tasks/{assignment_id}")
def task_page(request: Request, assignment_id: str, user: CurrentUser, db: DbDep) -> Response:
    return _task_page(request, user, db, assignment_id)


def _submission(form: Any) -> JudgmentCreate:
    ranks = {k[5:]: int(v) for k, v in form.items()
             if k.startswith("rank_") and str(v).strip().isdigit()}
    scores: dict[str, dict[str, float]] = {}
    for k, v in form.items():
        if k.startswith("score__") and str(v).strip():
            _, rid, attr = k.split("__", 2)
            scores.setdefault(rid, {})[attr] = float(v)
    label = form.get("label")
    started = form.get("started_at_ms")
    spans_text = str(form.get("spans") or "").strip() or "[]"
    try:
        spans = json.loads(spans_text)
    except json.JSONDecodeError:
        raise InputError("the flagged spans are not valid JSON", field="spans") from None
    if not isinstance(spans, list):
        raise InputError("the flagged spans must be a JSON list", field="spans")
    try:
        return JudgmentCreate(
            submission_id=form.get("submission_id") or "",
            choice=form.get("choice"),
            ranks=ranks or None,
            all_bad=form.get("all_bad") == "on",
            scores=scores or None,
            label=None if label is None else label == "up",
            reasons=form.getlist("reasons"),
            comment=(form.get("comment") or "").strip() or None,
            flags=form.getlist("flags"),
            spans=spans,
            critique=(form.get("critique") or "").strip() or None,
            started_at_ms=int(started) if started and str(started).isdigit() else None,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "submission_id"
        raise InputError(f"the form is incomplete or malformed: {field}: {err.get('msg')}",
                         field=field) from None
    except ValueError as exc:
        raise InputError(f"the form is incomplete or malformed: {exc}",
                         field="submission_id") from None


@router.post("/tasks/{assignment_id}", dependencies=[CsrfForm])
async def submit_task(request: Request, assignment_id: str, user: CurrentUser,
                      db: DbDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()

    def run() -> Response:
        try:
            sub = _submission(form)
            row, _ = tasks.submit(db, user, assignment_id, sub)
        except InputError as exc:
            return _task_page(request, user, db, assignment_id, error=str(exc), status=422)
        return RedirectResponse(f"/projects/{row.project_id}/work", status_code=303)

    return await run_in_threadpool(run)


@router.post("/tasks/{assignment_id}/skip", dependencies=[CsrfForm])
async def skip_task(request: Request, assignment_id: str, user: CurrentUser,
                    db: DbDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    reason = str(form.get("reason") or "")

    def run() -> Response:
        view = tasks.show_task(db, user, assignment_id)
        tasks.skip(db, user, assignment_id, reason)
        return RedirectResponse(f"/projects/{view.project.project_id}/work", status_code=303)

    return await run_in_threadpool(run)


@router.get("/projects/{project_id}/guidelines")
def guidelines_page(request: Request, project_id: str, user: CurrentUser, db: DbDep,
                    version: int | None = None) -> Response:
    project = visible_project(db, user, project_id)
    with db.connect() as conn:
        current = collect.current_guideline(conn, project_id)
        shown = (collect.get_guideline(conn, project_id, version) if version is not None
                 else current)
    return _render(request, "guidelines.html", {
        "user": user, "project": project, "shown": shown,
        "versions": list(range((current.version if current else 0), 0, -1)),
    })


@router.get("/projects/{project_id}/mine")
def my_judgments(request: Request, project_id: str, user: CurrentUser, db: DbDep,
                 page: int = 1) -> Response:
    project = visible_project(db, user, project_id)
    page = max(page, 1)
    with db.connect() as conn:
        rows, total = collect.list_judgments(conn, project_id, judge_id=user.user_id,
                                             offset=(page - 1) * PAGE, limit=PAGE)
    return _render(request, "mine.html", {"user": user, "project": project, "rows": rows,
                                          "page": page, "pages": max(1, -(-total // PAGE)),
                                          "total": total})
