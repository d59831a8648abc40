"""Bulk reads of the record tables back into Arrow (the schemas of ``preflab.records``).

Rows stream from the database in batches (``yield_per``; a server-side cursor on
PostgreSQL), each batch becoming one Arrow record batch, so a snapshot of millions of rows
never holds ORM objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, Select, Text, cast, select, union

from preflab.records import JUDGE_SCHEMA, JUDGMENT_SCHEMA, PROMPT_SCHEMA, RESPONSE_SCHEMA
from preflab.store.judgment_values import FEEDBACK_KEYS, KINDS, value_to_arrow
from preflab.store.queries.scope import reading
from preflab.store.tables import Item, JudgeRow, JudgmentRow, PromptRow, ResponseRow

__all__ = [
    "BATCH_ROWS",
    "iter_judge_batches",
    "iter_judgment_batches",
    "iter_prompt_batches",
    "iter_response_batches",
    "read_judges",
    "read_judgments",
    "read_prompts",
    "read_responses",
]

BATCH_ROWS = 20_000

_prompts = PromptRow.__table__
_responses = ResponseRow.__table__
_judges = JudgeRow.__table__
_judgments = JudgmentRow.__table__
_items = Item.__table__


def _project_prompt_ids(project_id: str) -> Any:
    return union(
        select(_judgments.c.prompt_id).where(_judgments.c.project_id == project_id),
        select(_items.c.prompt_id).where(_items.c.project_id == project_id),
    )


def _decode_json(texts: Sequence[str | None], arrow_type: pa.DataType) -> pa.Array:
    """Return JSON texts parsed into an Arrow array of ``arrow_type`` (Polars, column at a time)."""
    dtype = pl.Series(pa.array([], type=arrow_type)).dtype
    series = pl.Series(list(texts), dtype=pl.String).str.json_decode(dtype)
    return series.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(arrow_type)


def _select(table: Any, names: Sequence[str], json_names: Collection[str]) -> list[Any]:
    # JSON columns come back as their text (no per-row json.loads) and are parsed per batch
    return [cast(table.c[n], Text).label(n) if n in json_names else table.c[n] for n in names]


def _batches(
    conn: Connection,
    stmt: Select[Any],
    names: Sequence[str],
    build: Callable[[dict[str, Sequence[Any]]], pa.RecordBatch],
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    result = conn.execution_options(yield_per=batch_rows).execute(stmt)
    for part in result.partitions():
        yield build(dict(zip(names, zip(*part, strict=True), strict=True)))


def _build(
    schema: pa.Schema, json_names: Collection[str]
) -> Callable[[dict[str, Sequence[Any]]], pa.RecordBatch]:
    def build(cols: dict[str, Sequence[Any]]) -> pa.RecordBatch:
        arrays = []
        for f in schema:
            values = cols[f.name]
            if f.name in json_names and f.type != pa.string():
                arrays.append(_decode_json(values, f.type))
            else:
                arrays.append(pa.array(values, type=f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    return build


_PROMPT_JSON = {"messages", "tags", "constraints"}
_RESPONSE_JSON = {"params"}  # kept as JSON text, as RESPONSE_SCHEMA wants
_JUDGMENT_JSON = {"response_ids", "flags"}
# spans and critique are not table columns: they live in the value JSON (FEEDBACK_KEYS)
_JUDGMENT_PLAIN = [
    n for n in JUDGMENT_SCHEMA.names if n not in KINDS and n not in FEEDBACK_KEYS
]
_VALUE_FIELD = {"ranking": "groups"}
_FEEDBACK_TYPE = pa.struct([JUDGMENT_SCHEMA.field(k) for k in FEEDBACK_KEYS])


def _feedback_arrays(texts: pl.Series) -> dict[str, pa.Array]:
    """Return the ``spans`` (empty list when absent) and ``critique`` columns of value texts.

    Only values that mention one of the keys are decoded; most judgments have neither.
    """
    n = len(texts)
    spans_type = _FEEDBACK_TYPE.field("spans").type
    mentioned = texts.str.contains('"spans"', literal=True) | texts.str.contains(
        '"critique"', literal=True
    )
    if not mentioned.fill_null(False).any():
        spans: pa.Array = pa.nulls(n, spans_type)
        critique: pa.Array = pa.nulls(n, pa.string())
    else:
        only = texts.zip_with(mentioned.fill_null(False), pl.Series([None] * n, dtype=pl.String))
        # flatten() keeps the rows left out above null in both children
        spans, critique = _decode_json(only.to_list(), _FEEDBACK_TYPE).flatten()
    empty = pa.scalar([], type=spans_type)
    return {"spans": pc.fill_null(spans, empty), "critique": critique}


def _judgment_batch(cols: dict[str, Sequence[Any]]) -> pa.RecordBatch:
    n = len(cols["judgment_id"])
    kinds = pl.Series(list(cols["kind"]), dtype=pl.String)
    texts = pl.Series(list(cols["value"]), dtype=pl.String)
    arrays: dict[str, pa.Array] = {}
    for kind in KINDS:
        arrow_type = JUDGMENT_SCHEMA.field(kind).type
        mask = (kinds == kind).to_list()
        if not any(mask):
            arrays[kind] = pa.nulls(n, arrow_type)
        elif kind == "rating":  # stored as {response_id: {attribute: score}}: keys vary per row
            arrays[kind] = pa.array(
                [
                    value_to_arrow(kind, json.loads(t)) if m else None
                    for t, m in zip(cols["value"], mask, strict=True)
                ],
                type=arrow_type,
            )
        else:
            wrap = _VALUE_FIELD.get(kind)
            target = pa.struct([(wrap, arrow_type)]) if wrap else arrow_type
            only = texts.zip_with(kinds == kind, pl.Series([None] * n, dtype=pl.String))
            decoded = _decode_json(only.to_list(), target)
            arrays[kind] = decoded.field(wrap) if wrap else decoded
    arrays.update(_feedback_arrays(texts))
    out = []
    for f in JUDGMENT_SCHEMA:
        if f.name in KINDS or f.name in FEEDBACK_KEYS:
            out.append(arrays[f.name])
        elif f.name in _JUDGMENT_JSON:
            out.append(_decode_json(cols[f.name], f.type))
        else:
            out.append(pa.array(cols[f.name], type=f.type))
    return pa.RecordBatch.from_arrays(out, schema=JUDGMENT_SCHEMA)


def iter_prompt_batches(
    bind: Engine | Connection, project_id: str | None = None, *, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield the stored prompts (all, or those of ``project_id``) as ``PROMPT_SCHEMA`` batches."""
    names = PROMPT_SCHEMA.names
    stmt = select(*_select(_prompts, names, _PROMPT_JSON)).order_by(_prompts.c.prompt_id)
    if project_id is not None:
        stmt = stmt.where(_prompts.c.prompt_id.in_(_project_prompt_ids(project_id)))
    with reading(bind) as conn:
        yield from _batches(conn, stmt, names, _build(PROMPT_SCHEMA, _PROMPT_JSON), batch_rows)


