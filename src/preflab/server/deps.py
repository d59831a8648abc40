"""Request wiring as ``Annotated`` aliases: the database, settings, the current user.

A request is authenticated by an ``Authorization: Bearer <token>`` header (scripts) or by the
session cookie (pages): a signed cookie holding a random secret whose SHA-256 names a row of
the ``sessions`` table, so that logging out (or a password change, or disabling the user) ends
the session on the server. A token is checked against the scopes its route accepts
(:mod:`preflab.server.scopes`). Writes made with a token, and every admin write, leave a line
in the audit log; reads do not (one insert per read would double the cost of the hot reads),
they only move the token's ``last_used_at``, at most once a minute. Unsafe requests authenticated by the cookie must carry the
session's CSRF token: pages send it as the ``csrf_token`` form field, page scripts as the
``X-CSRF-Token`` header. Tests swap these through ``app.dependency_overrides``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection

from preflab import collect
from preflab.collect import Project, User, accounts
from preflab.collect.rows import aware
from preflab.errors import AuthError, NotFoundError, PermissionDeniedError
from preflab.server.auth import check_csrf, hash_token
from preflab.server.db import Database
from preflab.server.scopes import ADMIN as ADMIN_ONLY
from preflab.server.scopes import app_route_scopes
from preflab.settings import Settings
from preflab.store.tables import utcnow

__all__ = [
    "AdminUser",
    "Caller",
    "CallerDep",
    "CsrfForm",
    "CurrentUser",
    "DbDep",
    "Identity",
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
# last_used_at / last_seen_at are written at most this often per token / session
TOUCH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Identity:
    """The user behind a request, with the token or session that proved it."""

    user: User
    token: accounts.TokenAuth | None = None
    session: accounts.SessionInfo | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request says it is (token or session cookie), not yet looked up.

    :meth:`user` looks the credentials up on a connection with one indexed query and checks
    them: a token's expiry, scopes (:mod:`preflab.server.scopes`) and project; a session's
    expiry. The annotators' hot calls (next task, submit) do so inside their own unit of work
    (see :data:`CallerDep`), with ``write=True``: the token's audit line and the
    ``last_used_at`` / ``last_seen_at`` stamps go into that same transaction.
    """

    token_hash: str | None = None
    session_hash: str | None = None  # SHA-256 of the session cookie's secret
    session: Any = None  # the cookie's contents, cleared if the session is gone
    method: str = "GET"
    action: str = ""  # "METHOD /route/template", for the audit log
    scopes: frozenset[str] = frozenset()  # scopes the route accepts (tokens)
    path_params: dict[str, Any] = field(default_factory=dict)
    client: str | None = None

    @property
    def is_write(self) -> bool:
        """Whether the request may change something (not GET, HEAD or OPTIONS)."""
        return self.method not in _SAFE

    def identify(self, conn: Connection) -> Identity:
        """Look the credentials up and check them.

        Raises:
            AuthError: unknown, revoked, expired or disabled token; a session that ended,
                expired or whose user is disabled.
            PermissionDeniedError: a token without a scope the route accepts, or bound to
                another project.
        """
        now = utcnow()
        if self.token_hash is not None:
            found = accounts.get_token(conn, self.token_hash)
            if found is None or not found[0].is_active:
                raise AuthError("unknown, revoked or disabled API token", field="authorization")
            user, token = found
            if accounts.is_expired(token.expires_at, now):
                raise AuthError(f"API token {token.token_id} expired; create a new one",
                                field="authorization")
            self._check_scope(token)
            return Identity(user, token=token)
        found_s = accounts.get_session(conn, self.session_hash or "")
        if (found_s is None or not found_s[0].is_active
                or accounts.is_expired(found_s[1].expires_at, now)):
            if self.session is not None:
                self.session.clear()
            raise AuthError(_LOG_IN_FIRST)
        return Identity(found_s[0], session=found_s[1])

    def _check_scope(self, token: accounts.TokenAuth) -> None:
        if not self.scopes.intersection(token.scopes):
            raise PermissionDeniedError(
                f"API token {token.token_id} has the scope(s) {', '.join(token.scopes)}; "
                f"{self.action} needs one of {', '.join(sorted(self.scopes))}. Create a token "
                "with such a scope (`preflab users tokens create --scope …`)",
                field="authorization")
        project_id = self.path_params.get("project_id")
        if token.project_id is not None and project_id not in (None, token.project_id):
            raise PermissionDeniedError(
                f"API token {token.token_id} is for project {token.project_id!r} only, not "
                f"{project_id!r}", field="authorization")

    def needs_write(self, ident: Identity) -> bool:
        """Whether :meth:`record` has anything to write for this request."""
        now = utcnow()
        if self.is_write and (ident.token is not None or ident.user.role == "admin"):
            return True
        if ident.token is not None:
            return _stale(ident.token.last_used_at, now)
        return ident.session is not None and _stale(ident.session.last_seen_at, now)

    def record(self, conn: Connection, ident: Identity) -> None:
        """Write the audit line (token or admin writes) and the last-use stamps."""
        now = utcnow()
        token_id = ident.token.token_id if ident.token else None
        if self.is_write and (ident.token is not None or ident.user.role == "admin"):
            accounts.record_audit(conn, self.action, actor=ident.user.user_id,
                                  token_id=token_id, target=self.path_params or None,
                                  client=self.client)
        if ident.token is not None and _stale(ident.token.last_used_at, now):
            accounts.touch_token(conn, ident.token.token_id, now)
        if ident.session is not None and _stale(ident.session.last_seen_at, now):
            accounts.touch_session(conn, ident.session.session_id, now)

    def user(self, conn: Connection, *, write: bool = False) -> User:
        """Return the active user behind the credentials (see :meth:`identify`).

        Args:
            conn: a connection; with ``write=True`` one inside a write transaction, which
                also gets the audit line and last-use stamps (:meth:`record`).
            write: record on ``conn``; else nothing is written.
        """
        ident = self.identify(conn)
        if write and self.needs_write(ident):
            self.record(conn, ident)
        return ident.user


