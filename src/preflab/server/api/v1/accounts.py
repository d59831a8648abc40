"""Tokens, the current user, and user administration."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from preflab import collect
from preflab.server import accounts
from preflab.server.api.v1.schemas import TokenCreate, TokenPublic, UserCreate, UserPublic
from preflab.server.deps import AdminUser, CurrentUser, DbDep

router = APIRouter(tags=["accounts"])


@router.post("/tokens", status_code=201)
def create_token(body: TokenCreate, request: Request, db: DbDep) -> TokenPublic:
    """Exchange a username and password for an API token (shown once)."""
    client = request.client.host if request.client else "?"
    user = accounts.authenticate(db, request.app.state.login_limiter, body.username,
                                 body.password, client)
    return TokenPublic(token=accounts.issue_token(db, user, body.name), user=UserPublic.of(user))


@router.get("/me")
async def read_me(user: CurrentUser) -> UserPublic:
    """Return the authenticated user."""
    return UserPublic.of(user)


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
