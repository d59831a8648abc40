"""Arrow schemas of the records and conversion between records and tables.

Bulk paths (imports, exports, audits) build these tables column by column; the helpers here
convert small lists of records for tests and the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from preflab.records.models import (
    Batch,
    GuidelineVersion,
    Judge,
    Judgment,
    Pair,
    Project,
    Prompt,
    Response,
    Unpaired,
)

__all__ = [
    "BATCH_SCHEMA",
    "GUIDELINE_SCHEMA",
    "JUDGE_SCHEMA",
    "JUDGMENT_SCHEMA",
    "MESSAGES_TYPE",
    "PAIR_SCHEMA",
    "PROJECT_SCHEMA",
    "PROMPT_SCHEMA",
    "RESPONSE_SCHEMA",
    "SCHEMAS",
    "SPAN_TYPE",
    "UNPAIRED_SCHEMA",
    "records_to_table",
    "row_to_record",
    "table_to_records",
]

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)
_STR_LIST = pa.list_(pa.string())
_TS = pa.timestamp("us", tz="UTC")

PROMPT_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("messages", MESSAGES_TYPE, nullable=False),
        ("source", pa.string()),
        ("tags", _STR_LIST),
        ("constraints", _STR_LIST),
        ("reference", pa.string()),
    ]
)

RESPONSE_SCHEMA = pa.schema(
    [
        pa.field("response_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("content", pa.string(), nullable=False),
        ("model", pa.string()),
        ("model_revision", pa.string()),
        ("params", pa.string()),  # JSON object: sampling parameters vary by endpoint
        ("origin", pa.string()),
    ]
)

PAIRWISE_TYPE = pa.struct(
    [
        ("scale", pa.int8()),
        ("preferred", pa.string()),
        ("strength", pa.int8()),
        ("tie", pa.bool_()),
        ("both_bad", pa.bool_()),
    ]
)
RATING_TYPE = pa.struct(
    [
        (
            "scores",
            pa.list_(
                pa.struct(
                    [
                        ("response_id", pa.string()),
                        ("attribute", pa.string()),
                        ("score", pa.float64()),
                    ]
                )
            ),
        ),
        ("scale_min", pa.float64()),
        ("scale_max", pa.float64()),
    ]
)
BINARY_TYPE = pa.struct(
    [("response_id", pa.string()), ("label", pa.bool_()), ("reasons", _STR_LIST)]
)
EDIT_TYPE = pa.struct([("original_id", pa.string()), ("edited_id", pa.string())])
#: One flagged span (:class:`~preflab.records.Span`): code-point offsets, end exclusive.
SPAN_TYPE = pa.struct(
    [
        ("response_id", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("label", pa.string()),
        ("text", pa.string()),
    ]
)

JUDGMENT_SCHEMA = pa.schema(
    [
        pa.field("judgment_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("response_ids", _STR_LIST, nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("judge_id", pa.string(), nullable=False),
        ("pairwise", PAIRWISE_TYPE),
        ("ranking", pa.list_(_STR_LIST)),
        ("rating", RATING_TYPE),
        ("binary", BINARY_TYPE),
        ("edit", EDIT_TYPE),
        ("project_id", pa.string()),
        ("guideline_version", pa.int32()),
        ("batch_id", pa.string()),
        ("started_at", _TS),
        ("submitted_at", _TS),
        ("comment", pa.string()),
        ("flags", _STR_LIST),
        ("spans", pa.list_(SPAN_TYPE)),
        ("critique", pa.string()),
        ("idempotency_key", pa.string()),
        ("source", pa.string()),
        ("source_line", pa.int64()),
    ]
)

JUDGE_SCHEMA = pa.schema(
    [
        pa.field("judge_id", pa.string(), nullable=False),
        ("kind", pa.string()),
        ("name", pa.string()),
        ("vendor", pa.string()),
        ("team", pa.string()),
        ("model", pa.string()),
        ("template", pa.string()),
        ("template_version", pa.string()),
    ]
)

GUIDELINE_SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("version", pa.int32()),
        ("text", pa.string()),
        ("created_at", _TS),
        ("author", pa.string()),
    ]
)

BATCH_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("project_id", pa.string()),
        ("vendor", pa.string()),
        ("delivered_at", _TS),
        ("guideline_version", pa.int32()),
        ("status", pa.string()),
    ]
)

PROJECT_SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("scale", pa.int8()),
        ("allow_tie", pa.bool_()),
        ("allow_both_bad", pa.bool_()),
        ("attributes", _STR_LIST),
        ("overlap", pa.int32()),
        ("overlap_share", pa.float64()),
        ("gold_share", pa.float64()),
        ("config", pa.string()),
    ]
)

PAIR_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES_TYPE, nullable=False),
        pa.field("chosen", pa.string(), nullable=False),
        pa.field("rejected", pa.string(), nullable=False),
        ("chosen_id", pa.string()),
        ("rejected_id", pa.string()),
        ("margin", pa.float64()),
        ("agreement", pa.float64()),
        ("split", pa.string()),
        ("rule", pa.string()),
        ("rule_params", pa.string()),
        ("judgment_ids", _STR_LIST),
        ("judge_ids", _STR_LIST),
        ("guideline_version", pa.int32()),
        ("batch_id", pa.string()),
        ("source", pa.string()),
    ]
)

UNPAIRED_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES_TYPE, nullable=False),
        pa.field("completion", pa.string(), nullable=False),
        ("completion_id", pa.string()),
        pa.field("label", pa.bool_(), nullable=False),
        ("split", pa.string()),
        ("rule", pa.string()),
        ("judgment_ids", _STR_LIST),
        ("judge_ids", _STR_LIST),
        ("source", pa.string()),
    ]
)

SCHEMAS: dict[type[BaseModel], pa.Schema] = {
    Prompt: PROMPT_SCHEMA,
    Response: RESPONSE_SCHEMA,
    Judgment: JUDGMENT_SCHEMA,
    Judge: JUDGE_SCHEMA,
    GuidelineVersion: GUIDELINE_SCHEMA,
    Batch: BATCH_SCHEMA,
    Project: PROJECT_SCHEMA,
    Pair: PAIR_SCHEMA,
    Unpaired: UNPAIRED_SCHEMA,
}

_JSON_FIELDS = {"params", "config", "rule_params"}


def _to_row(record: BaseModel) -> dict[str, Any]:
    import json

    row = record.model_dump(mode="python")
    for key in _JSON_FIELDS & row.keys():
        row[key] = json.dumps(row[key], sort_keys=True)
    rating = row.get("rating")
    if isinstance(rating, dict):
        row["rating"] = {
            "scores": [
                {"response_id": rid, "attribute": attr, "score": float(score)}
                for rid, attrs in rating["scores"].items()
                for attr, score in attrs.items()
            ],
            "scale_min": rating["scale_min"],
            "scale_max": rating["scale_max"],
        }
    return row


def _from_row(cls: type[BaseModel], row: dict[str, Any]) -> BaseModel:
    return cls.model_validate(_row_data(cls, row))


def row_to_record(
    cls: type[BaseModel], row: dict[str, Any], *, path: str | None = None, line: int | None = None
) -> Any:
    """Return the record of one Arrow row (``table.to_pylist()`` item) of ``cls``'s schema.

    >>> from preflab.records.models import Response
    >>> row_to_record(Response, {"prompt_id": "p_1", "content": "  "}, path="r.parquet", line=3)
    Traceback (most recent call last):
    ...
    preflab.errors.InputError: r.parquet, line 3, field "content": a response must not be empty (got '  ')

    Raises:
        InputError: the row is not a valid record; the error names ``path``, ``line`` and
            the field.
    """
    from preflab.records.models import validate_record

    return validate_record(cls, _row_data(cls, row), path=path, line=line)


def _row_data(cls: type[BaseModel], row: dict[str, Any]) -> dict[str, Any]:
    import json

    for key in _JSON_FIELDS & row.keys():
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    rating = row.get("rating")
    if isinstance(rating, dict) and isinstance(rating.get("scores"), list):
        scores: dict[str, dict[str, float]] = {}
        for s in rating["scores"]:
            scores.setdefault(s["response_id"], {})[s["attribute"]] = s["score"]
        row["rating"] = {**rating, "scores": scores}
    for key, value in list(row.items()):
        if value is None and key in cls.model_fields and cls.model_fields[key].default is not None:
            default = cls.model_fields[key].get_default(call_default_factory=True)
            row[key] = default
    return row


def records_to_table(records: Sequence[BaseModel] | Iterable[BaseModel], cls: type[BaseModel] | None = None) -> pa.Table:
    """Return an Arrow table of ``records`` with the record type's schema."""
    records = list(records)
    if cls is None:
        if not records:
            raise ValueError("records_to_table needs cls when records is empty")
        cls = type(records[0])
    schema = SCHEMAS[cls]
    return pa.Table.from_pylist([_to_row(r) for r in records], schema=schema)


def table_to_records(table: pa.Table, cls: type[BaseModel]) -> list[Any]:
    """Return the records held by ``table`` (the inverse of :func:`records_to_table`)."""
    return [_from_row(cls, row) for row in table.to_pylist()]
