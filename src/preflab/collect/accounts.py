"""Accounts: users (annotators, admins), their sessions and API tokens, the audit log.

Sessions and tokens are stored as SHA-256 hashes of secrets the client holds; each also has a
public id (``session_id``, ``token_id``) to list and revoke it by. A token carries scopes
(:class:`Scope`), optionally one project and an expiry; what each route needs is the table in
:mod:`preflab.server.scopes`. The audit log keeps admin and token actions.

Functions take a unit of work (a SQLAlchemy ``Connection``, or a ``Session`` whose connection is
used) and never commit. Password and token hashing live with the HTTP edge
(:mod:`preflab.server.auth`); these functions store and compare hashes only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import (
    API_TOKENS as _T,
)
from preflab.collect.core_tables import (
    AUDIT_LOG as _A,
)
from preflab.collect.core_tables import (
    JUDGES as _JUDGES,
)
from preflab.collect.core_tables import (
    SESSIONS as _S,
)
from preflab.collect.core_tables import (
    USERS as _U,
)
from preflab.collect.rows import User, aware, columns
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "DEFAULT_SCOPES",
    "GRANTABLE_SCOPES",
    "ROLES",
    "SELF_SCOPES",
    "AuditEntry",
    "Scope",
    "SessionInfo",
    "TokenAuth",
    "TokenInfo",
    "change_password_hash",
    "create_api_token",
    "create_session",
    "create_user",
    "delete_session",
    "end_sessions",
    "get_session",
    "get_token",
    "get_user",
    "get_user_by_token_hash",
    "get_user_by_username",
    "is_expired",
    "list_audit",
    "list_sessions",
    "list_tokens",
    "list_users",
    "record_audit",
    "revoke_token",
    "set_user_active",
    "touch_session",
    "touch_token",
]

ROLES = ("admin", "annotator")


class Scope(StrEnum):
    """What an API token may do (the route → scope table is :mod:`preflab.server.scopes`)."""

    ANNOTATE = "annotate"  # the queue, tasks, live chats: an annotator's own work
    FEEDBACK = "feedback"  # post production feedback events
    EXPORT = "export"  # read-only: judgments, items, progress, exports, battles
    ADMIN = "admin"  # everything the owner's role allows


ALL_SCOPES = frozenset(Scope)
# what a token of a user of this role may hold at all (also what pre-scope tokens were given by
# migration 0004: today's behaviour for the role)
GRANTABLE_SCOPES: dict[str, frozenset[Scope]] = {
    "admin": ALL_SCOPES,
    "annotator": frozenset({Scope.ANNOTATE, Scope.FEEDBACK}),
}
# what users may give their own tokens (POST /api/v1/tokens, the account page): feedback tokens
# for annotators come from an admin, so an annotator cannot post "production" feedback
SELF_SCOPES: dict[str, frozenset[Scope]] = {
    "admin": ALL_SCOPES,
    "annotator": frozenset({Scope.ANNOTATE}),
}
# a new token that names no scopes
DEFAULT_SCOPES: dict[str, tuple[Scope, ...]] = {
    "admin": (Scope.ADMIN,),
    "annotator": (Scope.ANNOTATE,),
}
SESSION_DAYS = 14


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed (never the secret)."""

    token_id: str
    user_id: str
    name: str
    scopes: list[str]
    project_id: str | None
    created_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """What authenticating a request needs of its token (the lookup selects only this)."""

    token_id: str
    scopes: list[str]
    project_id: str | None
    expires_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A browser session as listed on the user's page (never the secret)."""

    session_id: str
    user_id: str
    created_at: datetime | None
    last_seen_at: datetime | None
    expires_at: datetime | None
    client: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    event_id: int
    at: datetime | None
    actor: str | None
    token_id: str | None
    action: str
    target: dict[str, Any] | None
    client: str | None

_USER_COLUMNS = columns(User, _U)