def iter_response_batches(
    bind: Engine | Connection, project_id: str | None = None, *, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield the stored responses (all, or those to the prompts of ``project_id``)."""
    names = RESPONSE_SCHEMA.names
    stmt = select(*_select(_responses, names, _RESPONSE_JSON)).order_by(_responses.c.response_id)
    if project_id is not None:
        stmt = stmt.where(_responses.c.prompt_id.in_(_project_prompt_ids(project_id)))
    with reading(bind) as conn:
        yield from _batches(conn, stmt, names, _build(RESPONSE_SCHEMA, _RESPONSE_JSON), batch_rows)


def iter_judge_batches(
    bind: Engine | Connection, project_id: str | None = None, *, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield the stored judges (all, or those who judged in ``project_id``)."""
    names = JUDGE_SCHEMA.names
    stmt = select(*_select(_judges, names, ())).order_by(_judges.c.judge_id)
    if project_id is not None:
        in_project = select(_judgments.c.judge_id).where(_judgments.c.project_id == project_id)
        stmt = stmt.where(_judges.c.judge_id.in_(in_project))
    with reading(bind) as conn:
        yield from _batches(conn, stmt, names, _build(JUDGE_SCHEMA, ()), batch_rows)


def iter_judgment_batches(
    bind: Engine | Connection, project_id: str | None = None, *, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield the stored judgments (all, or those of ``project_id``) as ``JUDGMENT_SCHEMA`` batches.

    The ``value`` JSON goes back into the kind's struct column (``pairwise``, ``ranking``,
    ``rating``, ``binary`` or ``edit``); the other kind columns are null. Its ``spans`` and
    ``critique`` keys fill the columns of those names (an empty list and null when absent).
    """
    names = [*_JUDGMENT_PLAIN, "value"]
    json_names = {*_JUDGMENT_JSON, "value"}
    stmt = select(*_select(_judgments, names, json_names)).order_by(_judgments.c.judgment_id)
    if project_id is not None:
        stmt = stmt.where(_judgments.c.project_id == project_id)
    with reading(bind) as conn:
        yield from _batches(conn, stmt, names, _judgment_batch, batch_rows)


def _table(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches(list(batches), schema=schema)


def read_prompts(bind: Engine | Connection, project_id: str | None = None) -> pa.Table:
    """Return the stored prompts as one ``PROMPT_SCHEMA`` table, ordered by id."""
    return _table(iter_prompt_batches(bind, project_id), PROMPT_SCHEMA)


def read_responses(bind: Engine | Connection, project_id: str | None = None) -> pa.Table:
    """Return the stored responses as one ``RESPONSE_SCHEMA`` table, ordered by id."""
    return _table(iter_response_batches(bind, project_id), RESPONSE_SCHEMA)


def read_judges(bind: Engine | Connection, project_id: str | None = None) -> pa.Table:
    """Return the stored judges as one ``JUDGE_SCHEMA`` table, ordered by id."""
    return _table(iter_judge_batches(bind, project_id), JUDGE_SCHEMA)


def read_judgments(bind: Engine | Connection, project_id: str | None = None) -> pa.Table:
    """Return the stored judgments as one ``JUDGMENT_SCHEMA`` table, ordered by id."""
    return _table(iter_judgment_batches(bind, project_id), JUDGMENT_SCHEMA)
