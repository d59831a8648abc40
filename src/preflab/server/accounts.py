"""Logins, users and API tokens, shared by pages, the API and the CLI."""

from __future__ import annotations

import math

from preflab.errors import AuthError
from preflab.server.auth import LoginLimiter, hash_password, hash_token, new_token, verify_password
from preflab.server.db import Database
from preflab.server.errors import RateLimitedError
from preflab.store.queries import collect
from preflab.store.tables import User

__all__ = ["MIN_PASSWORD", "add_user", "authenticate", "issue_token"]

MIN_PASSWORD = 8


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
    with db.read() as s:
        user = collect.get_user_by_username(s, username.strip())
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
    with db.write() as s:
        return collect.create_user(s, username, hash_password(password), role=role,
                                   vendor=vendor, team=team)


def issue_token(db: Database, user: User, name: str = "api") -> str:
    """Create an API token for the user and return it (only its hash is stored)."""
    token = new_token()
    with db.write() as s:
        collect.create_api_token(s, user.user_id, name, hash_token(token))
    return token
