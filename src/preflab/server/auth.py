"""Passwords (argon2), API tokens, CSRF tokens and the login rate limit.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106). API tokens are random
strings shown once; only their SHA-256 is stored. The login limiter refuses a username or a
client address after ``max_failures`` failed attempts within ``window_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "LoginLimiter",
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


class LoginLimiter:
    """Count failed logins per key (username, client address) in a sliding window.

    Args:
        max_failures: failures allowed inside the window before further attempts are refused.
        window_seconds: length of the window.
    """

    def __init__(self, max_failures: int = 5, window_seconds: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_seconds:
            q.popleft()
        return q

    def retry_after(self, keys: list[str]) -> float:
        """Return seconds until any of ``keys`` may try again (0 when allowed now)."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._recent(key, now)
                if len(q) >= self.max_failures:
                    wait = max(wait, q[0] + self.window_seconds - now)
        return wait

    def fail(self, keys: list[str]) -> None:
        """Record one failed attempt for each key."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeed(self, key: str) -> None:
        """Forget the failures of ``key`` (the username) after a good login."""
        with self._lock:
            self._failures.pop(key, None)
