"""Scorecards per annotator and per vendor batch, and the trend across batches.

One row per judge (or batch) with the figures a lead looks at before accepting work:
agreement with the other judges, gold accuracy, share choosing the first-shown response,
tie share, time per item, too-fast share and the longest same-choice streak.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from preflab.audit.agreement import krippendorff_alpha, pairwise_label_matrix, verdict
from preflab.audit.bias import _proportion

__all__ = ["batch_scorecards", "batch_trend", "gold_summary", "judge_scorecards"]


def _common(group: str, outcomes: pl.DataFrame, fast_limit: float) -> pl.DataFrame:
    return (
        outcomes.group_by(group)
        .agg(
            pl.len().alias("judgments"),
            pl.col("agrees").cast(pl.Float64).mean().alias("consensus_agreement"),
            pl.col("agrees").is_not_null().sum().alias("compared"),
            pl.col("gold_correct").cast(pl.Float64).mean().alias("gold_accuracy"),
            pl.col("gold_correct").is_not_null().sum().alias("gold_items"),
            (pl.col("choice") == "first").sum().alias("first"),
            pl.col("choice").is_in(["first", "second"]).sum().alias("decided"),
            (pl.col("choice") == "tie").mean().alias("tie_share"),
            pl.col("seconds").median().alias("median_seconds"),
            (pl.col("seconds") < fast_limit).cast(pl.Float64).mean().alias("too_fast_share"),
            pl.col("submitted_at").min().alias("first_submitted"),
            pl.col("submitted_at").max().alias("last_submitted"),
        )
        .sort(group, nulls_last=True)
    )


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    pos = _proportion(int(row.pop("first")), int(row.pop("decided")))
    row["first_shown_share"] = pos["share"]
    row["first_shown_p_value"] = pos["p_value"]
    for key in ("first_submitted", "last_submitted"):
        if row.get(key) is not None:
            row[key] = row[key].isoformat()
    flags = []
    if row["consensus_agreement"] is not None and row["compared"] >= 10 and row["consensus_agreement"] < 0.6:
        flags.append("low agreement with others")
    if row["gold_accuracy"] is not None and row["gold_items"] >= 5 and row["gold_accuracy"] < 0.7:
        flags.append("low gold accuracy")
    if pos["p_value"] is not None and pos["p_value"] < 0.01:
        flags.append("position bias")
    if row["too_fast_share"] is not None and row["too_fast_share"] > 0.2:
        flags.append("many too-fast judgments")
    row["flags"] = flags
    return row


def judge_scorecards(
    outcomes: pl.DataFrame, *, streaks: dict[str, Any] | None = None, fast_limit: float = 5.0
) -> list[dict[str, Any]]:
    """Return one scorecard per judge from the outcome frame (and optional streak result)."""
    runs = {j["judge_id"]: j for j in (streaks or {}).get("judges", [])}
    out = []
    for row in _common("judge_id", outcomes, fast_limit).iter_rows(named=True):
        row = _finish(row)
        s = runs.get(row["judge_id"])
        if s:
            row["longest_run"] = s["longest_run"]
            row["longest_choice"] = s["longest_choice"]
            row["flags"] += s["flags"]
        out.append(row)
    return out


def batch_scorecards(
    judgments: pa.Table | pl.DataFrame,
    outcomes: pl.DataFrame,
    *,
    batches: pa.Table | pl.DataFrame | None = None,
    fast_limit: float = 5.0,
) -> list[dict[str, Any]]:
    """Return one scorecard per batch, in delivery order, with alpha inside the batch.

    Judgments without a ``batch_id`` get no card (they count in the judge scorecards).

    Args:
        judgments: the judgments (for Krippendorff's alpha within each batch).
        outcomes: the frame of :func:`judgment_outcomes`.
        batches: optional ``BATCH_SCHEMA`` table (vendor, delivered_at) to label and order.
    """
    df = judgments if isinstance(judgments, pl.DataFrame) else pl.from_arrow(judgments)
    assert isinstance(df, pl.DataFrame)
    if "batch_id" not in df.columns or outcomes["batch_id"].null_count() == outcomes.height:
        return []
    meta: dict[str, dict[str, Any]] = {}
    if batches is not None:
        bdf = batches if isinstance(batches, pl.DataFrame) else pl.from_arrow(batches)
        assert isinstance(bdf, pl.DataFrame)
        meta = {r["batch_id"]: r for r in bdf.iter_rows(named=True)}
    cards = []
    for row in _common("batch_id", outcomes, fast_limit).iter_rows(named=True):
        if row["batch_id"] is None:  # judgments outside any batch: no card, no point on the trend
            continue
        sub = df.filter(pl.col("batch_id") == row["batch_id"])
        m = pairwise_label_matrix(sub)
        multi = (~np.isnan(m.direction)).sum(axis=0) >= 2 if m.items else np.zeros(0, bool)
        alpha = krippendorff_alpha(m.direction[:, multi], "nominal") if multi.sum() >= 2 else float("nan")
        row = _finish(row)
        row["judges"] = len(m.judges)
        row["alpha_nominal"] = None if not np.isfinite(alpha) else alpha
        row["verdict"] = verdict(alpha)
        info = meta.get(row["batch_id"], {})
        row["vendor"] = info.get("vendor")
        row["guideline_version"] = info.get("guideline_version")
        row["status"] = info.get("status")
        delivered = info.get("delivered_at")
        row["delivered_at"] = delivered.isoformat() if delivered is not None else None
        cards.append(row)
    cards.sort(key=lambda r: (r["delivered_at"] or r["first_submitted"] or "", str(r["batch_id"])))
    return cards


def batch_trend(cards: list[dict[str, Any]], *, drop: float = 0.1) -> dict[str, Any]:
    """Return the trend of agreement and gold accuracy across batches in delivery order.

    ``slope``: least-squares change per batch; ``worse``: batches whose figure fell by more
    than ``drop`` from the previous batch.
    """
    out: dict[str, Any] = {"batches": [c["batch_id"] for c in cards]}
    for key in ("consensus_agreement", "gold_accuracy", "alpha_nominal"):
        pts = [(i, c[key]) for i, c in enumerate(cards) if c.get(key) is not None]
        if len(pts) >= 2:
            x, y = np.array(pts, dtype=np.float64).T
            slope = float(np.polyfit(x, y, 1)[0])
        else:
            slope = None
        worse = [
            cards[i]["batch_id"]
            for (_, y0), (i, y) in pairwise(pts)
            if y0 - y > drop
        ]
        out[key] = {"values": [y for _, y in pts], "slope": slope, "worse": worse}
    return out


def gold_summary(outcomes: pl.DataFrame, *, gold_items: int, every: str = "1d") -> dict[str, Any]:
    """Return gold accuracy overall, per judge, per batch and per period.

    Accuracy is the share of judgments on gold items that match the gold answer (pooled over
    judgments, so a judge with more gold judgments weighs more), with a Wilson 95% interval.
    Judgments the gold answers were taken from are not scored (``source_judgments`` counts
    them); with nothing left to score, ``accuracy`` is None and ``gold_judgments`` 0.

    Args:
        outcomes: the frame of :func:`~preflab.audit.outcomes.judgment_outcomes` (with gold).
        gold_items: how many gold answers were given (some may not be judged yet).
        every: the period of ``over_time`` (a Polars duration).
    """
    g = outcomes.filter(pl.col("gold_correct").is_not_null())
    overall = _proportion(int(g["gold_correct"].sum()), g.height)
    sources = int(outcomes["gold_source_judgment"].sum()) if "gold_source_judgment" in outcomes.columns else 0
    out: dict[str, Any] = {
        "gold_items": gold_items,
        "source_judgments": sources,
        "judged_gold_items": int(g["item"].n_unique()) if g.height else 0,
        "gold_judgments": g.height,
        "correct": overall["successes"],
        "accuracy": overall["share"],
        "ci95": overall["ci95"],
    }

    def per(col: str) -> list[dict[str, Any]]:
        agg = (
            g.filter(pl.col(col).is_not_null())
            .group_by(col)
            .agg(
                pl.len().alias("gold_judgments"),
                pl.col("gold_correct").cast(pl.Int64).sum().alias("correct"),
                pl.col("gold_correct").cast(pl.Float64).mean().alias("accuracy"),
            )
            .sort(col)
        )
        return agg.to_dicts()

    out["by_judge"] = per("judge_id")
    out["by_batch"] = per("batch_id")
    t = pl.coalesce("submitted_at", "started_at")
    timed = g.filter(t.is_not_null())
    periods = (
        timed.with_columns(t.dt.truncate(every).alias("period"))
        .group_by("period")
        .agg(pl.len().alias("gold_judgments"), pl.col("gold_correct").cast(pl.Float64).mean().alias("accuracy"))
        .sort("period")
        .with_columns(pl.col("period").dt.to_string("%Y-%m-%d %H:%M"))
    )
    out["over_time"] = {"every": every, "periods": periods.to_dicts()}
    return out
