"""Admin pages: projects and progress, items (and why each was served), judgments, guidelines,
members, users and tokens, import and export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.errors import InputError, NotFoundError
from preflab.server import accounts, transfer
from preflab.server.api.v1.schemas import JudgmentPublic
from preflab.server.deps import AdminUser, CsrfForm, DbDep, visible_project

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
    project = visible_project(db, admin, project_id)
    with db.connect() as conn:
        progress = collect.project_progress(conn, project_id)
        members = collect.list_members(conn, project_id)
        guideline = collect.current_guideline(conn, project_id)
    agreement = transfer.agreement_summary(db, project)
    return _render(request, "admin/project.html", {
        "user": admin, "project": project, "progress": progress, "members": members,
        "guideline": guideline, "agreement": agreement, "exports": transfer.export_formats(),
    })


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
                                                 "item": item, "assignments": assignments})


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
        data = await upload.read()  # type: ignore[union-attr]
        name = getattr(upload, "filename", None) or "upload"
    finally:
        await form.close()  # the spooled upload file
    summary = await run_in_threadpool(transfer.import_upload, db, project, fmt, name, data)
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


