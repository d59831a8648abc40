"""The contract between readers (one module per outside format) and everything that uses them.

A reader turns a file into a stream of :class:`ImportChunk` — Arrow tables of records with the
schemas of :mod:`preflab.records` — so files larger than memory import chunk by chunk. The
store writes the chunks inside one transaction (all-or-nothing); Parquet outputs are written to
a temporary file and renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from preflab.records import JUDGE_SCHEMA, JUDGMENT_SCHEMA, PROMPT_SCHEMA, RESPONSE_SCHEMA

__all__ = ["ImportChunk", "ImportProblem", "ImportSummary", "empty_chunk"]


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One input row that could not be imported, or was changed by a rule, with where and why.

    ``reason`` is the count key the row went to (``dropped_identical``,
    ``skipped_repeated_source``, ``merged_consecutive_turns``, …) for rows left out or changed
    by a stated rule (:attr:`ImportChunk.notes`); None for invalid rows (``problems``).
    """

    path: str
    line: int | None
    field: str | None
    message: str
    reason: str | None = None

    def __str__(self) -> str:
        loc = [self.path] + ([f"line {self.line}"] if self.line is not None else [])
        if self.field:
            loc.append(f'field "{self.field}"')
        return f"{', '.join(loc)}: {self.message}"


@dataclass(slots=True)
class ImportChunk:
    """Records read from a slice of one input file.

    ``problems`` lists invalid rows (left out with ``skip_invalid``); ``notes`` lists the rows a
    stated rule dropped, skipped or merged (each with its file, line, record id where the source
    has one, and the count key it went to), up to a cap per chunk; ``counts`` stay exact.
    """

    prompts: pa.Table
    responses: pa.Table
    judgments: pa.Table
    judges: pa.Table
    problems: list[ImportProblem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[ImportProblem] = field(default_factory=list)


@dataclass(slots=True)
class ImportSummary:
    """What an import did: rows read, records written, rows skipped or dropped by rule."""

    format: str
    path: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[ImportProblem] = field(default_factory=list)
    already_imported: bool = False
    notes: list[ImportProblem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": self.path,
            "counts": dict(self.counts),
            "problems": [str(p) for p in self.problems],
            "notes": [str(n) for n in self.notes],
            "already_imported": self.already_imported,
        }


def empty_chunk() -> ImportChunk:
    """Return a chunk with empty tables of the record schemas."""
    return ImportChunk(
        prompts=PROMPT_SCHEMA.empty_table(),
        responses=RESPONSE_SCHEMA.empty_table(),
        judgments=JUDGMENT_SCHEMA.empty_table(),
        judges=JUDGE_SCHEMA.empty_table(),
    )
