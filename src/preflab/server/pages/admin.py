"""Admin pages: projects and progress, items (and why each was served), judgments, guidelines,
members, users and tokens, import and export, and a project's model endpoints and live config
(live collection)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from preflab import collect
from preflab.collect import Project, ProjectCreate, ProjectEndpoint, User
from preflab.collect.endpoints import ENV_NAME_PATTERN
from preflab.collect.live_config import LIVE_MODES
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.server import accounts, transfer
from preflab.server.api.v1.schemas import JudgmentPublic
from preflab.server.db import Database
from preflab.server.deps import AdminUser, CsrfForm, DbDep, visible_project
from preflab.server.pages.admin_gold import gold_context, item_context

router = APIRouter(prefix="/admin")
PAGE = 50


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE))


@router.get("")
def admin_home(request: Request, admin: AdminUser, db: DbDep) -> Response:
    with db.connect() as conn:
        rows = [(p, collect.project_progress(conn, p.project_id))
                for p in collect.list_projects(conn)]
    return _render(request, "admin/index.html", {"user": admin, "rows": rows})


@router.get("/projects/new")
def new_project_page(request: Request, admin: AdminUser) -> Response:
    return _render(request, "admin/project_new.html", {"user": admin, "error": None})


@router.post("/projects", dependencies=[CsrfForm])
async def create_project(request: Request, admin: AdminUser, db: DbDep) -> Response:
    form = await request.form()
    try:
        spec = ProjectCreate(
            name=str(form.get("name") or ""),
            kind=str(form.get("kind") or "pairwise"),  # type: ignore[arg-type]
            scale=int(str(form.get("scale") or 5)),
            allow_tie=form.get("allow_tie") == "on",
            allow_both_bad=form.get("allow_both_bad") == "on",
            attributes=[a.strip() for a in str(form.get("attributes") or "").split(",")
                        if a.strip()],
            overlap=int(str(form.get("overlap") or 1)),
            overlap_share=float(str(form.get("overlap_share") or 1)),
            gold_share=float(str(form.get("gold_share") or 0)),
            reason_tags=[a.strip() for a in str(form.get("reason_tags") or "").split(",")
                         if a.strip()],
            span_flags=form.get("span_flags") == "on",
            span_labels=[a.strip() for a in str(form.get("span_labels") or "").split(",")
                         if a.strip()],
            critique={"off": False, "optional": True, "required": "required"}.get(
                str(form.get("critique") or "off"), False),
        )
    except (ValidationError, ValueError) as exc:
        msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        return _render(request, "admin/project_new.html", {"user": admin, "error": msg}, 422)
    with db.transaction() as conn:
        row = collect.create_project(conn, spec)
    return RedirectResponse(f"/admin/projects/{row.project_id}", status_code=303)


@router.get("/projects/{project_id}")
def project_admin(request: Request, project_id: str, admin: AdminUser, db: DbDep) -> Response:
    return _project_page(request, admin, db, project_id)


def _project_page(request: Request, admin: User, db: Database, project_id: str,
                  status: int = 200, **live_forms: Any) -> Response:
    """Render the admin project page (``live_forms``: a refused endpoint or live-config form,
    its error and the values given, shown again beside the form)."""
    project = visible_project(db, admin, project_id)
    with db.connect() as conn:
        progress = collect.project_progress(conn, project_id)
        members = collect.list_members(conn, project_id)
        guideline = collect.current_guideline(conn, project_id)
        endpoints = collect.list_endpoints(conn, project_id)
    agreement = transfer.agreement_summary(db, project)
    return _render(request, "admin/project.html", {
        "user": admin, "project": project, "progress": progress, "members": members,
        "guideline": guideline, "agreement": agreement, "exports": transfer.export_formats(),
        **_models_context(project, endpoints), **gold_context(db, project), **live_forms,
    }, status)


@router.post("/projects/{project_id}/members", dependencies=[CsrfForm])
def add_member(project_id: str, admin: AdminUser, db: DbDep,
               username: Annotated[str, Form()]) -> Response:
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        user = collect.get_user_by_username(conn, username.strip())
        if user is None:
            raise NotFoundError(f"no user named {username!r}", field="username")
        collect.add_member(conn, project_id, user.user_id)
    return RedirectResponse(f"/admin/projects/{project_id}", status_code=303)


@router.get("/projects/{project_id}/guidelines")
def guidelines_edit(request: Request, project_id: str, admin: AdminUser, db: DbDep) -> Response:
    project = visible_project(db, admin, project_id)
    with db.connect() as conn:
        current = collect.current_guideline(conn, project_id)
    return _render(request, "admin/guidelines.html",
                   {"user": admin, "project": project, "current": current})


@router.post("/projects/{project_id}/guidelines", dependencies=[CsrfForm])
def guidelines_save(project_id: str, admin: AdminUser, db: DbDep,
                    text: Annotated[str, Form()]) -> Response:
    visible_project(db, admin, project_id)
    if not text.strip():
        raise InputError("guidelines must not be empty", field="text")
    with db.transaction() as conn:
        current = collect.current_guideline(conn, project_id)
        if current is None or current.text != text:
            collect.add_guideline_version(conn, project_id, text, admin.username)
    return RedirectResponse(f"/admin/projects/{project_id}", status_code=303)


@router.get("/projects/{project_id}/items")
def items_page(request: Request, project_id: str, admin: AdminUser, db: DbDep,
               page: int = 1) -> Response:
    project = visible_project(db, admin, project_id)
    page = max(page, 1)
    with db.connect() as conn:
        items, total = collect.list_items(conn, project_id, offset=(page - 1) * PAGE, limit=PAGE)
    return _render(request, "admin/items.html", {"user": admin, "project": project,
                                                  "items": items, "page": page,
                                                  "pages": _pages(total), "total": total})


@router.get("/projects/{project_id}/items/{item_id}")
def item_page(request: Request, project_id: str, item_id: str, admin: AdminUser,
              db: DbDep) -> Response:
    project = visible_project(db, admin, project_id)
    with db.connect() as conn:
        assignments = [a for a in collect.list_assignments(conn, item_id)
                       if a.project_id == project_id]
        item = collect.get_item(conn, item_id)
        if item is None or item.project_id != project_id:
            raise NotFoundError(f"no item {item_id!r} in this project", field="item_id")
    return _render(request, "admin/item.html", {"user": admin, "project": project,
                                                 "item": item, "assignments": assignments,
                                                 **item_context(db, item)})


@router.get("/projects/{project_id}/judgments")
def judgments_page(request: Request, project_id: str, admin: AdminUser, db: DbDep,
                   page: int = 1, judge_id: str | None = None) -> Response:
    project = visible_project(db, admin, project_id)
    page = max(page, 1)
    with db.connect() as conn:
        rows, total = collect.list_judgments(conn, project_id, judge_id=judge_id or None,
                                             offset=(page - 1) * PAGE, limit=PAGE)
    return _render(request, "admin/judgments.html", {
        "user": admin, "project": project, "rows": rows, "page": page, "pages": _pages(total),
        "total": total, "judge_id": judge_id or ""})


@router.get("/projects/{project_id}/export/judgments.jsonl")
def export_judgments(project_id: str, admin: AdminUser, db: DbDep) -> Response:
    visible_project(db, admin, project_id)

    def lines() -> Iterator[bytes]:
        offset = 0
        while True:
            with db.connect() as conn:
                rows, _ = collect.list_judgments(conn, project_id, offset=offset, limit=1000)
            if not rows:
                return
            for j in rows:
                yield (JudgmentPublic.of(j).model_dump_json() + "\n").encode()
            offset += len(rows)

    return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
        "content-disposition": f'attachment; filename="{project_id}-judgments.jsonl"'})


@router.get("/projects/{project_id}/export/{fmt}")
def export_other(project_id: str, fmt: str, admin: AdminUser, db: DbDep) -> Response:
    project = visible_project(db, admin, project_id)
    data, filename = transfer.export_project(db, project, fmt)
    return Response(data, media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


@router.get("/projects/{project_id}/import")
def import_page(request: Request, project_id: str, admin: AdminUser, db: DbDep) -> Response:
    project = visible_project(db, admin, project_id)
    return _render(request, "admin/import.html", {"user": admin, "project": project,
                                                   "formats": transfer.import_formats(),
                                                   "summary": None})


@router.post("/projects/{project_id}/import", dependencies=[CsrfForm])
async def import_upload(request: Request, project_id: str, admin: AdminUser,
                        db: DbDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    project = visible_project(db, admin, project_id)
    form = await request.form()
    try:
        upload = form.get("file")
        fmt = str(form.get("format") or "hh-rlhf")
        if not isinstance(upload, UploadFile) and not hasattr(upload, "read"):
            raise InputError("choose a file to import", field="file")
        name = getattr(upload, "filename", None) or "upload"
        # the spooled file itself, copied in chunks: the upload is never whole in memory
        spooled = getattr(upload, "file", upload)
        summary = await run_in_threadpool(transfer.import_upload, db, project, fmt, name,
                                          spooled, request.app.state.settings)
    finally:
        await form.close()  # the spooled upload file
    return _render(request, "admin/import.html", {"user": admin, "project": project,
                                                   "formats": transfer.import_formats(),
                                                   "summary": summary})


@router.get("/users")
def users_page(request: Request, admin: AdminUser, db: DbDep, page: int = 1) -> Response:
    page = max(page, 1)
    with db.connect() as conn:
        users = collect.list_users(conn, offset=(page - 1) * PAGE, limit=PAGE)
    return _render(request, "admin/users.html", {"user": admin, "users": users, "page": page,
                                                  "token": None, "error": None})


@router.post("/users", dependencies=[CsrfForm])
def users_add(request: Request, admin: AdminUser, db: DbDep,
              username: Annotated[str, Form()], password: Annotated[str, Form()],
              role: Annotated[str, Form()] = "annotator") -> Response:
    accounts.add_user(db, username, password, role=role)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{username}/disable", dependencies=[CsrfForm])
def users_disable(username: str, admin: AdminUser, db: DbDep) -> Response:
    with db.transaction() as conn:
        collect.set_user_active(conn, username, False)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{username}/enable", dependencies=[CsrfForm])
def users_enable(username: str, admin: AdminUser, db: DbDep) -> Response:
    with db.transaction() as conn:
        collect.set_user_active(conn, username, True)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{username}/token", dependencies=[CsrfForm])
def users_token(request: Request, username: str, admin: AdminUser, db: DbDep) -> Response:
    with db.connect() as conn:
        target = collect.get_user_by_username(conn, username)
        users = collect.list_users(conn, limit=PAGE)
    if target is None:
        raise NotFoundError(f"no user named {username!r}", field="username")
    token = accounts.issue_token(db, target, "admin page")
    return _render(request, "admin/users.html", {"user": admin, "users": users, "page": 1,
                                                  "token": (username, token), "error": None})


# ---- "Models (live collection)": a project's endpoints and live config (issue 12) -----------
# The page shows an endpoint's key variable by NAME and whether the server's environment sets
# it; never a key.

def _models_context(project: Project, endpoints: list[ProjectEndpoint]) -> dict[str, Any]:
    return {
        "endpoints": [(e, collect.api_key_status(e)) for e in endpoints],
        "live": collect.get_live_config(project),
        "endpoint_error": None, "endpoint_form": {}, "live_error": None,
    }


def _endpoint_form(form: Mapping[str, Any], *, with_name: bool) -> dict[str, Any]:
    """Return the endpoint fields of a page form as plain data (blank numbers: defaults)."""
    data: dict[str, Any] = {}
    if with_name:
        data["name"] = str(form.get("name") or "").strip()
    for f in ("base_url", "model"):
        data[f] = str(form.get(f) or "").strip()
    for f in ("revision", "api_key_env"):
        data[f] = str(form.get(f) or "").strip() or None
    for f in ("concurrency", "timeout"):
        if str(form.get(f) or "").strip():
            data[f] = str(form.get(f)).strip()
    data["enabled"] = form.get("enabled") == "on"
    raw = str(form.get("params") or "").strip()
    if raw:
        try:
            data["params"] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"params must be a JSON object, e.g. {{\"temperature\": 0.7}} "
                             f"({exc.msg} at column {exc.colno})", field="params") from None
        if not isinstance(data["params"], dict):
            raise InputError('params must be a JSON object, e.g. {"temperature": 0.7}',
                             field="params")
    elif not with_name:
        data["params"] = {}
    return data


def _form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The values of a refused endpoint form, to show again: every field but the CSRF token,
    and no ``api_key_env`` that is not a variable name (it may be a pasted key)."""
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    if not re.fullmatch(ENV_NAME_PATTERN, values.get("api_key_env", "").strip() or "_"):
        values["api_key_env"] = ""
    return values


