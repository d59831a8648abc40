"""Generic JSON lines, CSV and Parquet files with a column mapping.

The mapping names, for each of our fields, the column that holds it (columns not named keep
their own name, so a file already in TRL's column names needs no mapping):

====================  =====================================================================
field                 meaning
====================  =====================================================================
``prompt``            prompt text or list of messages (omit for an implicit prompt)
``system``            optional system message put before the prompt
``chosen``            preferred answer (text or one assistant message) — preference rows
``rejected``          the other answer — preference rows
``completion``        one answer — unpaired rows
``label``             true/false (``1``/``0``, ``yes``/``no``) — unpaired rows
``chosen_model``      optional model of ``chosen``
``rejected_model``    optional model of ``rejected``
``model``             optional model of ``completion``
``judge``             optional judge id per row (default: the format name)
``shown_first``       optional: which answer was shown first (left/top), ``chosen`` or
                      ``rejected``; rows with it carry their shown order (``response_ids``
                      in that order, no ``order_unknown`` flag), so the position-bias audit
                      uses them; an empty cell means not recorded
====================  =====================================================================

A row with ``chosen`` is a preference row (see :mod:`preflab.formats.trl_datasets`), a row with
``completion`` an unpaired row; ``kind`` forces one. In CSV cells, a value starting with ``[``
is read as a JSON list of messages.

>>> mapping_fields()[:3]
['prompt', 'system', 'chosen']
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from preflab.errors import UsageError
from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ChunkBuilder
from preflab.formats.driver import read_rows
from preflab.formats.fields import RowError, describe, optional_str
from preflab.formats.streams import RowSource, iter_rows
from preflab.formats.trl_datasets import parse_preference_row, parse_unpaired_row

__all__ = ["make_tabular_parser", "mapping_fields", "read_csv", "read_jsonl", "read_parquet"]

RowKind = Literal["auto", "preference", "unpaired"]
_FIELDS = (
    "prompt",
    "system",
    "chosen",
    "rejected",
    "completion",
    "label",
    "chosen_model",
    "rejected_model",
    "model",
    "judge",
    "shown_first",
)
_SHOWN_FIRST = ("chosen", "rejected")
_MESSAGE_FIELDS = ("prompt", "chosen", "rejected", "completion")


def mapping_fields() -> list[str]:
    """Return the field names a column mapping may use."""
    return list(_FIELDS)


def _check_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    columns = {f: f for f in _FIELDS}
    for key, column in (mapping or {}).items():
        if key not in _FIELDS:
            raise UsageError(
                f"unknown mapping field {key!r}; use one of: {', '.join(_FIELDS)}",
                field=f"mapping.{key}",
                value=key,
            )
        if not isinstance(column, str) or not column:
            raise UsageError(
                f"mapping.{key} must name a column, got {column!r}",
                field=f"mapping.{key}",
                value=column,
            )
        columns[key] = column
    return columns


def _shown_first(canon: Mapping[str, Any], row_kind: str) -> str | None:
    """Return ``chosen``, ``rejected`` or ``None`` (not recorded) from the ``shown_first`` cell.

    Raises:
        RowError: any other value, or a value on an unpaired row (one answer, no order).
    """
    value = canon.get("shown_first")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in _SHOWN_FIRST:
        raise RowError(
            "shown_first",
            f"expected 'chosen' or 'rejected' (the answer shown first), got {value!r}; "
            "leave the cell empty where the order was not recorded",
            value,
        )
    if row_kind != "preference":
        raise RowError(
            "shown_first", f"an unpaired row has one answer and no shown order, got {value!r}", value
        )
    return text


def _cell(value: Any, parse_json: bool) -> Any:
    if parse_json and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def make_tabular_parser(
    mapping: Mapping[str, str] | None,
    *,
    kind: RowKind = "auto",
    default_judge: str,
    cells_are_text: bool = False,
) -> Any:
    """Return a row parser for :func:`~preflab.formats.driver.read_rows` using ``mapping``.

    Args:
        mapping: our field → the file's column (see the module docstring).
        kind: ``preference``, ``unpaired`` or ``auto`` (by the columns present).
        default_judge: the judge id when no ``judge`` column is mapped or the cell is empty.
        cells_are_text: CSV-style cells; JSON lists in message columns are decoded.
    """
    if kind not in ("auto", "preference", "unpaired"):
        raise UsageError(f"kind must be auto, preference or unpaired, got {kind!r}", field="kind")
    columns = _check_mapping(mapping)
    back = {f: c for f, c in columns.items()}

    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        canon: dict[str, Any] = {}
        for f, column in columns.items():
            if column in row:
                value = row[column]
                if cells_are_text and value == "":
                    value = None
                canon[f] = _cell(value, cells_are_text and f in _MESSAGE_FIELDS)
        row_kind = kind
        if row_kind == "auto":
            if "chosen" in canon or "rejected" in canon:
                row_kind = "preference"
            elif "completion" in canon:
                row_kind = "unpaired"
            else:
                raise RowError(
                    None,
                    "found neither a chosen/rejected nor a completion column "
                    f"(columns: {describe(sorted(row), 120)}); pass a mapping",
                )
        try:
            judge = optional_str(canon, "judge") or default_judge
            system = optional_str(canon, "system")
            if system is not None and canon.get("prompt") is not None:
                prompt = canon["prompt"]
                prompt = (
                    [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
                )
                canon["prompt"] = [{"role": "system", "content": system}, *prompt]
            shown_first = _shown_first(canon, row_kind)
            b.add_judge(judge, "imported")
            if row_kind == "preference":
                parse_preference_row(
                    b,
                    canon,
                    judge_id=judge,
                    chosen_model=optional_str(canon, "chosen_model"),
                    rejected_model=optional_str(canon, "rejected_model"),
                    shown_first=shown_first,
                )
            else:
                parse_unpaired_row(b, canon, judge_id=judge, model=optional_str(canon, "model"))
        except RowError as exc:
            if exc.field:
                head, sep, tail = exc.field.partition("[")
                if head in back:
                    exc.field = back[head] + sep + tail
            raise

    return parse


def _read(
    path: str | Path,
    container: RowSource,
    format: str,
    *,
    chunk_size: int,
    skip_invalid: bool,
    max_problems: int,
    mapping: Mapping[str, str] | None,
    kind: RowKind,
    judge_id: str | None,
) -> Iterator[ImportChunk]:
    parse = make_tabular_parser(
        mapping, kind=kind, default_judge=judge_id or format, cells_are_text=container == "csv"
    )
    return read_rows(
        str(path),
        iter_rows(path, container),
        parse,
        format=format,
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )


def read_jsonl(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    mapping: Mapping[str, str] | None = None,
    kind: RowKind = "auto",
    judge_id: str | None = None,
) -> Iterator[ImportChunk]:
    """Yield chunks read from a JSON-lines file (optionally compressed) with a column mapping.

    Args:
        path: the file.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        mapping: our field → the file's column (see the module docstring).
        kind: ``preference``, ``unpaired`` or ``auto``.
        judge_id: the judge when the file names none (default: ``jsonl``).
    """
    return _read(
        path,
        "jsonl",
        "jsonl",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        mapping=mapping,
        kind=kind,
        judge_id=judge_id,
    )


def read_csv(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    mapping: Mapping[str, str] | None = None,
    kind: RowKind = "auto",
    judge_id: str | None = None,
) -> Iterator[ImportChunk]:
    """Yield chunks read from a CSV (or ``.tsv``) file with a header row and a column mapping.

    Takes the same arguments as :func:`read_jsonl`; line numbers are the file's lines (the
    header is line 1).
    """
    return _read(
        path,
        "csv",
        "csv",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        mapping=mapping,
        kind=kind,
        judge_id=judge_id,
    )


def read_parquet(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    mapping: Mapping[str, str] | None = None,
    kind: RowKind = "auto",
    judge_id: str | None = None,
) -> Iterator[ImportChunk]:
    """Yield chunks read from a Parquet file with a column mapping (read in record batches).

    Takes the same arguments as :func:`read_jsonl`; ``source_line`` is the 1-based row number.
    """
    return _read(
        path,
        "parquet",
        "parquet",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        mapping=mapping,
        kind=kind,
        judge_id=judge_id,
    )
