"""Logins, users and API tokens, shared by pages, the API and the CLI."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from sqlalchemy import delete, insert, select

from preflab import collect
from preflab.collect import User
from preflab.errors import AuthError
from preflab.server.auth import hash_password, hash_token, new_token, verify_password
from preflab.server.db import Database
from preflab.server.errors import RateLimitedError
from preflab.store.tables import LoginFailure

__all__ = ["MIN_PASSWORD", "LoginLimiter", "add_user", "authenticate", "issue_token"]

MIN_PASSWORD = 8


class LoginLimiter:
    """Count failed logins per key (username, client address) in a sliding window.

    The failures are rows of the workspace database, so every process of
    ``preflab serve --workers N`` counts the same ones: N workers do not give an attacker N
    times the attempts, and a restart does not reset the count.

    A username is refused after ``max_failures`` failures inside the window; a client address
    after ``max_address_failures``, higher because one address often stands for many people
    (an office behind NAT, a proxy) who should not lock each other out by a few typos.

    Args:
        db: the workspace database.
        max_failures: failures of one username allowed inside the window.
        window_seconds: length of the window.
        max_address_failures: failures from one client address (keys ``addr:…``) allowed
            inside the window.
        clock: Unix time in seconds (shared by all processes; injectable for tests).
    """

    def __init__(
        self,
        db: Database,
        max_failures: int = 5,
        window_seconds: float = 300.0,
        *,
        max_address_failures: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.window_seconds = window_seconds
        self._clock = clock

    def retry_after(self, keys: list[str]) -> float:
        """Return seconds until every one of ``keys`` may try again (0 when allowed now)."""
        now = self._clock()
        recent: dict[str, list[float]] = {}
        with self.db.connect() as conn:
            rows = conn.execute(
                select(LoginFailure.key, LoginFailure.failed_at)
                .where(
                    LoginFailure.key.in_(keys),
                    LoginFailure.failed_at > now - self.window_seconds,
                )
                .order_by(LoginFailure.failed_at)
            )
            for key, failed_at in rows:
                recent.setdefault(key, []).append(failed_at)
        wait = 0.0
        for key, times in recent.items():
            limit = self.max_address_failures if key.startswith("addr:") else self.max_failures
            if len(times) >= limit:
                # allowed again once all but limit - 1 of them have left the window
                first_to_go = times[len(times) - limit]
                wait = max(wait, first_to_go + self.window_seconds - now)
        return wait

    def fail(self, keys: list[str]) -> None:
        """Record one failed attempt for each key (and forget failures past the window)."""
        now = self._clock()
        with self.db.transaction() as conn:
            conn.execute(
                delete(LoginFailure).where(LoginFailure.failed_at <= now - self.window_seconds)
            )
            conn.execute(insert(LoginFailure), [{"key": k, "failed_at": now} for k in keys])

    def succeed(self, key: str) -> None:
        """Forget the failures of ``key`` (the username) after a good login."""
        with self.db.transaction() as conn:
            conn.execute(delete(LoginFailure).where(LoginFailure.key == key))


def authenticate(
    db: Database, limiter: LoginLimiter, username: str, password: str, client: str
) -> User:
    """Return the active user with these credentials.

    Raises:
        RateLimitedError: too many failures for this username or client address lately.
        AuthError: wrong username or password, or a disabled account.
    """
    keys = [f"user:{username.strip().lower()}", f"addr:{client}"]
    wait = limiter.retry_after(keys)
    if wait > 0:
        raise RateLimitedError(
            f"too many failed logins; try again in {math.ceil(wait)} seconds", field="username"
        )
    with db.connect() as conn:
        user = collect.get_user_by_username(conn, username.strip())
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        limiter.fail(keys)
        raise AuthError("wrong username or password (or the account is disabled)",
                        field="password")
    limiter.succeed(keys[0])
    return user


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
    from preflab.errors import InputError

    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters",
                         field="password")
    with db.transaction() as conn:
        return collect.create_user(conn, username, hash_password(password), role=role,
                                   vendor=vendor, team=team)


def issue_token(db: Database, user: User, name: str = "api") -> str:
    """Create an API token for the user and return it (only its hash is stored)."""
    token = new_token()
    with db.transaction() as conn:
        collect.create_api_token(conn, user.user_id, name, hash_token(token))
    return token
