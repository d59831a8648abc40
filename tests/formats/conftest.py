"""Helpers for the reader tests: write sample files, check chunks against the record models."""

from __future__ import annotations

import bz2
import gzip
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from preflab.formats.base import ImportChunk
from preflab.records import Judge, Judgment, Prompt, Response, table_to_records

_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write text lines to ``path``, compressed by its suffix (.gz, .bz2, .zst or none)."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(_COMPRESS.get(path.suffix, lambda d: d)(data))
    return path


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Return ``write(rows, name="data.jsonl")`` writing JSON lines into the test's tmp dir."""

    def write(rows: Iterable[Any], name: str = "data.jsonl") -> Path:
        return write_lines(tmp_path / name, (json.dumps(r, ensure_ascii=False) for r in rows))

    return write


def _records_of(chunk: ImportChunk) -> dict[str, list[Any]]:
    return {
        "prompts": table_to_records(chunk.prompts, Prompt),
        "responses": table_to_records(chunk.responses, Response),
        "judgments": table_to_records(chunk.judgments, Judgment),
        "judges": table_to_records(chunk.judges, Judge),
    }


@pytest.fixture
def records_of() -> Callable[[ImportChunk], dict[str, list[Any]]]:
    """Return ``records_of(chunk)``: its records as validated pydantic models (fails if invalid)."""
    return _records_of


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[..., Path]:
    """Return ``write(lines, name)`` writing text lines (compressed by the name's suffix)."""

    def write(lines: Iterable[str], name: str) -> Path:
        return write_lines(tmp_path / name, lines)

    return write
