"""Fixtures for the audit tests: the real HH-RLHF sample and multi-annotator judgment tables.

``crowd`` builds judgments of five annotators with known habits on the real HH-RLHF pairs
(truth = HH's chosen response), so each people/batch check has something it must find:

- ``alice``, ``bob``: careful (92% correct);
- ``carol``: picks the first-shown response 90% of the time (position bias);
- ``dave``: tires: correct 92% for the first 25 judgments of a session, then 55%;
- ``eve``: clicks through in 2–3 seconds, 60% correct;
- batch ``b3`` (delivered last) has everyone 20 points less accurate;
- ``expert`` judged 60 items correctly (gold).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from preflab.records import BATCH_SCHEMA, JUDGMENT_SCHEMA


@pytest.fixture(scope="session")
def hh_chunk() -> Any:
    from preflab.formats.registry import read
    from tests.conftest import HH_SAMPLE_NAME
    from tests.data_catalog import data_file

    return read("hh-rlhf", data_file(HH_SAMPLE_NAME))


@pytest.fixture(scope="session")
def hh_pairs(hh_chunk: Any) -> pl.DataFrame:
    from preflab.audit import pairs_from_judgments

    return pairs_from_judgments(hh_chunk.judgments, hh_chunk.responses, hh_chunk.prompts)


def _judgment(jid: str, prompt_id: str, shown: list[str], preferred: str | None, judge: str, batch: str,
              start: datetime, seconds: float) -> dict[str, Any]:
    return {
        "judgment_id": jid, "prompt_id": prompt_id, "response_ids": shown, "kind": "pairwise",
        "judge_id": judge,
        "pairwise": {"scale": 2, "preferred": preferred, "strength": 1 if preferred else 0,
                     "tie": preferred is None, "both_bad": False},
        "batch_id": batch, "started_at": start, "submitted_at": start + timedelta(seconds=seconds),
    }


@pytest.fixture(scope="session")
def crowd(hh_chunk: Any) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    hh = pl.from_arrow(hh_chunk.judgments)
    items = [
        (r["prompt_id"], r["pairwise"]["preferred"], next(x for x in r["response_ids"] if x != r["pairwise"]["preferred"]))
        for r in hh.head(240).iter_rows(named=True)
    ]
    batches = ["b1", "b2", "b3"]
    base = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    habits = {"alice": 0.92, "bob": 0.92, "carol": None, "dave": "tired", "eve": 0.6}
    for judge, habit in habits.items():
        clock = base
        for k, (pid, good, bad) in enumerate(items):
            batch = batches[k // 80]
            if k % 60 == 0 and k:  # a long break: new session
                clock += timedelta(hours=3)
            pos_in_session = k % 60
            shown = [good, bad] if rng.random() < 0.5 else [bad, good]
            if habit is None:
                pick = shown[0] if rng.random() < 0.9 else shown[1]
            else:
                acc = habit if habit != "tired" else (0.92 if pos_in_session < 25 else 0.55)
                if batch == "b3":
                    acc -= 0.2
                pick = good if rng.random() < acc else bad
            seconds = float(rng.uniform(2, 3)) if judge == "eve" else float(rng.uniform(25, 60))
            rows.append(_judgment(f"{judge}-{k}", pid, shown, pick, judge, batch, clock, seconds))
            clock += timedelta(seconds=seconds + 5)
    gold_rows = []
    for k, (pid, good, bad) in enumerate(items[::4]):
        gold_rows.append(_judgment(f"expert-{k}", pid, [good, bad], good, "expert", batches[(4 * k) // 80],
                                   base - timedelta(days=1), 90.0))
    judgments = pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA)
    gold = pa.Table.from_pylist(gold_rows, schema=JUDGMENT_SCHEMA)
    batch_table = pa.Table.from_pylist(
        [{"batch_id": b, "vendor": "acme", "delivered_at": base + timedelta(days=7 * i), "status": "received"}
         for i, b in enumerate(batches)],
        schema=BATCH_SCHEMA,
    )
    return {"judgments": judgments, "gold": gold, "batches": batch_table, "responses": hh_chunk.responses,
            "prompts": hh_chunk.prompts}
