"""Logins, sessions, users and API tokens, shared by pages, the API and the CLI.

Login limits never lock an account: failures count per (username, client address), with a
delay that doubles after a few of them, plus a looser count per address. Someone hammering a
username from one address slows only that address; the owner, from an address with no
failures, still gets in.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, insert, select

from preflab import collect
from preflab.collect import User
from preflab.collect import accounts as store
from preflab.errors import AuthError, InputError
from preflab.server.auth import hash_password, hash_token, new_token, verify_password
from preflab.server.db import Database
from preflab.server.errors import RateLimitedError
from preflab.store.tables import LoginFailure

__all__ = [
    "MIN_PASSWORD",
    "LoginLimiter",
    "add_user",
    "authenticate",
    "change_password",
    "check_self_scopes",
    "create_token",
    "end_session",
    "issue_token",
    "start_session",
]

MIN_PASSWORD = 8


class LoginLimiter:
    """Slow down failed logins per (username, client address) and per address, never lock.

    The failures are rows of the workspace database, so every process of
    ``preflab serve --workers N`` counts the same ones, and a restart does not reset them.

    - Per pair (``pair:ADDRESS|username``): ``free_failures`` failures cost nothing; after
      that each further attempt waits ``base_delay * 2 ** (n - free_failures)`` seconds after
      the last failure (capped at ``max_delay``), counting failures inside the window.
    - Per address (``addr:ADDRESS``): ``max_address_failures`` failures inside the window,
      over all usernames, then refused until the oldest leave the window. Higher, because one
      address often stands for many people (an office behind NAT).

    No limit counts a username over all addresses, so nobody can keep an owner out by failing
    their username from elsewhere.

    Args:
        db: the workspace database.
        free_failures: failures of one (username, address) before delays start.
        base_delay: the first delay, in seconds.
        max_delay: the longest delay, in seconds.
        window_seconds: how long a failure counts.
        max_address_failures: failures from one address allowed inside the window.
        clock: Unix time in seconds (shared by all processes; injectable for tests).
    """

    def __init__(
        self,
        db: Database,
        *,
        free_failures: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        window_seconds: float = 900.0,
        max_address_failures: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.window_seconds = window_seconds
        self.max_address_failures = max_address_failures
        self._clock = clock

    @staticmethod
    def keys(username: str, client: str) -> tuple[str, str]:
        """Return the (pair, address) keys of one attempt."""
        return f"pair:{client}|{username.strip().lower()}"[:300], f"addr:{client}"[:300]

    def delay(self, failures: int) -> float:
        """Return the wait after the last of ``failures`` failures of one pair."""
        if failures < self.free_failures:
            return 0.0
        return min(self.base_delay * 2 ** (failures - self.free_failures), self.max_delay)

    def retry_after(self, username: str, client: str) -> float:
        """Return seconds until this username may be tried from this address (0: now)."""
        now = self._clock()
        pair, addr = self.keys(username, client)
        recent: dict[str, list[float]] = {pair: [], addr: []}
        with self.db.connect() as conn:
            rows = conn.execute(
                select(LoginFailure.key, LoginFailure.failed_at)
                .where(LoginFailure.key.in_([pair, addr]),
                       LoginFailure.failed_at > now - self.window_seconds)
                .order_by(LoginFailure.failed_at)
            )
            for key, failed_at in rows:
                recent[key].append(failed_at)
        wait = 0.0
        if recent[pair]:
            wait = recent[pair][-1] + self.delay(len(recent[pair])) - now
        times, limit = recent[addr], self.max_address_failures
        if len(times) >= limit:
            # allowed again once all but limit - 1 of them have left the window
            wait = max(wait, times[len(times) - limit] + self.window_seconds - now)
        return max(wait, 0.0)

    def fail(self, username: str, client: str) -> None:
        """Record one failed attempt (and forget failures past the window)."""
        now = self._clock()
        with self.db.transaction() as conn:
            conn.execute(
                delete(LoginFailure).where(LoginFailure.failed_at <= now - self.window_seconds)
            )
            conn.execute(insert(LoginFailure),
                         [{"key": k, "failed_at": now} for k in self.keys(username, client)])

    def succeed(self, username: str, client: str) -> None:
        """Forget the pair's failures after a good login (the address's stay)."""
        pair, _ = self.keys(username, client)
        with self.db.transaction() as conn:
            conn.execute(delete(LoginFailure).where(LoginFailure.key == pair))


def authenticate(
    db: Database, limiter: LoginLimiter, username: str, password: str, client: str
) -> User:
    """Return the active user with these credentials.

    Raises:
        RateLimitedError: too many failures for this username from this address, or from
            this address overall, lately (``retry_after`` says how long to wait).
        AuthError: wrong username or password, or a disabled account.
    """
    wait = limiter.retry_after(username, client)
    if wait > 0:
        err = RateLimitedError(
            f"too many failed logins for this username from your address; try again in "
            f"{math.ceil(wait)} seconds", field="username")
        err.retry_after = math.ceil(wait)
        raise err
    with db.connect() as conn:
        user = collect.get_user_by_username(conn, username.strip())
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        limiter.fail(username, client)
        raise AuthError("wrong username or password (or the account is disabled)",
                        field="password")
    limiter.succeed(username, client)
    return user


def _check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters", field=field)


def add_user(
    db: Database,
    username: str,
    password: str,
    *,
    role: str = "annotator",
    vendor: str | None = None,
    team: str | None = None,
) -> User:
    """Create a user with an argon2-hashed password (at least 8 characters)."""
    _check_password(password)
    with db.transaction() as conn:
        return collect.create_user(conn, username, hash_password(password), role=role,
                                   vendor=vendor, team=team)


def issue_token(db: Database, user: User, name: str = "api", **options: object) -> str:
    """Create an API token for the user and return it (see :func:`create_token`)."""
    return create_token(db, user, name, **options)[0]  # type: ignore[arg-type]


def create_token(
    db: Database,
    user: User,
    name: str = "api",
    *,
    scopes: list[str] | None = None,
    project_id: str | None = None,
    expires_at: datetime | None = None,
    actor: str | None = None,
    client: str | None = None,
) -> tuple[str, store.TokenInfo]:
    """Create an API token for the user; return it (shown once) and its listing.

    Only its hash is stored. The creation is a line of the audit log, by ``actor`` (default:
    the user). ``scopes`` default to the role's :data:`~preflab.collect.accounts.DEFAULT_SCOPES`.
    """
    token = new_token()
    with db.transaction() as conn:
        if project_id is not None and collect.get_project(conn, project_id) is None:
            raise InputError(f"no project {project_id!r}", field="project_id")
        info = collect.create_api_token(conn, user.user_id, name, hash_token(token),
                                        scopes=scopes, project_id=project_id,
                                        expires_at=expires_at)
        store.record_audit(conn, "token.create", actor=actor or user.user_id,
                           token_id=info.token_id,
                           target={"user": user.username, "scopes": info.scopes,
                                   "project_id": project_id}, client=client)
    return token, info


def check_self_scopes(user: User, scopes: list[str] | None) -> None:
    """Refuse scopes a user may not give their own token (feedback for annotators).

    Raises:
        PermissionDeniedError: a scope only an admin can grant this user.
    """
    from preflab.errors import PermissionDeniedError

    allowed = store.SELF_SCOPES.get(user.role, frozenset())
    extra = sorted(set(scopes or ()) - {s.value for s in allowed})
    if extra and all(s in {x.value for x in store.Scope} for s in extra):
        raise PermissionDeniedError(
            f"the role {user.role} cannot give its own token the scope(s) {', '.join(extra)}; an "
            "admin can (`preflab users tokens create USER --scope …`)", field="scopes")


def start_session(db: Database, user: User, *, client: str | None,
                  user_agent: str | None) -> str:
    """Open a server-side session for the user; return the secret for the cookie."""
    secret = secrets.token_urlsafe(32)
    with db.transaction() as conn:
        store.create_session(conn, user.user_id, hash_token(secret), client=client,
                             user_agent=user_agent)
    return secret


def end_session(db: Database, secret: str | None) -> None:
    """End the session whose cookie secret this is (nothing if it has ended already)."""
    if not secret:
        return
    with db.transaction() as conn:
        found = store.get_session(conn, hash_token(secret))
        if found is not None:
            store.delete_session(conn, found[1].session_id)


def change_password(
    db: Database, user: User, current: str, new: str, *, keep_session_id: str | None,
    client: str | None = None,
) -> int:
    """Change a user's password (the current one required); end their other sessions.

    Returns:
        How many other sessions ended.

    Raises:
        InputError: the current password is wrong, or the new one is too short.
    """
    with db.connect() as conn:
        fresh = collect.get_user(conn, user.user_id)
    if fresh is None or not verify_password(fresh.password_hash, current):
        raise InputError("the current password is wrong; type it again",
                         field="current_password")
    _check_password(new, "new_password")
    with db.transaction() as conn:
        ended = store.change_password_hash(conn, user.user_id, hash_password(new),
                                           keep_session_id=keep_session_id)
        store.record_audit(conn, "user.password", actor=user.user_id,
                           target={"user": user.username, "sessions_ended": ended},
                           client=client)
    return ended
