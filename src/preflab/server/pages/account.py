"""The user's own page (sessions, API tokens, password) and the admins' audit log page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from preflab.collect import accounts as store
from preflab.errors import InputError, PermissionDeniedError
from preflab.server import accounts
from preflab.server.deps import AdminUser, CsrfForm, CurrentUser, DbDep

router = APIRouter()


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _current_session_id(request: Request) -> str | None:
    ident = getattr(request.state, "identity", None)
    return ident.session.session_id if ident is not None and ident.session else None


def _render(request: Request, user: Any, db: Any, **extra: Any) -> Response:
    with db.connect() as conn:
        sessions = store.list_sessions(conn, user.user_id)
        tokens = store.list_tokens(conn, user.user_id)
    context = {"user": user, "sessions": sessions, "tokens": tokens,
               "current": _current_session_id(request), "new_token": None, "message": None,
               "error": None, "self_scopes": sorted(s.value for s in
                                                    store.SELF_SCOPES.get(user.role, ()))}
    context.update(extra)
    return request.app.state.templates.TemplateResponse(
        request, "account.html", context, status_code=extra.pop("status", 200))


@router.get("/account")
def account_page(request: Request, user: CurrentUser, db: DbDep) -> Response:
    return _render(request, user, db)


@router.post("/account/password", dependencies=[CsrfForm])
def account_password(request: Request, user: CurrentUser, db: DbDep,
                     current_password: Annotated[str, Form()],
                     new_password: Annotated[str, Form()]) -> Response:
    try:
        ended = accounts.change_password(db, user, current_password, new_password,
                                         keep_session_id=_current_session_id(request),
                                         client=_client(request))
    except InputError as exc:
        return _render(request, user, db, error=str(exc), status=exc.http_status)
    return _render(request, user, db,
                   message=f"Password changed; {ended} other session(s) ended.")


@router.post("/account/sessions/{session_id}/revoke", dependencies=[CsrfForm])
def account_end_session(session_id: str, user: CurrentUser, db: DbDep) -> Response:
    with db.transaction() as conn:
        store.delete_session(conn, session_id, user.user_id)
    return RedirectResponse("/account", status_code=303)


@router.post("/account/tokens", dependencies=[CsrfForm])
async def account_new_token(request: Request, user: CurrentUser, db: DbDep) -> Response:
    form = await request.form()
    scopes = [str(s) for s in form.getlist("scopes")] or None
    name = str(form.get("name") or "account page")
    days = str(form.get("expires_in_days") or "").strip()
    try:
        accounts.check_self_scopes(user, scopes)
        expires = None
        if days:
            from datetime import timedelta

            from preflab.store.tables import utcnow

            if not days.isdigit() or not 0 < int(days) <= 3650:
                raise InputError(f"expiry must be 1-3650 days, got {days!r}",
                                 field="expires_in_days")
            expires = utcnow() + timedelta(days=int(days))
        token, info = accounts.create_token(db, user, name[:200], scopes=scopes,
                                            expires_at=expires, client=_client(request))
    except (InputError, PermissionDeniedError) as exc:
        return _render(request, user, db, error=str(exc), status=exc.http_status)
    return _render(request, user, db, new_token=(info.token_id, token))


@router.post("/account/tokens/{token_id}/revoke", dependencies=[CsrfForm])
def account_revoke_token(token_id: str, user: CurrentUser, db: DbDep) -> Response:
    with db.transaction() as conn:
        store.revoke_token(conn, token_id, user.user_id)
        store.record_audit(conn, "token.revoke", actor=user.user_id, token_id=token_id,
                           target={"user": user.username})
    return RedirectResponse("/account", status_code=303)


@router.get("/admin/audit-log")
def audit_page(request: Request, admin: AdminUser, db: DbDep, page: int = 1) -> Response:
    page = max(page, 1)
    with db.connect() as conn:
        rows = store.list_audit(conn, offset=(page - 1) * 100, limit=100)
    return request.app.state.templates.TemplateResponse(
        request, "admin/audit.html", {"user": admin, "rows": rows, "page": page,
                                      "pages": page + 1 if len(rows) == 100 else page})
