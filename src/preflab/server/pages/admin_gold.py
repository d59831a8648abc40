"""Admin gold pages (issue 13): mark an item gold from its page, upload a file of gold answers,
set the project's gold threshold, and the gold section of the admin project page (accuracy
per annotator over time as a static SVG plot, who the threshold flags).

The plot is drawn on the server by the audit report's SVG charts: the page stays offline (no
CDN, no script).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from preflab import collect
from preflab.audit.report.svg import line_chart
from preflab.collect import Project, User
from preflab.collect.live_views import response_texts
from preflab.errors import InputError, NotFoundError
from preflab.server.api.v1.gold import GoldAccuracyPage, accuracy_page
from preflab.server.db import Database
from preflab.server.deps import AdminUser, CsrfForm, DbDep, visible_project

router = APIRouter(prefix="/admin")

#: Annotators drawn in the accuracy plot (the lowest accuracy first); the table lists all.
PLOT_SERIES = 8


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)


def accuracy_plot(page: GoldAccuracyPage) -> str:
    """Return the SVG line chart of each annotator's running gold accuracy ("" when no gold
    answer is in yet), with the threshold's minimum as a flat line."""
    rows = sorted((a for a in page.annotators if a.points),
                  key=lambda a: (a.accuracy or 0.0, a.judge_id))[:PLOT_SERIES]
    if not rows:
        return ""
    longest = max(len(a.points) for a in rows)
    series: dict[str, Sequence[float | None]] = {
        a.judge_id: [p.accuracy for p in a.points] + [None] * (longest - len(a.points))
        for a in rows
    }
    if page.threshold is not None:
        series[f"minimum ({page.threshold.min_accuracy:.0%})"] = (
            [page.threshold.min_accuracy] * longest)
    x = [float(n) for n in range(1, longest + 1)]
    return line_chart(x, series, title="Gold accuracy per annotator over time",
                      y_label="accuracy so far", x_label="gold items answered", y_max=1.0)


def gold_context(db: Database, project: Project) -> dict[str, Any]:
    """Return the gold section's context for the admin project page."""
    with db.connect() as conn:
        page = accuracy_page(project, collect.gold_history(conn, project.project_id))
        n_gold = collect.gold.count_gold(conn, project.project_id)
    return {"gold_page": page, "gold_plot": accuracy_plot(page), "n_gold": n_gold,
            "gold_error": None, "gold_message": None}


def item_context(db: Database, item: collect.Item) -> dict[str, Any]:
    """Return the item page's gold form context: each response's text (shortened)."""
    with db.connect() as conn:
        texts = response_texts(conn, item.response_ids)
    return {"texts": {rid: (t[:400] + "…") if len(t) > 400 else t for rid, t in texts.items()},
            "gold_error": None}


def answer_from_form(project: Project, form: Mapping[str, Any]) -> dict[str, Any]:
    """Return the gold answer a page form gives: the JSON box if filled, else the choice.

    Raises:
        InputError: no answer chosen, or the JSON box is not a JSON object.
    """
    raw = str(form.get("answer_json") or "").strip()
    if raw:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"the answer box must hold a JSON object ({exc.msg} at column "
                             f"{exc.colno})", field="answer_json") from None
        if not isinstance(parsed, dict):
            raise InputError("the answer box must hold a JSON object", field="answer_json")
        return parsed
    choice = str(form.get("choice") or "")
    kind, _, rid = choice.partition(":")
    if kind in ("tie", "both_bad"):
        return {kind: True}
    if kind == "preferred" and project.kind == "pairwise":
        return {"preferred": rid}
    if kind == "best":
        return {"best": rid}
    if kind in ("up", "down"):
        return {"label": kind == "up"}
    raise InputError("choose the expected answer (or write it as JSON in the answer box)",
                     field="choice")


def _item(db: Database, project_id: str, item_id: str) -> collect.Item:
    with db.connect() as conn:
        item = collect.get_item(conn, item_id)
    if item is None or item.project_id != project_id:
        raise NotFoundError(f"no item {item_id!r} in this project", field="item_id")
    return item