def _stale(ts: datetime | None, now: datetime) -> bool:
    at = aware(ts)
    return at is None or (now - at).total_seconds() >= TOUCH_SECONDS


def _route_info(request: Request) -> tuple[frozenset[str], str]:
    """Return the scopes the matched route accepts and its "METHOD /path" for the log."""
    table = getattr(request.app.state, "route_scopes", None)
    if table is None:
        table = request.app.state.route_scopes = app_route_scopes(request.app)
    method = request.method
    found = table.get((method, request.scope.get("endpoint")))
    if found is None:
        return ADMIN_ONLY, f"{method} {request.url.path}"
    return found[0], f"{method} {found[1]}"


def _credentials(request: Request) -> Caller | None:
    """Return the request's credentials, or None when it carries none.

    Raises:
        AuthError: a malformed Authorization header.
    """
    header = request.headers.get("authorization", "")
    token_hash = session_hash = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'",
                            field="authorization")
        token_hash = hash_token(token.strip())
    else:
        secret = request.session.get("sid") if "session" in request.scope else None
        if not secret or not isinstance(secret, str):
            return None
        session_hash = hash_token(secret)
    scopes, action = _route_info(request)
    return Caller(token_hash=token_hash, session_hash=session_hash,
                  session=None if token_hash else request.session, method=request.method,
                  action=action, scopes=scopes, path_params=dict(request.path_params),
                  client=request.client.host if request.client else None)


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


def _load_identity(credentials: Caller, db: Database) -> Identity | None:
    """Look the credentials up; None for a session that ended or whose user is disabled.

    The audit line and last-use stamps, when due, are written in a transaction of their own.
    """
    with db.connect() as conn:
        try:
            ident = credentials.identify(conn)
        except AuthError:
            if credentials.token_hash is not None:
                raise
            return None
    if credentials.needs_write(ident):
        with db.transaction() as conn:
            credentials.record(conn, ident)
    return ident


async def optional_user(request: Request, db: DbDep) -> User | None:
    """Return the logged-in user or None."""
    credentials = _credentials(request)
    if credentials is None:
        return None
    ident = await db.run(_load_identity, credentials, db)
    request.state.identity = ident
    return None if ident is None else ident.user


async def require_user(request: Request, db: DbDep) -> User:
    """Return the logged-in user; raise AuthError for nobody, check CSRF on API writes.

    The identity (with its token or session) is kept as ``request.state.identity``.
    """
    credentials = _credentials(request)
    if credentials is None:
        raise AuthError(_LOG_IN_FIRST)
    _check_api_csrf(request, credentials)
    ident = await db.run(_load_identity, credentials, db)
    if ident is None:
        raise AuthError(_LOG_IN_FIRST)
    request.state.identity = ident
    return ident.user


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
