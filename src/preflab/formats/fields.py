"""Checks on the fields of one input row, with messages that name the field, expected and got.

Readers raise :class:`RowError` (field + message); the reading loop in
:mod:`preflab.formats.driver` adds the file and line and turns it into an
:class:`~preflab.errors.InputError` or, with ``skip_invalid``, an
:class:`~preflab.formats.base.ImportProblem`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ROLE_ALIASES",
    "RowError",
    "describe",
    "get_bool",
    "get_messages",
    "get_number",
    "get_str",
    "optional_str",
]

#: Role names used by outside formats, mapped to ours (OpenAssistant "prompter", ShareGPT
#: "human"/"gpt", HH "Human"/"Assistant").
ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "system": "system",
}


class RowError(Exception):
    """A problem in one row: which field, and what was wrong (without file and line)."""

    def __init__(self, field: str | None, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.value = value


def describe(value: Any, limit: int = 60) -> str:
    """Return a short JSON-like rendering of ``value`` for messages (``null``, ``42``, ``"ab…"``).

    >>> describe(None), describe("x" * 100, limit=8)
    ('null', '"xxxxxx…')
    """
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def get_str(
    row: Mapping[str, Any], key: str, *, field: str | None = None, allow_empty: bool = False
) -> str:
    """Return ``row[key]`` as a non-empty string, or raise :class:`RowError` naming the field.

    >>> get_str({"chosen": None}, "chosen")
    Traceback (most recent call last):
    ...
    preflab.formats.fields.RowError: expected a string, got null
    """
    field = field or key
    if key not in row:
        raise RowError(field, "missing (expected a string)")
    value = row[key]
    if not isinstance(value, str):
        raise RowError(
            field,
            f"expected a string, got {_type_name(value)} {describe(value)}"
            if value is not None
            else "expected a string, got null",
            value,
        )
    if not allow_empty and not value.strip():
        raise RowError(field, "expected a non-empty string, got an empty one", value)
    return value


def optional_str(row: Mapping[str, Any], key: str) -> str | None:
    """Return ``row[key]`` as a string (numbers converted), None if absent, null or empty."""
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RowError(key, "contains invalid Unicode (a lone surrogate)", value) from None
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RowError(key, f"expected a string, got {_type_name(value)} {describe(value)}", value)


def get_number(
    row: Mapping[str, Any],
    key: str,
    *,
    field: str | None = None,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
) -> float:
    """Return ``row[key]`` as a finite number within ``[lo, hi]`` (numeric strings accepted)."""
    field = field or key
    if key not in row or row[key] is None:
        raise RowError(
            field,
            "missing (expected a number)" if key not in row else "expected a number, got null",
        )
    value = row[key]
    number: float
    if isinstance(value, bool):
        raise RowError(field, f"expected a number, got a boolean {describe(value)}", value)
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise RowError(field, f"expected a number, got {describe(value)}", value) from None
    else:
        raise RowError(
            field, f"expected a number, got {_type_name(value)} {describe(value)}", value
        )
    if not math.isfinite(number):
        raise RowError(field, f"expected a finite number, got {describe(value)}", value)
    if integer and number != int(number):
        raise RowError(field, f"expected a whole number, got {describe(value)}", value)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise RowError(
            field,
            f"expected a number within {lo:g}..{hi:g}, got {describe(value)}"
            if lo is not None and hi is not None
            else f"out of range: {describe(value)}",
            value,
        )
    return int(number) if integer else number


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def get_bool(row: Mapping[str, Any], key: str, *, field: str | None = None) -> bool:
    """Return ``row[key]`` as a bool (``true/false``, ``1/0``, ``yes/no`` strings accepted)."""
    field = field or key
    value = row.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RowError(
        field,
        f"expected true or false, got {describe(value)}"
        if key in row
        else "missing (expected true or false)",
        value,
    )


def get_messages(
    value: Any, field: str, *, content_key: str = "content", role_key: str = "role"
) -> list[dict[str, str]]:
    """Return ``value`` as a list of ``{role, content}`` messages with our role names.

    Accepts role aliases (:data:`ROLE_ALIASES`) and ShareGPT-style ``{"from", "value"}`` turns.
    Raises :class:`RowError` naming the exact turn (``chosen[2].role``) on anything else.

    >>> get_messages([{"role": "human", "content": "hi"}], "prompt")
    [{'role': 'user', 'content': 'hi'}]
    """
    if not isinstance(value, list):
        raise RowError(
            field, f"expected a list of messages, got {_type_name(value)} {describe(value)}", value
        )
    out: list[dict[str, str]] = []
    for i, turn in enumerate(value):
        if not isinstance(turn, Mapping):
            raise RowError(
                f"{field}[{i}]", f"expected a message object, got {describe(turn)}", turn
            )
        role = turn.get(role_key, turn.get("from"))
        content = turn.get(content_key, turn.get("value"))
        mapped = ROLE_ALIASES.get(role.lower()) if isinstance(role, str) else None
        if mapped is None:
            raise RowError(
                f"{field}[{i}].role",
                f"expected one of system, user, assistant, got {describe(role)}",
                role,
            )
        if not isinstance(content, str):
            raise RowError(
                f"{field}[{i}].content", f"expected a string, got {describe(content)}", content
            )
        out.append({"role": mapped, "content": content})
    return out
