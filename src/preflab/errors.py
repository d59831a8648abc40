"""The one error tree of preflab.

Every error raised on purpose is a :class:`PreflabError`. Each carries its location as
attributes (``path``, ``line``, ``field``, ``value``) so the CLI, the HTTP API and import
reports can show it without parsing text::

    PreflabError
    ├── InputError            bad data in a file, a form or a request (names file/line/field)
    │   ├── FormatError       a file that does not follow the format it claims to be
    │   └── ExportRowError    a derived row an export cannot write (names the row and its records)
    ├── UsageError            a command or function called with options that do not fit together
    ├── ConfigError           bad settings or config files
    ├── NotFoundError         a project, item, user… that does not exist
    ├── PermissionDeniedError the caller may not do this
    ├── AuthError             not logged in / bad credentials / bad token
    ├── ConflictError         the write collides with stored state (idempotency key reused, …)
    ├── StoreError            the database could not do what was asked
    ├── EndpointError         a model endpoint kept failing
    │   └── StreamBrokenError a streamed reply stopped after text was sent (never complete)
    └── DependencyError       an optional extra is needed (``pip install 'preflab[trl]'``)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DependencyError",
    "EndpointError",
    "ExportRowError",
    "FormatError",
    "InputError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreflabError",
    "StoreError",
    "StreamBrokenError",
    "UsageError",
]


class PreflabError(Exception):
    """Base class: a message saying where, what, and what to do next.

    Args:
        message: the whole human message.
        path: file the problem is in, if any.
        line: 1-based line (or row) number, if any.
        field: dotted field path (``chosen``, ``messages[2].role``), if any.
        value: the offending value (shortened when shown).
    """

    code = "error"
    http_status = 500

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        self.value = value

    def location(self) -> str:
        """Return ``file line N, field "x"`` or an empty string."""
        parts = []
        if self.path:
            parts.append(str(self.path))
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(f'field "{self.field}"')
        return ", ".join(parts)

    def __str__(self) -> str:
        loc = self.location()
        if loc and not self.message.startswith(loc):
            return f"{loc}: {self.message}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape used by the API and the import reports."""
        out: dict[str, Any] = {"code": self.code, "message": str(self)}
        if self.field:
            out["field"] = self.field
        if self.path:
            out["path"] = str(self.path)
        if self.line is not None:
            out["line"] = self.line
        return out


class InputError(PreflabError):
    code = "invalid_field"
    http_status = 422


class FormatError(InputError):
    code = "invalid_format"


class ExportRowError(InputError):
    """A derived pair or unpaired row an export cannot write.

    ``path`` and ``line`` are the input file and line the row's judgment came from (when the
    records carry them); ``row`` is the 1-based position in the exported table, ``reason`` the
    named check (``preflab.formats.row_policy.BAD_ROW_REASONS``) and ``record_ids`` the ids that
    find the row's records (``prompt_id``, ``judgment_ids``, ``chosen_id``…).
    """

    code = "bad_export_row"

    def __init__(
        self,
        message: str,
        *,
        row: int,
        reason: str,
        record_ids: dict[str, Any] | None = None,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message, path=path, line=line, field=field, value=value)
        self.row = row
        self.reason = reason
        self.record_ids = dict(record_ids or {})

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape of :class:`PreflabError` plus ``row``, ``reason`` and the ids."""
        return {**super().to_dict(), "row": self.row, "reason": self.reason, **self.record_ids}


class UsageError(PreflabError):
    code = "bad_usage"
    http_status = 400


class ConfigError(PreflabError):
    code = "bad_config"
    http_status = 500


class NotFoundError(PreflabError):
    code = "not_found"
    http_status = 404


class PermissionDeniedError(PreflabError):
    code = "forbidden"
    http_status = 403


class AuthError(PreflabError):
    code = "unauthorized"
    http_status = 401


class ConflictError(PreflabError):
    code = "conflict"
    http_status = 409


class StoreError(PreflabError):
    code = "store_error"
    http_status = 500


class EndpointError(PreflabError):
    code = "endpoint_error"
    http_status = 502


class StreamBrokenError(EndpointError):
    """A streamed reply broke off after some text had arrived: never a complete answer.

    A dropped connection, a chunk that is not JSON or a stream that ends without a
    ``finish_reason`` once text was sent; retrying the same stream would pay for the tokens
    again, so it is not retried by the client (the caller offers a retry). ``value`` holds the
    number of characters received before the break.
    """

    code = "stream_broken"


class DependencyError(PreflabError):
    code = "missing_dependency"
    http_status = 500


def field_path(loc: Sequence[int | str]) -> str:
    """Return a pydantic error location as a field path, list positions in brackets.

    >>> field_path(("body", "events", 1, "kind"))
    'body.events[1].kind'
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def shorten(value: Any, limit: int = 80) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
