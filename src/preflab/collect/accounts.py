"""Accounts: users (annotators, admins) and the hashes of their API tokens.

Functions take a unit of work (a SQLAlchemy ``Connection``, or a ``Session`` whose connection is
used) and never commit. Password and token hashing live with the HTTP edge
(:mod:`preflab.server.auth`); these functions store and compare hashes only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import (
    API_TOKENS as _T,
    JUDGES as _JUDGES,
    USERS as _U,
)
from preflab.collect.rows import User, columns
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "ROLES",
    "create_api_token",
    "create_user",
    "get_user",
    "get_user_by_token_hash",
    "get_user_by_username",
    "list_users",
    "set_user_active",
]

ROLES = ("admin", "annotator")

_USER_COLUMNS = columns(User, _U)

_BY_ID = select(*_USER_COLUMNS).where(_U.c.user_id == bindparam("user_id"))
_BY_NAME = select(*_USER_COLUMNS).where(_U.c.username == bindparam("username"))
_BY_TOKEN = (
    select(*_USER_COLUMNS)
    .join(_T, _T.c.user_id == _U.c.user_id)
    .where(_T.c.token_hash == bindparam("token_hash"), _T.c.revoked == False)  # noqa: E712
    .limit(1)
)
_PAGE = (
    select(*_USER_COLUMNS).order_by(_U.c.username)
    .offset(bindparam("offset")).limit(bindparam("limit"))
)
_SET_ACTIVE = (
    update(_U).where(_U.c.username == bindparam("b_username"))
    .values(is_active=bindparam("b_active"))
)
_JUDGE_EXISTS = select(_JUDGES.c.judge_id).where(_JUDGES.c.judge_id == bindparam("judge_id"))


def _one(conn: Connection, stmt: Any, params: dict[str, Any]) -> User | None:
    row = conn.execute(stmt, params).first()
    return None if row is None else User(*row)


def create_user(
    session: Session | Connection,
    username: str,
    password_hash: str,
    *,
    role: str = "annotator",
    vendor: str | None = None,
    team: str | None = None,
) -> User:
    """Add a user (and the human judge whose id is the user's id); return the new row.

    Raises:
        InputError: unknown role or a username that is empty, too long or has spaces.
        ConflictError: the username is taken.
    """
    conn = connection_of(session)
    username = username.strip()
    if not username or len(username) > 200 or any(c.isspace() for c in username):
        raise InputError(
            f"username must be 1-200 characters without spaces, got {username!r}",
            field="username",
        )
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    if get_user_by_username(conn, username) is not None:
        raise ConflictError(f"user {username!r} already exists; choose another username",
                            field="username")
    user = User(user_id=f"human:{username}", username=username, password_hash=password_hash,
                role=role, vendor=vendor, team=team, is_active=True, created_at=utcnow())
    conn.execute(insert(_U).values(
        user_id=user.user_id, username=username, password_hash=password_hash, role=role,
        vendor=vendor, team=team, is_active=True, created_at=user.created_at))
    if conn.execute(_JUDGE_EXISTS, {"judge_id": user.user_id}).first() is None:
        conn.execute(insert(_JUDGES).values(judge_id=user.user_id, kind="human", name=username,
                                            vendor=vendor, team=team))
    return user


def get_user(session: Session | Connection, user_id: str) -> User | None:
    """Return the user with this id, or None."""
    return _one(connection_of(session), _BY_ID, {"user_id": user_id})


def get_user_by_username(session: Session | Connection, username: str) -> User | None:
    """Return the user with this username, or None."""
    return _one(connection_of(session), _BY_NAME, {"username": username})


def get_user_by_token_hash(session: Session | Connection, token_hash: str) -> User | None:
    """Return the owner of an unrevoked token with this hash (active or not), or None."""
    return _one(connection_of(session), _BY_TOKEN, {"token_hash": token_hash})


def list_users(
    session: Session | Connection, *, offset: int = 0, limit: int = 100
) -> list[User]:
    """Return users ordered by username, one page."""
    rows = connection_of(session).execute(_PAGE, {"offset": offset, "limit": limit})
    return [User(*r) for r in rows]


def set_user_active(session: Session | Connection, username: str, is_active: bool) -> User:
    """Enable or disable a user (a disabled user cannot log in or use tokens); return it.

    Raises:
        NotFoundError: no such user.
    """
    conn = connection_of(session)
    res = conn.execute(_SET_ACTIVE, {"b_username": username, "b_active": is_active})
    user = get_user_by_username(conn, username) if res.rowcount else None
    if user is None:
        raise NotFoundError(f"no user named {username!r}; `preflab users list` shows them",
                            field="username")
    return user


def create_api_token(
    session: Session | Connection, user_id: str, name: str, token_hash: str
) -> None:
    """Store the hash of a new API token for a user."""
    connection_of(session).execute(insert(_T).values(
        token_hash=token_hash, user_id=user_id, name=name, created_at=utcnow(), revoked=False))
