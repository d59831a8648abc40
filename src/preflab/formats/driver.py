"""The reading loop shared by every reader: rows in, chunks out, problems collected.

A reader is a function ``parse_row(builder, row)`` that checks one input row and adds its
records to a :class:`~preflab.formats.chunk_builder.ChunkBuilder`, raising
:class:`~preflab.formats.fields.RowError` for bad input. :func:`read_rows` drives it:

- every ``chunk_size`` input rows it yields an :class:`~preflab.formats.base.ImportChunk`
  (records of those rows only; ``counts`` are per chunk and add up over the chunks);
- a bad row either stops the import (``skip_invalid=False``): reading goes on without keeping
  records, to collect up to ``max_problems`` problems, then :class:`InvalidRowsError` names the
  first one and counts the rest; or, with ``skip_invalid=True``, the row is left out and reported
  in the chunk's ``problems`` (``counts["skipped_invalid"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from preflab.errors import FormatError, InputError, UsageError
from preflab.formats.base import ImportChunk, ImportProblem, empty_chunk
from preflab.formats.chunk_builder import ChunkBuilder
from preflab.formats.fields import RowError, describe
from preflab.formats.streams import iter_rows

__all__ = [
    "InvalidRowsError",
    "RowParser",
    "check_choice",
    "concat_chunks",
    "read_file",
    "read_rows",
]

RowParser = Callable[[ChunkBuilder, dict[str, Any]], None]

#: Problems kept per chunk with ``skip_invalid`` (the count stays exact beyond it).
MAX_KEPT_PROBLEMS = 10_000
_HINT = (
    "Fix the file, or pass skip_invalid=True (--skip-invalid) to import the other rows "
    "and get a report of the skipped ones."
)


class InvalidRowsError(InputError):
    """An input file has bad rows: ``problems`` lists them (up to the cap), the first one leads.

    Args:
        problems: the problems found, in file order.
        truncated: whether reading stopped at the cap (more problems may follow).
    """

    def __init__(self, problems: list[ImportProblem], *, truncated: bool = False) -> None:
        first = problems[0]
        message = first.message
        rest = len(problems) - 1
        if rest:
            more = "; ".join(
                (f"line {p.line}" if p.line is not None else "?")
                + (f' "{p.field}"' if p.field else "")
                + f": {p.message}"
                for p in problems[1:4]
            )
            plus = "+" if truncated else ""
            message += f". {rest}{plus} more problem{'s' if rest > 1 else ''} ({more}"
            message += ", …)" if rest > 3 else ")"
        super().__init__(f"{message}. {_HINT}", path=first.path, line=first.line, field=first.field)
        self.problems = problems
        self.truncated = truncated


def _problem(path: str, line: int | None, exc: Exception) -> ImportProblem:
    if isinstance(exc, RowError):
        msg = exc.message
        return ImportProblem(path=path, line=line, field=exc.field, message=msg)
    if isinstance(exc, InputError):
        return ImportProblem(
            path=path,
            line=exc.line if exc.line is not None else line,
            field=exc.field,
            message=exc.message,
        )
    raise exc  # pragma: no cover


def read_rows(
    path: str,
    rows: Iterable[tuple[int, Any]],
    parse_row: RowParser,
    *,
    format: str,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    builder: ChunkBuilder | None = None,
) -> Iterator[ImportChunk]:
    """Yield chunks of records parsed from ``rows`` (``(line, row)`` pairs) by ``parse_row``.

    Args:
        path: the input file (for provenance and messages).
        rows: ``(line, row)`` pairs, e.g. from :func:`~preflab.formats.streams.iter_rows`; a row
            may be an :class:`InputError` (unparsable line), handled like a bad row.
        parse_row: checks one row and adds its records to the builder.
        format: the registry name of the reader (part of judgment ids).
        chunk_size: input rows per chunk.
        skip_invalid: leave bad rows out and report them instead of stopping.
        max_problems: how many problems to collect before giving up (without ``skip_invalid``).
        builder: a prepared builder (tests); a new one by default.

    Yields:
        At least one chunk (empty for an empty file).

    Raises:
        InvalidRowsError: a bad row and ``skip_invalid`` is false (after reading up to
            ``max_problems`` problems).
    """
    if chunk_size < 1:
        raise UsageError(f"chunk_size must be at least 1, got {chunk_size}")
    b = builder or ChunkBuilder(path=path, format=format)
    problems: list[ImportProblem] = []
    failed: list[ImportProblem] = []
    in_chunk = 0
    yielded = False
    for line, row in rows:
        b.count("rows")
        exc: Exception | None = None
        if isinstance(row, InputError):
            exc = row
        elif not isinstance(row, dict):
            exc = RowError(None, f"expected a JSON object, got {describe(row)}", row)
        else:
            b.begin_row(line)
            try:
                parse_row(b, row)
            except (RowError, InputError) as err:
                b.rollback_row()
                exc = err
            except UnicodeEncodeError as err:
                # JSON may escape a lone surrogate ("\ud800"): not text, cannot be hashed or stored
                b.rollback_row()
                exc = RowError(
                    None,
                    f"contains invalid Unicode (a lone surrogate {err.object[err.start]!r})",
                )
            except (TypeError, ValueError, KeyError, AttributeError, AssertionError) as err:
                # a shape the reader did not foresee: stop with the location, keep the cause
                raise FormatError(
                    f"could not read this row ({type(err).__name__}: {err}); this is likely a "
                    "preflab bug, please report it with the row",
                    path=path,
                    line=line,
                ) from err
        if exc is not None:
            problem = _problem(path, line, exc)
            if skip_invalid:
                b.count("skipped_invalid")
                if len(problems) < MAX_KEPT_PROBLEMS:
                    problems.append(problem)
            else:
                failed.append(problem)
                if len(failed) >= max_problems:
                    raise InvalidRowsError(failed, truncated=True)
        in_chunk += 1
        if in_chunk >= chunk_size:
            in_chunk = 0
            if failed:
                b.discard()
                continue
            chunk = b.flush()
            chunk.problems = problems
            problems = []
            yielded = True
            yield chunk
    if failed:
        raise InvalidRowsError(failed)
    if in_chunk or not yielded:
        chunk = b.flush()
        chunk.problems = problems
        yield chunk


def read_file(
    path: str | Path,
    parse_row: RowParser,
    *,
    format: str,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    rows: Iterable[tuple[int, Any]] | None = None,
) -> Iterator[ImportChunk]:
    """Yield chunks of records parsed by ``parse_row`` from the file ``path`` (see read_rows).

    The body of every ``read_<format>``: ``rows`` defaults to
    :func:`~preflab.formats.streams.iter_rows` of ``path`` (JSONL, CSV or Parquet); a reader
    with its own container (a JSON array, grouped messages) passes its rows.
    """
    return read_rows(
        str(path),
        iter_rows(path) if rows is None else rows,
        parse_row,
        format=format,
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )


def check_choice(name: str, value: Any, choices: Collection[str]) -> None:
    """Raise :class:`~preflab.errors.UsageError` unless a reader option is one of ``choices``.

    >>> check_choice("multi_turn", "drop", ("preferred_context", "drop"))
    >>> try:
    ...     check_choice("multi_turn", "all", ("preferred_context", "drop"))
    ... except UsageError as exc:
    ...     print(exc.message)
    multi_turn must be preferred_context or drop, got 'all'
    """
    if value in choices:
        return
    names = list(choices)
    allowed = f"{names[0]} or {names[1]}" if len(names) == 2 else f"one of {', '.join(names)}"
    raise UsageError(f"{name} must be {allowed}, got {value!r}", field=name, value=value)


def concat_chunks(chunks: Iterable[ImportChunk]) -> ImportChunk:
    """Return one chunk holding all records, problems, notes and summed counts of ``chunks``."""
    import pyarrow as pa

    parts = list(chunks)
    if not parts:
        return empty_chunk()
    counts: dict[str, int] = {}
    for c in parts:
        for key, n in c.counts.items():
            counts[key] = counts.get(key, 0) + n
    return ImportChunk(
        prompts=pa.concat_tables([c.prompts for c in parts]),
        responses=pa.concat_tables([c.responses for c in parts]),
        judgments=pa.concat_tables([c.judgments for c in parts]),
        judges=pa.concat_tables([c.judges for c in parts]),
        problems=[p for c in parts for p in c.problems],
        counts=counts,
        notes=[n for c in parts for n in c.notes],
    )
