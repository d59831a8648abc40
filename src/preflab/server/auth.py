"""Passwords (argon2), API tokens and CSRF tokens.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106). API tokens are random
strings shown once; only their SHA-256 is stored. The login rate limit, which keeps its count
in the database, is :class:`preflab.server.accounts.LoginLimiter`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "check_csrf",
    "hash_password",
    "hash_token",
    "new_csrf_token",
    "new_token",
    "verify_password",
]

_hasher = PasswordHasher()
# Verifying against this dummy when the user is unknown keeps timing equal for both cases.
_DUMMY_HASH = _hasher.hash("preflab-dummy-password")


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches ``password_hash`` (False for a missing user)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """Return a fresh API token (``pfl_`` + 43 URL-safe characters)."""
    return "pfl_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the stored form of an API token (SHA-256 hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_csrf_token() -> str:
    """Return a fresh CSRF token for a session."""
    return secrets.token_urlsafe(32)


def check_csrf(expected: str | None, got: str | None) -> bool:
    """Return whether a submitted CSRF token matches the session's (constant time)."""
    return bool(expected) and bool(got) and hmac.compare_digest(str(expected), str(got))
