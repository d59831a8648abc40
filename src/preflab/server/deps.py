"""Request wiring as ``Annotated`` aliases: the database, settings, the current user.

A request is authenticated by an ``Authorization: Bearer <token>`` header (scripts) or by the
signed session cookie (pages). Unsafe requests authenticated by the cookie must carry the
session's CSRF token: pages send it as the ``csrf_token`` form field, page scripts as the
``X-CSRF-Token`` header. Tests swap these through ``app.dependency_overrides``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection

from preflab import collect
from preflab.collect import Project, User
from preflab.errors import AuthError, NotFoundError, PermissionDeniedError
from preflab.server.auth import check_csrf, hash_token
from preflab.server.db import Database
from preflab.settings import Settings

__all__ = [
    "AdminUser",
    "Caller",
    "CallerDep",
    "CsrfForm",
    "CurrentUser",
    "DbDep",
    "LoginCsrfForm",
    "OptionalUser",
    "SettingsDep",
    "get_db",
    "get_settings",
    "visible_project",
]

_SAFE = {"GET", "HEAD", "OPTIONS"}


# get_db and get_settings do no I/O: as coroutines they run on the event loop instead of
# costing each request a hop to a worker thread and back.
async def get_db(request: Request) -> Database:
    """Return the app's database handle."""
    return request.app.state.db  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


_LOG_IN_FIRST = "log in first (session cookie or 'Authorization: Bearer <token>')"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request says it is (token or session cookie), not yet looked up.

    :meth:`user` looks the credentials up on a connection. The annotators' hot calls (next
    task, submit) do so inside their own unit of work (see :data:`CallerDep`): one transaction
    and one pooled connection per request instead of two.
    """

    token_hash: str | None = None
    user_id: str | None = None  # from the session cookie
    session: Any = None  # the cookie session, cleared if its user is gone or disabled

    def user(self, conn: Connection) -> User:
        """Return the active user behind the credentials.

        Raises:
            AuthError: unknown, revoked or disabled token; a session of a disabled user.
        """
        if self.token_hash is not None:
            user = collect.get_user_by_token_hash(conn, self.token_hash)
            if user is None or not user.is_active:
                raise AuthError("unknown, revoked or disabled API token", field="authorization")
            return user
        user = collect.get_user(conn, self.user_id or "")
        if user is None or not user.is_active:
            if self.session is not None:
                self.session.clear()
            raise AuthError(_LOG_IN_FIRST)
        return user


def _credentials(request: Request) -> Caller | None:
    """Return the request's credentials, or None when it carries none.

    Raises:
        AuthError: a malformed Authorization header.
    """
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'",
                            field="authorization")
        return Caller(token_hash=hash_token(token.strip()))
    uid = request.session.get("uid") if "session" in request.scope else None
    return Caller(user_id=uid, session=request.session) if uid else None


def _check_api_csrf(request: Request, credentials: Caller) -> None:
    """Refuse a cookie-authenticated API write without the session's CSRF header."""
    if (
        credentials.token_hash is None
        and request.method not in _SAFE
        and request.url.path.startswith("/api/")
        and not check_csrf(request.session.get("csrf"), request.headers.get("x-csrf-token"))
    ):
        raise PermissionDeniedError(
            "missing or wrong X-CSRF-Token header for a cookie-authenticated request",
            field="x-csrf-token",
        )


def _load_user(credentials: Caller, db: Database) -> User | None:
    """Look the credentials up; None for a session whose user is gone or disabled."""
    with db.connect() as conn:
        try:
            return credentials.user(conn)
        except AuthError:
            if credentials.token_hash is not None:
                raise
            return None


async def optional_user(request: Request, db: DbDep) -> User | None:
    """Return the logged-in user or None."""
    credentials = _credentials(request)
    if credentials is None:
        return None
    return await db.run(_load_user, credentials, db)


async def require_user(request: Request, db: DbDep) -> User:
    """Return the logged-in user; raise AuthError for nobody, check CSRF on API writes."""
    credentials = _credentials(request)
    user = None if credentials is None else await db.run(_load_user, credentials, db)
    if user is None or credentials is None:
        raise AuthError(_LOG_IN_FIRST)
    _check_api_csrf(request, credentials)
    return user


async def caller(request: Request) -> Caller:
    """Return the request's credentials, checked for form (and CSRF) but not yet looked up.

    Raises:
        AuthError: no credentials, or a malformed Authorization header.
        PermissionDeniedError: a cookie-authenticated API write without its CSRF header.
    """
    credentials = _credentials(request)
    if credentials is None:
        raise AuthError(_LOG_IN_FIRST)
    _check_api_csrf(request, credentials)
    return credentials


CallerDep = Annotated[Caller, Depends(caller)]


async def require_admin(user: Annotated[User, Depends(require_user)]) -> User:
    """Return the user if an admin; raise PermissionDeniedError otherwise."""
    if user.role != "admin":
        raise PermissionDeniedError("this needs the admin role")
    return user


async def csrf_form(request: Request) -> None:
    """Check the ``csrf_token`` form field of a page form against the session's token."""
    form = await request.form()
    token = form.get("csrf_token")
    if not check_csrf(request.session.get("csrf"), token if isinstance(token, str) else None):
        raise PermissionDeniedError(
            "this form is stale or was not sent by preflab (bad CSRF token); reload the page "
            "and try again",
            field="csrf_token",
        )


async def user_csrf_form(request: Request, _user: Annotated[User, Depends(require_user)]) -> None:
    """Check who is asking first (nobody → log in), then the form's CSRF token."""
    await csrf_form(request)


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(require_user)]
AdminUser = Annotated[User, Depends(require_admin)]
LoginCsrfForm = Depends(csrf_form)
CsrfForm = Depends(user_csrf_form)


def visible_project(db: Database, user: User, project_id: str) -> Project:
    """Return the project if the user may see it (admins: all; others: their projects).

    Raises:
        NotFoundError: no such project, or the user is not a member (same answer for both).
    """
    with db.connect() as conn:
        project = collect.project_for_user(conn, project_id, user)
    if project is None:
        raise NotFoundError(f"no project {project_id!r}", field="project_id")
    return project
