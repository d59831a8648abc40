"""Tokens, sessions, the current user, user administration and the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from preflab import collect
from preflab.collect import accounts as store
from preflab.collect.accounts import Scope
from preflab.errors import NotFoundError
from preflab.server import accounts
from preflab.server.api.v1.schemas import (
    RowPublic,
    TokenCreate,
    TokenPublic,
    UserCreate,
    UserPublic,
)
from preflab.server.deps import AdminUser, CurrentUser, DbDep
from preflab.store.tables import utcnow

router = APIRouter(tags=["accounts"])


class TokenOptions(BaseModel):
    """What a new token may do: scopes, one project, an expiry."""

    name: str = Field("api", min_length=1, max_length=200)
    scopes: list[Scope] | None = Field(
        None, description="annotate, feedback, export, admin; default: annotate for "
        "annotators, admin for admins. Annotators may give their own tokens only annotate.")
    project_id: str | None = Field(None, max_length=64,
                                   description="The one project the token may touch.")
    expires_in_days: int | None = Field(None, gt=0, le=3650,
                                        description="Days until the token stops working.")

    def expires_at(self) -> datetime | None:
        """Return the expiry time, or None for a token that does not expire."""
        if self.expires_in_days is None:
            return None
        return utcnow() + timedelta(days=self.expires_in_days)


class TokenRequest(TokenCreate, TokenOptions):
    """A username and password exchanged for a new token."""


class TokenListed(RowPublic):
    token_id: str
    name: str
    scopes: list[str]
    project_id: str | None
    created_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class TokenIssued(TokenPublic):
    """A new token: the secret (shown this once) and what it may do."""

    listing: TokenListed


class SessionListed(RowPublic):
    session_id: str
    created_at: datetime | None
    last_seen_at: datetime | None
    expires_at: datetime | None
    client: str | None
    user_agent: str | None


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1)
    new_password: str = Field(min_length=1)


class PasswordChanged(BaseModel):
    sessions_ended: int = Field(description="How many of your other sessions ended.")


class AuditPublic(RowPublic):
    event_id: int
    at: datetime | None
    actor: str | None
    token_id: str | None
    action: str
    target: dict[str, Any] | None
    client: str | None


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _current_session_id(request: Request) -> str | None:
    ident = getattr(request.state, "identity", None)
    return ident.session.session_id if ident is not None and ident.session else None


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, request: Request, db: DbDep) -> TokenIssued:
    """Exchange a username and password for an API token (shown once), with its scopes."""
    user = accounts.authenticate(db, request.app.state.login_limiter, body.username,
                                 body.password, _client(request))
    scopes = None if body.scopes is None else [s.value for s in body.scopes]
    accounts.check_self_scopes(user, scopes)
    token, info = accounts.create_token(db, user, body.name, scopes=scopes,
                                        project_id=body.project_id,
                                        expires_at=body.expires_at(), client=_client(request))
    return TokenIssued(token=token, user=UserPublic.of(user), listing=TokenListed.of(info))


@router.get("/me")
async def read_me(user: CurrentUser) -> UserPublic:
    """Return the authenticated user."""
    return UserPublic.of(user)


@router.post("/me/password")
def change_password(body: PasswordChange, user: CurrentUser, request: Request,
                    db: DbDep) -> PasswordChanged:
    """Change your password (the current one required); your other sessions end."""
    ended = accounts.change_password(db, user, body.current_password, body.new_password,
                                     keep_session_id=_current_session_id(request),
                                     client=_client(request))
    return PasswordChanged(sessions_ended=ended)


@router.get("/me/sessions")
def list_sessions(user: CurrentUser, db: DbDep) -> list[SessionListed]:
    """List your open sessions (browsers logged in): created, last seen, address, agent."""
    with db.connect() as conn:
        return [SessionListed.of(s) for s in store.list_sessions(conn, user.user_id)]


@router.delete("/me/sessions/{session_id}", status_code=204)
def end_session(session_id: str, user: CurrentUser, db: DbDep) -> Response:
    """End one of your sessions."""
    with db.transaction() as conn:
        store.delete_session(conn, session_id, user.user_id)
    return Response(status_code=204)


@router.get("/me/tokens")
def list_my_tokens(user: CurrentUser, db: DbDep) -> list[TokenListed]:
    """List your API tokens (never the secrets), revoked ones included."""
    with db.connect() as conn:
        return [TokenListed.of(t) for t in store.list_tokens(conn, user.user_id)]


@router.delete("/me/tokens/{token_id}", status_code=204)
def revoke_my_token(token_id: str, user: CurrentUser, db: DbDep) -> Response:
    """Revoke one of your API tokens."""
    with db.transaction() as conn:
        store.revoke_token(conn, token_id, user.user_id)
        store.record_audit(conn, "token.revoke", actor=user.user_id, token_id=token_id,
                           target={"user": user.username})
    return Response(status_code=204)


@router.get("/users")
def list_users(
    _admin: AdminUser, db: DbDep, offset: int = Query(0, ge=0), limit: int = Query(100, le=1000)
) -> list[UserPublic]:
    """List users (admin)."""
    with db.connect() as conn:
        return [UserPublic.of(u) for u in collect.list_users(conn, offset=offset, limit=limit)]


@router.post("/users", status_code=201)
def create_user(body: UserCreate, _admin: AdminUser, db: DbDep) -> UserPublic:
    """Add a user (admin)."""
    user = accounts.add_user(db, body.username, body.password, role=body.role,
                             vendor=body.vendor, team=body.team)
    return UserPublic.of(user)


@router.post("/users/{username}/disable")
def disable_user(username: str, _admin: AdminUser, db: DbDep) -> UserPublic:
    """Disable a user: their logins, sessions and tokens stop working (admin)."""
    with db.transaction() as conn:
        return UserPublic.of(collect.set_user_active(conn, username, False))


@router.post("/users/{username}/enable")
def enable_user(username: str, _admin: AdminUser, db: DbDep) -> UserPublic:
    """Enable a disabled user again (admin)."""
    with db.transaction() as conn:
        return UserPublic.of(collect.set_user_active(conn, username, True))


def _user_named(db: Any, username: str) -> collect.User:
    with db.connect() as conn:
        user = collect.get_user_by_username(conn, username)
    if user is None:
        raise NotFoundError(f"no user named {username!r}", field="username")
    return user


@router.get("/users/{username}/tokens")
def list_user_tokens(username: str, _admin: AdminUser, db: DbDep) -> list[TokenListed]:
    """List a user's API tokens (admin)."""
    user = _user_named(db, username)
    with db.connect() as conn:
        return [TokenListed.of(t) for t in store.list_tokens(conn, user.user_id)]


@router.post("/users/{username}/tokens", status_code=201)
def create_user_token(username: str, body: TokenOptions, admin: AdminUser, request: Request,
                      db: DbDep) -> TokenIssued:
    """Issue a token for a user with any scopes their role can hold, e.g. ``feedback`` for
    the service that posts production feedback (admin)."""
    user = _user_named(db, username)
    token, info = accounts.create_token(
        db, user, body.name, scopes=None if body.scopes is None else [s.value for s in body.scopes],
        project_id=body.project_id, expires_at=body.expires_at(), actor=admin.user_id,
        client=_client(request))
    return TokenIssued(token=token, user=UserPublic.of(user), listing=TokenListed.of(info))


@router.get("/audit-log")
def read_audit_log(
    _admin: AdminUser, db: DbDep, actor: str | None = None, token_id: str | None = None,
    offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000),
) -> list[AuditPublic]:
    """The audit log, newest first: admin actions and every write made with a token (admin)."""
    with db.connect() as conn:
        rows = store.list_audit(conn, actor=actor, token_id=token_id, offset=offset,
                                limit=limit)
    return [AuditPublic.of(r) for r in rows]
