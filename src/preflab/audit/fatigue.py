"""People checks over time: fatigue within sessions, streaks, too-fast judgments, gold drift.

Work on the frame of :func:`preflab.audit.outcomes.judgment_outcomes`. Annotation fatigue
("quality degrades over long annotation sessions", shared/reference/003) shows as time per
item and agreement changing with the position of the judgment in its session.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from scipy.stats import spearmanr

__all__ = ["add_sessions", "fatigue", "gold_over_time", "streaks", "too_fast"]

SESSION_GAP_MINUTES = 30.0
"""A pause longer than this starts a new session (a common web-analytics convention)."""


def add_sessions(outcomes: pl.DataFrame, gap_minutes: float = SESSION_GAP_MINUTES) -> pl.DataFrame:
    """Return ``outcomes`` with ``session`` (per judge, from 1) and ``position`` (from 1).

    A session breaks when the judge's previous judgment was submitted more than
    ``gap_minutes`` before this one started. Judgments without times are one session.
    """
    start = pl.coalesce("started_at", "submitted_at")
    end = pl.coalesce("submitted_at", "started_at")
    df = outcomes.sort(["judge_id", "started_at", "submitted_at", "_row"], nulls_last=True)
    gap = (start - end.shift(1).over("judge_id")).dt.total_seconds() / 60.0
    df = df.with_columns(
        (gap.fill_null(0.0) > gap_minutes).cast(pl.Int64).cum_sum().over("judge_id").alias("session")
    ).with_columns(
        (pl.col("session") + 1).alias("session"),
    )
    return df.with_columns(pl.int_range(1, pl.len() + 1).over(["judge_id", "session"]).alias("position"))


def _bucket(position: pl.Expr, width: int) -> pl.Expr:
    return ((position - 1) // width) * width + 1


def fatigue(
    outcomes: pl.DataFrame, *, bucket: int = 10, max_buckets: int = 12, gap_minutes: float = SESSION_GAP_MINUTES
) -> dict[str, Any]:
    """Return time per item and agreement against position in the session.

    Args:
        outcomes: the frame of :func:`judgment_outcomes`.
        bucket: positions per curve point (1–10, 11–20, …).
        max_buckets: later positions are folded into the last point.

    Returns:
        ``curve`` (per bucket: judgments, median seconds, agreement with others, gold
        accuracy), Spearman correlations of position with seconds and with agreement, and
        ``by_judge`` (agreement, gold accuracy and time in the first vs. the second half of
        their sessions).
    """
    df = add_sessions(outcomes, gap_minutes)
    cap = bucket * (max_buckets - 1) + 1
    df = df.with_columns(pl.min_horizontal(_bucket(pl.col("position"), bucket), pl.lit(cap)).alias("bucket"))
    curve = (
        df.group_by("bucket")
        .agg(
            pl.len().alias("judgments"),
            pl.col("seconds").median().alias("median_seconds"),
            pl.col("agrees").cast(pl.Float64).mean().alias("agreement"),
            pl.col("gold_correct").cast(pl.Float64).mean().alias("gold_accuracy"),
        )
        .sort("bucket")
    )
    out: dict[str, Any] = {
        "sessions": int(df.select(pl.struct("judge_id", "session").n_unique()).item()),
        "median_session_length": float(
            df.group_by("judge_id", "session").len()["len"].cast(pl.Float64).median() or 0  # type: ignore[arg-type]
        ),
        "curve": curve.to_dicts(),
    }
    for name, col in (("seconds", "seconds"), ("agreement", "agrees")):
        sub = df.filter(pl.col(col).is_not_null())
        if sub.height >= 10 and sub[col].cast(pl.Float64).n_unique() > 1:
            rho, p = spearmanr(sub["position"].to_numpy(), sub[col].cast(pl.Float64).to_numpy())
            out[f"position_vs_{name}"] = {"spearman": float(rho), "p_value": float(p), "n": sub.height}
        else:
            out[f"position_vs_{name}"] = None
    half = df.with_columns(
        (pl.col("position") > pl.col("position").max().over(["judge_id", "session"]) / 2).alias("late")
    )
    by_judge = (
        half.group_by("judge_id")
        .agg(
            pl.col("agrees").filter(~pl.col("late")).cast(pl.Float64).mean().alias("agreement_early"),
            pl.col("agrees").filter(pl.col("late")).cast(pl.Float64).mean().alias("agreement_late"),
            pl.col("gold_correct").filter(~pl.col("late")).cast(pl.Float64).mean().alias("gold_early"),
            pl.col("gold_correct").filter(pl.col("late")).cast(pl.Float64).mean().alias("gold_late"),
            pl.col("seconds").filter(~pl.col("late")).median().alias("seconds_early"),
            pl.col("seconds").filter(pl.col("late")).median().alias("seconds_late"),
        )
        .sort("judge_id")
    )
    out["by_judge"] = by_judge.to_dicts()
    return out


def streaks(outcomes: pl.DataFrame, *, run: int = 10, always_share: float = 0.9, min_judgments: int = 20) -> dict[str, Any]:
    """Return per judge the longest run of the same choice and "always X" habits.

    A judge is flagged when they give the same choice (first shown, second shown, tie)
    ``run`` times in a row, or one choice in ≥ ``always_share`` of ≥ ``min_judgments``
    judgments ("always left", "always tie").
    """
    df = outcomes.sort(["judge_id", "started_at", "submitted_at", "_row"], nulls_last=True)
    df = df.with_columns(
        (pl.col("choice") != pl.col("choice").shift(1).over("judge_id")).fill_null(True).cum_sum().over("judge_id").alias("_run")
    )
    runs = df.group_by("judge_id", "_run").agg(pl.col("choice").first(), pl.len().alias("length"))
    longest = (
        runs.sort("length", descending=True)
        .group_by("judge_id", maintain_order=True)
        .agg(pl.col("choice").first().alias("longest_choice"), pl.col("length").first().alias("longest_run"))
    )
    shares = (
        df.group_by("judge_id")
        .agg(
            pl.len().alias("judgments"),
            (pl.col("choice") == "first").mean().alias("share_first"),
            (pl.col("choice") == "second").mean().alias("share_second"),
            (pl.col("choice") == "tie").mean().alias("share_tie"),
        )
        .join(longest, on="judge_id")
        .sort("judge_id")
    )
    judges = []
    for row in shares.iter_rows(named=True):
        flags = []
        if row["longest_run"] >= run:
            flags.append(f"{row['longest_run']} × {row['longest_choice']} in a row")
        if row["judgments"] >= min_judgments:
            for choice, label in (("first", "always left"), ("second", "always right"), ("tie", "always tie")):
                if row[f"share_{choice}"] >= always_share:
                    flags.append(label)
        row["flags"] = flags
        judges.append(row)
    return {"run_threshold": run, "judges": judges, "flagged": [j["judge_id"] for j in judges if j["flags"]]}


def too_fast(outcomes: pl.DataFrame, *, min_seconds: float = 5.0, relative: float = 0.25) -> dict[str, Any]:
    """Return judgments faster than ``min_seconds`` or than ``relative`` × the median time.

    Reading two responses takes longer than a few seconds; a judgment far below everyone's
    median is a click, not a judgment.
    """
    timed = outcomes.filter(pl.col("seconds").is_not_null())
    if timed.height == 0:
        return {"timed": 0, "too_fast": 0, "share": None, "by_judge": [], "examples": []}
    median = float(timed["seconds"].median() or 0.0)  # type: ignore[arg-type]
    limit = max(min_seconds, relative * median) if relative else min_seconds
    flagged = timed.with_columns((pl.col("seconds") < limit).alias("fast"))
    by_judge = (
        flagged.group_by("judge_id")
        .agg(pl.len().alias("timed"), pl.col("fast").sum().alias("too_fast"), pl.col("fast").mean().alias("share"))
        .sort("share", descending=True)
    )
    fast = flagged.filter(pl.col("fast"))
    return {
        "timed": timed.height,
        "median_seconds": median,
        "limit_seconds": limit,
        "too_fast": fast.height,
        "share": fast.height / timed.height,
        "by_judge": by_judge.to_dicts(),
        "examples": fast.select("judgment_id", "judge_id", "seconds").head(20).to_dicts(),
    }


def gold_over_time(outcomes: pl.DataFrame, *, every: str = "1d") -> dict[str, Any]:
    """Return gold accuracy per judge per period (``every``: a Polars duration, e.g. ``1d``)."""
    gold = outcomes.filter(pl.col("gold_correct").is_not_null())
    if gold.height == 0:
        return {"gold_judgments": 0, "periods": []}
    t = pl.coalesce("submitted_at", "started_at")
    timed = gold.filter(t.is_not_null())
    if timed.height == 0:
        return {"gold_judgments": gold.height, "periods": []}
    per = (
        timed.with_columns(t.dt.truncate(every).alias("period"))
        .group_by("judge_id", "period")
        .agg(pl.len().alias("gold_judgments"), pl.col("gold_correct").cast(pl.Float64).mean().alias("accuracy"))
        .sort("judge_id", "period")
    )
    rows = per.with_columns(pl.col("period").dt.to_string("%Y-%m-%d %H:%M")).to_dicts()
    trend = []
    for judge, grp in per.group_by("judge_id"):
        acc = grp.sort("period")["accuracy"].to_numpy()
        if len(acc) >= 2:
            trend.append({"judge_id": judge[0], "first": float(acc[0]), "last": float(acc[-1]),
                          "change": float(acc[-1] - acc[0])})
    return {"gold_judgments": gold.height, "every": every, "periods": rows,
            "trend": sorted(trend, key=lambda r: r["change"])}
