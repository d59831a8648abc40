"""Log in and out: a server-side session per login, ended by logging out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from preflab.errors import AuthError
from preflab.server import accounts
from preflab.server.auth import new_csrf_token
from preflab.server.deps import CsrfForm, DbDep, LoginCsrfForm, OptionalUser

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # only local paths: never redirect a fresh login to another site
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    request.session.setdefault("csrf", new_csrf_token())
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "error": None, "user": None}
    )


@router.post("/login", dependencies=[LoginCsrfForm])
def login(
    request: Request,
    db: DbDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    client = request.client.host if request.client else "?"
    try:
        user = accounts.authenticate(db, request.app.state.login_limiter, username, password,
                                     client)
    except AuthError as exc:
        return request.app.state.templates.TemplateResponse(
            request, "login.html",
            {"next": _safe_next(next), "error": str(exc), "user": None, "username": username},
            status_code=exc.http_status,
        )
    secret = accounts.start_session(db, user, client=client,
                                    user_agent=request.headers.get("user-agent"))
    request.session.clear()  # a fresh session on login (no fixation)
    request.session.update({"sid": secret, "csrf": new_csrf_token()})
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[CsrfForm])
def logout(request: Request, db: DbDep) -> Response:
    """End the session on the server too: a replayed cookie logs nobody in."""
    accounts.end_session(db, request.session.get("sid"))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
