"""The imported side of the real-file tests (tests/formats/test_real_*.py), written once.

Each real-file test reads a published file twice: with plain ``json``/``csv``/``pyarrow`` and
the dataset card (its own ``independent`` reading, kept in the test), and with the importer.
This module holds what every test needs to put the importer's chunk in the same shape: both
readings of a catalog file, text normalization as the records do it, and lookups from ids to
texts and prompt turns.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from preflab.formats.registry import read
from tests.data_catalog import data_file

Normalize = Callable[[str], str]


def norm(text: str) -> str:
    """Return ``text`` as the records store it: NFC, ``\\r\\n`` → ``\\n``, outer space stripped."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def norm_bare_cr(text: str) -> str:
    """Return :func:`norm` of ``text`` with lone ``\\r`` line endings read as ``\\n`` too."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def norm_turns(
    messages: Iterable[Mapping[str, str]], normalize: Normalize = norm
) -> tuple[tuple[str, str], ...]:
    """Return ``(role, normalized content)`` per message."""
    return tuple((m["role"], normalize(m["content"])) for m in messages)


def response_texts(chunk: Any, normalize: Normalize = norm) -> dict[str, str]:
    """Return response id → normalized content of the chunk's responses."""
    return {r["response_id"]: normalize(r["content"])
            for r in chunk.responses.select(["response_id", "content"]).to_pylist()}


def prompt_turns(chunk: Any, normalize: Normalize = norm) -> dict[str, tuple[tuple[str, str], ...]]:
    """Return prompt id → the prompt's ``(role, normalized content)`` turns."""
    return {p["prompt_id"]: norm_turns(p["messages"], normalize)
            for p in chunk.prompts.select(["prompt_id", "messages"]).to_pylist()}


def last_user_texts(chunk: Any, normalize: Normalize = norm) -> dict[str, str]:
    """Return prompt id → the normalized text of the prompt's last (user) turn."""
    return {p["prompt_id"]: normalize(p["messages"][-1]["content"])
            for p in chunk.prompts.select(["prompt_id", "messages"]).to_pylist()}


def reason_counts(chunk: Any, prefixes: tuple[str, ...] = ("dropped_", "skipped_")) -> dict[str, int]:
    """Return the chunk's counts of rows left out by a rule (keys starting with ``prefixes``)."""
    return {k: v for k, v in chunk.counts.items() if k.startswith(prefixes)}


def read_both(relative: str, format: str, independent: Callable[[Path], Any]) -> tuple[Any, Any]:
    """Return ``(independent(path), the importer's chunk)`` for catalog file ``relative``
    (skipping the test when the file is not available, see tests/data_catalog.py)."""
    path = data_file(relative)
    return independent(path), read(format, path)