@router.post("/projects/{project_id}/endpoints", dependencies=[CsrfForm])
async def endpoint_add(request: Request, project_id: str, admin: AdminUser,
                       db: DbDep) -> Response:
    visible_project(db, admin, project_id)
    form = await request.form()
    try:
        spec = collect.parse_endpoint_create(_endpoint_form(form, with_name=True))
        with db.transaction() as conn:
            collect.add_endpoint(conn, project_id, spec)
    except (InputError, ConflictError) as exc:
        return _project_page(request, admin, db, project_id, exc.http_status,
                             endpoint_error=str(exc), endpoint_form=_form_values(form))
    return RedirectResponse(f"/admin/projects/{project_id}#models", status_code=303)


@router.get("/projects/{project_id}/endpoints/{name}")
def endpoint_edit(request: Request, project_id: str, name: str, admin: AdminUser,
                  db: DbDep) -> Response:
    project = visible_project(db, admin, project_id)
    with db.connect() as conn:
        ep = collect.get_endpoint(conn, project_id, name)
    return _render(request, "admin/endpoint.html", {
        "user": admin, "project": project, "endpoint": ep,
        "key_status": collect.api_key_status(ep), "error": None, "form": None})


@router.post("/projects/{project_id}/endpoints/{name}", dependencies=[CsrfForm])
async def endpoint_save(request: Request, project_id: str, name: str, admin: AdminUser,
                        db: DbDep) -> Response:
    project = visible_project(db, admin, project_id)
    form = await request.form()
    try:
        changes = collect.parse_endpoint_update(_endpoint_form(form, with_name=False))
        with db.transaction() as conn:
            collect.update_endpoint(conn, project_id, name, changes)
    except InputError as exc:
        with db.connect() as conn:
            ep = collect.get_endpoint(conn, project_id, name)
        return _render(request, "admin/endpoint.html", {
            "user": admin, "project": project, "endpoint": ep,
            "key_status": collect.api_key_status(ep), "error": str(exc),
            "form": _form_values(form)}, exc.http_status)
    return RedirectResponse(f"/admin/projects/{project_id}#models", status_code=303)