_BY_ID = select(*_USER_COLUMNS).where(_U.c.user_id == bindparam("user_id"))
_BY_NAME = select(*_USER_COLUMNS).where(_U.c.username == bindparam("username"))
_BY_TOKEN = (
    select(*_USER_COLUMNS)
    .join(_T, _T.c.user_id == _U.c.user_id)
    .where(_T.c.token_hash == bindparam("token_hash"), _T.c.revoked == False)
    .limit(1)
)
_TOKEN_COLUMNS = columns(TokenInfo, _T, "t_")
_TOKEN_AUTH_COLUMNS = columns(TokenAuth, _T, "t_")
_SESSION_COLUMNS = columns(SessionInfo, _S, "s_")
_N_USER = len(_USER_COLUMNS)
# the authentication lookups: one query on a unique index, the user and the credential together
_USER_BY_TOKEN = (
    select(*_USER_COLUMNS, *_TOKEN_AUTH_COLUMNS)
    .join(_T, _T.c.user_id == _U.c.user_id)
    .where(_T.c.token_hash == bindparam("token_hash"), _T.c.revoked == False)
)
_USER_BY_SESSION = (
    select(*_USER_COLUMNS, *_SESSION_COLUMNS)
    .join(_S, _S.c.user_id == _U.c.user_id)
    .where(_S.c.secret_hash == bindparam("secret_hash"))
)
_AUDIT_INSERT = insert(_A)  # executed with one parameter dict: compiled once, cached
_TOUCH_TOKEN = (
    update(_T).where(_T.c.token_id == bindparam("b_token_id"))
    .values(last_used_at=bindparam("b_now"))
)
_TOUCH_SESSION = (
    update(_S).where(_S.c.session_id == bindparam("b_session_id"))
    .values(last_seen_at=bindparam("b_now"))
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

    Disabling ends every session of the user.

    Raises:
        NotFoundError: no such user.
    """
    conn = connection_of(session)
    res = conn.execute(_SET_ACTIVE, {"b_username": username, "b_active": is_active})
    user = get_user_by_username(conn, username) if res.rowcount else None
    if user is None:
        raise NotFoundError(f"no user named {username!r}; `preflab users list` shows them",
                            field="username")
    if not is_active:
        end_sessions(conn, user.user_id)
    return user


def _check_scopes(user: User | None, scopes: list[str]) -> list[str]:
    try:
        wanted = sorted({Scope(s) for s in scopes})
    except ValueError:
        raise InputError(
            f"scopes must be among {', '.join(s.value for s in Scope)}, got {scopes!r}",
            field="scopes") from None
    if not wanted:
        raise InputError("a token needs at least one scope", field="scopes")
    allowed = GRANTABLE_SCOPES.get(user.role if user else "annotator", frozenset())
    extra = [s.value for s in wanted if s not in allowed]
    if extra:
        raise InputError(
            f"the role {user.role if user else 'annotator'} cannot hold the scope(s) "
            f"{', '.join(extra)}; allowed: {', '.join(sorted(allowed))}", field="scopes")
    return [s.value for s in wanted]


def create_api_token(
    session: Session | Connection,
    user_id: str,
    name: str,
    token_hash: str,
    *,
    scopes: list[str] | None = None,
    project_id: str | None = None,
    expires_at: datetime | None = None,
) -> TokenInfo:
    """Store the hash of a new API token for a user; return it as listed.

    ``scopes`` default to :data:`DEFAULT_SCOPES` of the user's role.

    Raises:
        InputError: an unknown scope, or one the user's role cannot hold.
        NotFoundError: no such user.
    """
    conn = connection_of(session)
    user = get_user(conn, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id!r}", field="user_id")
    chosen = _check_scopes(user, list(DEFAULT_SCOPES[user.role]) if scopes is None else scopes)
    info = TokenInfo(token_id="tok_" + secrets.token_hex(8), user_id=user_id, name=name,
                     scopes=chosen, project_id=project_id, created_at=utcnow(),
                     expires_at=expires_at, last_used_at=None, revoked=False)
    conn.execute(insert(_T).values(
        token_hash=token_hash, user_id=user_id, name=name, created_at=info.created_at,
        revoked=False, token_id=info.token_id, scopes=chosen, project_id=project_id,
        expires_at=expires_at))
    return info


def get_token(session: Session | Connection, token_hash: str) -> tuple[User, TokenAuth] | None:
    """Return the owner and the token of an unrevoked token hash (one indexed query), or None.

    Expiry, the owner's state and scopes are the caller's to check.
    """
    row = connection_of(session).execute(_USER_BY_TOKEN, {"token_hash": token_hash}).first()
    if row is None:
        return None
    return User(*row[:_N_USER]), TokenAuth(*row[_N_USER:])


def list_tokens(session: Session | Connection, user_id: str | None = None) -> list[TokenInfo]:
    """Return the tokens of one user (or everyone's), newest first, revoked ones included."""
    stmt = select(*_TOKEN_COLUMNS).order_by(_T.c.created_at.desc())
    if user_id is not None:
        stmt = stmt.where(_T.c.user_id == user_id)
    return [TokenInfo(*r) for r in connection_of(session).execute(stmt)]


def revoke_token(session: Session | Connection, token_id: str,
                 user_id: str | None = None) -> TokenInfo:
    """Revoke a token by its public id (only among ``user_id``'s when given); return it.

    Raises:
        NotFoundError: no such token (or not that user's).
    """
    conn = connection_of(session)
    where = [_T.c.token_id == token_id]
    if user_id is not None:
        where.append(_T.c.user_id == user_id)
    conn.execute(update(_T).where(*where).values(revoked=True))
    row = conn.execute(select(*_TOKEN_COLUMNS).where(*where)).first()
    if row is None:
        raise NotFoundError(f"no token {token_id!r}; `preflab users tokens list` shows them",
                            field="token_id")
    return TokenInfo(*row)


def touch_token(session: Session | Connection, token_id: str, now: datetime) -> None:
    """Set a token's ``last_used_at``."""
    connection_of(session).execute(_TOUCH_TOKEN, {"b_token_id": token_id, "b_now": now})


def create_session(
    session: Session | Connection, user_id: str, secret_hash: str, *,
    client: str | None = None, user_agent: str | None = None, days: int = SESSION_DAYS,
) -> SessionInfo:
    """Store a new browser session (the hash of its cookie secret); return it.

    The user's expired sessions are deleted on the way (the table does not grow with them).
    """
    now = utcnow()
    connection_of(session).execute(delete(_S).where(_S.c.user_id == user_id,
                                                    _S.c.expires_at <= now))
    info = SessionInfo(session_id="ses_" + secrets.token_hex(8), user_id=user_id,
                       created_at=now, last_seen_at=now, expires_at=now + timedelta(days=days),
                       client=(client or "")[:100] or None,
                       user_agent=(user_agent or "")[:300] or None)
    connection_of(session).execute(insert(_S).values(
        session_id=info.session_id, secret_hash=secret_hash, user_id=user_id, created_at=now,
        last_seen_at=now, expires_at=info.expires_at, client=info.client,
        user_agent=info.user_agent))
    return info


def get_session(session: Session | Connection,
                secret_hash: str) -> tuple[User, SessionInfo] | None:
    """Return the user and the session of a cookie secret's hash (one indexed query), or None."""
    row = connection_of(session).execute(_USER_BY_SESSION, {"secret_hash": secret_hash}).first()
    if row is None:
        return None
    return User(*row[:_N_USER]), SessionInfo(*row[_N_USER:])


def touch_session(session: Session | Connection, session_id: str, now: datetime) -> None:
    """Set a session's ``last_seen_at``."""
    connection_of(session).execute(_TOUCH_SESSION, {"b_session_id": session_id, "b_now": now})


def list_sessions(session: Session | Connection, user_id: str) -> list[SessionInfo]:
    """Return a user's unexpired sessions, most recently seen first."""
    stmt = (select(*_SESSION_COLUMNS)
            .where(_S.c.user_id == user_id, _S.c.expires_at > utcnow())
            .order_by(_S.c.last_seen_at.desc()))
    return [SessionInfo(*r) for r in connection_of(session).execute(stmt)]


def delete_session(session: Session | Connection, session_id: str,
                   user_id: str | None = None) -> None:
    """End one session (only among ``user_id``'s when given).

    Raises:
        NotFoundError: no such session (or not that user's).
    """
    where = [_S.c.session_id == session_id]
    if user_id is not None:
        where.append(_S.c.user_id == user_id)
    if not connection_of(session).execute(delete(_S).where(*where)).rowcount:
        raise NotFoundError(f"no session {session_id!r}", field="session_id")


def end_sessions(session: Session | Connection, user_id: str, *,
                 keep_session_id: str | None = None) -> int:
    """End every session of a user but ``keep_session_id``; return how many ended."""
    stmt = delete(_S).where(_S.c.user_id == user_id)
    if keep_session_id is not None:
        stmt = stmt.where(_S.c.session_id != keep_session_id)
    return int(connection_of(session).execute(stmt).rowcount or 0)


def change_password_hash(session: Session | Connection, user_id: str, password_hash: str,
                         *, keep_session_id: str | None = None) -> int:
    """Store a new password hash and end the user's other sessions; return how many ended."""
    conn = connection_of(session)
    conn.execute(update(_U).where(_U.c.user_id == user_id).values(password_hash=password_hash))
    return end_sessions(conn, user_id, keep_session_id=keep_session_id)


def record_audit(
    session: Session | Connection, action: str, *, actor: str | None,
    token_id: str | None = None, target: dict[str, Any] | None = None,
    client: str | None = None,
) -> None:
    """Append one line to the audit log."""
    connection_of(session).execute(_AUDIT_INSERT, {
        "at": utcnow(), "actor": actor, "token_id": token_id, "action": action[:300],
        "target": target, "client": (client or "")[:100] or None})


def list_audit(
    session: Session | Connection, *, actor: str | None = None, token_id: str | None = None,
    offset: int = 0, limit: int = 100,
) -> list[AuditEntry]:
    """Return audit lines, newest first, optionally of one actor or one token."""
    stmt = select(*columns(AuditEntry, _A)).order_by(_A.c.event_id.desc())
    if actor is not None:
        stmt = stmt.where(_A.c.actor == actor)
    if token_id is not None:
        stmt = stmt.where(_A.c.token_id == token_id)
    rows = connection_of(session).execute(stmt.offset(offset).limit(limit))
    return [AuditEntry(*r) for r in rows]


def is_expired(ts: datetime | None, now: datetime) -> bool:
    """Return whether an expiry time has passed (None never expires)."""
    at = aware(ts)
    return at is not None and at <= now
