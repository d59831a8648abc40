"""Synthetic preference data with known truth for the likely-flipped tests.

``crowd_with_ai`` makes ``n`` items (a prompt, two responses, a true preference), judged by
annotators of known accuracy (each item by one annotator, or by three for an ``overlap``
share), and by one AI judge in both orders (``ai_accuracy`` correct when consistent; 10% of
items position-inconsistent, stored as flagged ties). ``flip_judgments`` plants flipped labels
in single-annotator items; ``flip_pairs`` swaps chosen and rejected of planted pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from preflab.records import JUDGMENT_SCHEMA, PROMPT_SCHEMA, RESPONSE_SCHEMA

AI_JUDGE = "ai:judge-model:pairwise@1"


@dataclass
class Crowd:
    judgments: pa.Table
    truth: dict[str, str]  # prompt_id → the truly better response
    prompts: pa.Table
    responses: pa.Table


def _judgment(
    jid: str, prompt: str, shown: list[str], judge: str, preferred: str | None, flags: list[str]
) -> dict[str, Any]:
    return {
        "judgment_id": jid,
        "prompt_id": prompt,
        "response_ids": shown,
        "kind": "pairwise",
        "judge_id": judge,
        "flags": flags,
        "pairwise": {
            "scale": 2,
            "preferred": preferred,
            "strength": 0 if preferred is None else 1,
            "tie": preferred is None,
            "both_bad": False,
        },
    }


def crowd_with_ai(
    seed: int = 0,
    *,
    n: int = 400,
    accuracies: tuple[float, ...] = (0.95, 0.92, 0.9, 0.88, 0.62),
    ai_accuracy: float = 0.85,
    overlap: float = 0.3,
) -> Crowd:
    rng = np.random.default_rng(seed)
    rows, truth, prompts, responses = [], {}, [], []
    for i in range(n):
        p = f"p{i:04d}"
        a, b = f"r{i:04d}a", f"r{i:04d}b"
        good = a if rng.random() < 0.5 else b
        bad = b if good == a else a
        truth[p] = good
        prompts.append(
            {
                "prompt_id": p,
                "messages": [{"role": "user", "content": f"Question {i}?"}],
                "source": "synthetic",
                "tags": [],
            }
        )
        responses += [
            {
                "response_id": r,
                "prompt_id": p,
                "content": f"Answer {r}",
                "model": "m",
                "origin": "model",
            }
            for r in (a, b)
        ]
        judges = rng.choice(len(accuracies), 3 if rng.random() < overlap else 1, replace=False)
        for j in judges:
            pref = good if rng.random() < accuracies[j] else bad
            shown = [a, b] if rng.random() < 0.5 else [b, a]
            rows.append(_judgment(f"j{i:04d}-{j}", p, shown, f"ann{j}", pref, []))
        if rng.random() < 0.1:
            rows.append(
                _judgment(
                    f"ai{i:04d}",
                    p,
                    [a, b],
                    AI_JUDGE,
                    None,
                    ["both_orders", "position_inconsistent"],
                )
            )
        else:
            pref = good if rng.random() < ai_accuracy else bad
            rows.append(_judgment(f"ai{i:04d}", p, [a, b], AI_JUDGE, pref, ["both_orders"]))
    return Crowd(
        pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA),
        truth,
        pa.Table.from_pylist(prompts, schema=PROMPT_SCHEMA),
        pa.Table.from_pylist(responses, schema=RESPONSE_SCHEMA),
    )


def majority_pairs(crowd: Crowd) -> pl.DataFrame:
    """Return one pair per item: the majority of its human judgments (items with a tie left out)."""
    j = pl.from_arrow(crowd.judgments)
    assert isinstance(j, pl.DataFrame)
    h = j.filter(~pl.col("judge_id").str.starts_with("ai:")).with_columns(
        pl.col("pairwise").struct.field("preferred").alias("chosen_id")
    )
    votes = h.group_by("prompt_id", "chosen_id").agg(pl.len().alias("n"))
    best = (
        votes.sort(["prompt_id", "n", "chosen_id"], descending=[False, True, False])
        .group_by("prompt_id", maintain_order=True)
        .first()
    )
    ids = pl.col("prompt_id").str.slice(1)
    return best.select(
        "prompt_id",
        "chosen_id",
        pl.when(pl.col("chosen_id").str.ends_with("a"))
        .then(pl.lit("r") + ids + "b")
        .otherwise(pl.lit("r") + ids + "a")
        .alias("rejected_id"),
    ).sort("prompt_id")


def flip_judgments(crowd: Crowd, k: int, seed: int = 1) -> tuple[Crowd, set[str]]:
    """Return the crowd with ``k`` correct single-annotator labels flipped, and their prompt ids."""
    rng = np.random.default_rng(seed)
    rows = crowd.judgments.to_pylist()
    humans: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if not r["judge_id"].startswith("ai:"):
            humans.setdefault(r["prompt_id"], []).append(i)
    single = [
        ix[0]
        for p, ix in humans.items()
        if len(ix) == 1 and rows[ix[0]]["pairwise"]["preferred"] == crowd.truth[p]
    ]
    planted = set()
    for i in rng.choice(single, k, replace=False):
        r = rows[int(i)]
        shown = r["response_ids"]
        r["pairwise"]["preferred"] = (
            shown[0] if r["pairwise"]["preferred"] == shown[1] else shown[1]
        )
        planted.add(r["prompt_id"])
    return Crowd(
        pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA),
        crowd.truth,
        crowd.prompts,
        crowd.responses,
    ), planted


def flip_pairs(pairs: pl.DataFrame, k: int, seed: int = 1) -> tuple[pl.DataFrame, set[str]]:
    """Return ``pairs`` with chosen and rejected swapped in ``k`` random rows, and those prompts."""
    rng = np.random.default_rng(seed)
    picked = set(rng.choice(pairs.height, k, replace=False).tolist())
    swap = pl.Series([i in picked for i in range(pairs.height)])
    out = pairs.with_columns(
        pl.when(swap).then(pl.col("rejected_id")).otherwise(pl.col("chosen_id")).alias("chosen_id"),
        pl.when(swap)
        .then(pl.col("chosen_id"))
        .otherwise(pl.col("rejected_id"))
        .alias("rejected_id"),
    )
    return out, set(out.filter(swap)["prompt_id"].to_list())


def wrong_labels(scores: pl.DataFrame, truth: dict[str, str]) -> set[str]:
    """Return the prompt ids whose scored label is not the true preference."""
    return {
        p
        for p, c in zip(scores["prompt_id"].to_list(), scores["chosen_id"].to_list(), strict=True)
        if truth[p] != c
    }