@router.post("/projects/{project_id}/endpoints/{name}/disable", dependencies=[CsrfForm])
def endpoint_disable(project_id: str, name: str, admin: AdminUser, db: DbDep) -> Response:
    return _set_enabled(project_id, name, admin, db, False)


@router.post("/projects/{project_id}/endpoints/{name}/enable", dependencies=[CsrfForm])
def endpoint_enable(project_id: str, name: str, admin: AdminUser, db: DbDep) -> Response:
    return _set_enabled(project_id, name, admin, db, True)


def _set_enabled(project_id: str, name: str, admin: User, db: Database,
                 enabled: bool) -> Response:
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        collect.update_endpoint(conn, project_id, name, collect.EndpointUpdate(enabled=enabled))
    return RedirectResponse(f"/admin/projects/{project_id}#models", status_code=303)


@router.post("/projects/{project_id}/endpoints/{name}/remove", dependencies=[CsrfForm])
def endpoint_remove(project_id: str, name: str, admin: AdminUser, db: DbDep) -> Response:
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        collect.remove_endpoint(conn, project_id, name)
    return RedirectResponse(f"/admin/projects/{project_id}#models", status_code=303)


@router.post("/projects/{project_id}/live", dependencies=[CsrfForm])
async def live_config_save(request: Request, project_id: str, admin: AdminUser,
                           db: DbDep) -> Response:
    visible_project(db, admin, project_id)
    form = await request.form()
    temperatures = [t.strip() for t in str(form.get("temperatures") or "").split(",")
                    if t.strip()]
    data = {
        "modes": [m for m in LIVE_MODES if form.get(f"mode_{m}") == "on"],
        "k": str(form.get("k") or "2"),
        "sampling": str(form.get("sampling") or "models"),
        "temperatures": temperatures,
        "turn_limit": str(form.get("turn_limit") or "5"),
        "arena_policy": str(form.get("arena_policy") or "uniform"),
        "leaderboard_for_annotators": form.get("leaderboard_for_annotators") == "on",
        "prompt_pool": form.get("prompt_pool") == "on",
    }
    try:
        cfg = collect.parse_live_config(data)
        with db.transaction() as conn:
            collect.set_live_config(conn, project_id, cfg)
    except InputError as exc:
        return _project_page(request, admin, db, project_id, exc.http_status,
                             live_error=str(exc))
    return RedirectResponse(f"/admin/projects/{project_id}#live-config", status_code=303)