def _item_page(request: Request, admin: User, db: Database, project: Project,
               item: collect.Item, error: str, status: int) -> Response:
    with db.connect() as conn:
        assignments = [a for a in collect.list_assignments(conn, item.item_id)
                       if a.project_id == project.project_id]
    ctx = {"user": admin, "project": project, "item": item, "assignments": assignments,
           **item_context(db, item), "gold_error": error}
    return _render(request, "admin/item.html", ctx, status)


@router.post("/projects/{project_id}/items/{item_id}/gold", dependencies=[CsrfForm])
async def item_gold_save(request: Request, project_id: str, item_id: str, admin: AdminUser,
                         db: DbDep) -> Response:
    project = visible_project(db, admin, project_id)
    item = _item(db, project_id, item_id)
    form = await request.form()
    try:
        answer = answer_from_form(project, form)
        with db.transaction() as conn:
            collect.set_gold(conn, project_id, [collect.GoldLine(0, item_id, answer)])
    except InputError as exc:
        return _item_page(request, admin, db, project, item, str(exc), exc.http_status)
    return RedirectResponse(f"/admin/projects/{project_id}/items/{item_id}", status_code=303)


@router.post("/projects/{project_id}/items/{item_id}/gold/clear", dependencies=[CsrfForm])
def item_gold_clear(project_id: str, item_id: str, admin: AdminUser, db: DbDep) -> Response:
    visible_project(db, admin, project_id)
    _item(db, project_id, item_id)
    with db.transaction() as conn:
        collect.clear_gold(conn, project_id, [item_id])
    return RedirectResponse(f"/admin/projects/{project_id}/items/{item_id}", status_code=303)


def _project_gold_page(request: Request, admin: User, db: Database, project_id: str,
                       status: int, **gold: Any) -> Response:
    from preflab.server.pages.admin import _project_page

    return _project_page(request, admin, db, project_id, status, **gold)


@router.post("/projects/{project_id}/gold/upload", dependencies=[CsrfForm])
async def gold_upload(request: Request, project_id: str, admin: AdminUser,
                      db: DbDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    visible_project(db, admin, project_id)
    form = await request.form()
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InputError("choose a CSV or JSONL file of gold answers", field="file")
        data, name = await upload.read(), upload.filename
    except InputError as exc:
        return _project_gold_page(request, admin, db, project_id, exc.http_status,
                                  gold_error=str(exc))
    finally:
        await form.close()

    def work() -> int:
        with db.transaction() as conn:
            return collect.load_gold_file(conn, project_id, name, data)

    try:
        n = await run_in_threadpool(work)
    except InputError as exc:
        return _project_gold_page(request, admin, db, project_id, exc.http_status,
                                  gold_error=str(exc))
    return _project_gold_page(request, admin, db, project_id, 200,
                              gold_message=f"{n} gold answers stored from {name}.")


@router.post("/projects/{project_id}/gold/threshold", dependencies=[CsrfForm])
async def gold_threshold_save(request: Request, project_id: str, admin: AdminUser,
                              db: DbDep) -> Response:
    visible_project(db, admin, project_id)
    form = await request.form()
    try:
        if form.get("remove"):
            threshold = None
        else:
            try:
                pct = float(str(form.get("min_accuracy") or ""))
                after = int(str(form.get("after") or ""))
            except ValueError:
                raise InputError("give the minimum accuracy (percent) and the number of gold "
                                 "items after which it applies", field="min_accuracy") from None
            if not 0 <= pct <= 100:
                raise InputError(f"the minimum gold accuracy is a percent within 0..100, got "
                                 f"{pct:g}", field="min_accuracy", value=pct)
            threshold = {"min_accuracy": pct / 100, "after": after,
                         "stop_serving": form.get("stop_serving") == "on"}
        with db.transaction() as conn:
            collect.set_gold_threshold(conn, project_id, threshold)
    except InputError as exc:
        return _project_gold_page(request, admin, db, project_id, exc.http_status,
                                  gold_error=str(exc))
    return RedirectResponse(f"/admin/projects/{project_id}#gold", status_code=303)
