"""Reads the audit needs beyond the records: a project's gold items and its vendor batches.

``preflab.audit`` takes tables, never a session; these two reads turn the workspace's
``items`` (``is_gold``, ``gold_answer``) and ``batches`` tables into Arrow tables it can use.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, or_, select

from preflab.records import BATCH_SCHEMA
from preflab.store.queries.scope import reading
from preflab.store.tables import BatchRow, Item, JudgmentRow

__all__ = ["GOLD_SCHEMA", "read_batches", "read_gold"]

GOLD_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("prompt_id", pa.string()),
        ("response_ids", pa.list_(pa.string())),
        ("batch_id", pa.string()),
        ("preferred", pa.string()),
        ("tie", pa.bool_()),
        ("both_bad", pa.bool_()),
        ("label", pa.bool_()),
        ("answer", pa.string()),
    ]
)
"""One row per gold item: the item's prompt and response ids and its expected answer.

``preferred`` is the expected response (``gold_answer["preferred"]``, or a ranking answer's
``best``); ``tie`` and ``both_bad`` the pairwise alternatives; ``label`` a binary answer;
``answer`` the stored ``gold_answer`` as JSON text (for kinds the columns do not cover).
"""


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):  # a JSON column read back as text by some drivers
        value = json.loads(value)
    return [str(v) for v in value or []]


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}


def read_gold(bind: Engine | Connection, project_id: str) -> pa.Table:
    """Return the gold items of a project with their expected answers (``GOLD_SCHEMA``).

    Items marked gold without an answer are left out (nothing to score against). Rows are
    ordered by ``item_id``.

    Args:
        bind: an engine or an open connection on the workspace.
        project_id: the project's id (not its name).
    """
    stmt = (
        select(Item.item_id, Item.prompt_id, Item.response_ids, Item.batch_id, Item.gold_answer)
        .where(Item.project_id == project_id, Item.is_gold.is_(True))
        .order_by(Item.item_id)
    )
    rows: list[dict[str, Any]] = []
    with reading(bind) as conn:
        for item_id, prompt_id, response_ids, batch_id, answer in conn.execute(stmt):
            ans = _as_dict(answer)
            if not ans:
                continue
            preferred = ans.get("preferred", ans.get("best"))
            label = ans.get("label")
            rows.append(
                {
                    "item_id": item_id,
                    "prompt_id": prompt_id,
                    "response_ids": _as_list(response_ids),
                    "batch_id": batch_id,
                    "preferred": None if preferred is None else str(preferred),
                    "tie": bool(ans.get("tie", False)),
                    "both_bad": bool(ans.get("both_bad", False)),
                    "label": None if label is None else bool(label),
                    "answer": json.dumps(ans, sort_keys=True, ensure_ascii=False),
                }
            )
    return pa.Table.from_pylist(rows, schema=GOLD_SCHEMA)


def read_batches(bind: Engine | Connection, project_id: str) -> pa.Table:
    """Return the batches of a project (``BATCH_SCHEMA``), in delivery order.

    A batch belongs to the project when its ``project_id`` says so or when a judgment or an
    item of the project names it (imported deliveries may leave the batch's project empty).
    Batches never delivered come last; ties are ordered by ``batch_id``.

    Args:
        bind: an engine or an open connection on the workspace.
        project_id: the project's id (not its name).
    """
    named = select(JudgmentRow.batch_id).where(
        JudgmentRow.project_id == project_id, JudgmentRow.batch_id.is_not(None)
    ).union(select(Item.batch_id).where(Item.project_id == project_id, Item.batch_id.is_not(None)))
    cols = [BatchRow.__table__.c[name] for name in BATCH_SCHEMA.names]
    stmt = (
        select(*cols)
        .where(or_(BatchRow.project_id == project_id, BatchRow.batch_id.in_(named)))
        .order_by(BatchRow.delivered_at.is_(None), BatchRow.delivered_at, BatchRow.batch_id)
    )
    with reading(bind) as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    # naive datetimes (SQLite) are UTC, as everywhere in the store
    return pa.Table.from_pylist(rows, schema=BATCH_SCHEMA)
