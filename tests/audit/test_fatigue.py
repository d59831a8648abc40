"""People checks on the synthetic crowd: fatigue, streaks, too-fast judgments, gold drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from preflab.audit.fatigue import add_sessions, fatigue, gold_over_time, streaks, too_fast
from preflab.audit.outcomes import gold_from_judgments, judgment_outcomes
from preflab.records import JUDGMENT_SCHEMA


@pytest.fixture(scope="module")
def outcomes(crowd: dict[str, Any]) -> pl.DataFrame:
    return judgment_outcomes(crowd["judgments"], gold_from_judgments(crowd["gold"]))


def test_sessions_break_at_long_pauses(outcomes: pl.DataFrame) -> None:
    df = add_sessions(outcomes)
    per = df.filter(pl.col("judge_id") == "alice")
    assert per["session"].max() == 4  # 240 judgments, a 3-hour break every 60
    assert per["position"].max() == 60


def test_fatigue_shows_the_tired_annotator(outcomes: pl.DataFrame) -> None:
    res = fatigue(outcomes)
    dave = next(r for r in res["by_judge"] if r["judge_id"] == "dave")
    alice = next(r for r in res["by_judge"] if r["judge_id"] == "alice")
    assert dave["agreement_early"] - dave["agreement_late"] > 0.15
    dave_drop = dave["gold_early"] - dave["gold_late"]
    alice_drop = alice["gold_early"] - alice["gold_late"]
    assert dave_drop > 0.2 and dave_drop > alice_drop + 0.15
    assert res["curve"][0]["bucket"] == 1 and res["curve"][0]["judgments"] > 0
    assert res["position_vs_agreement"]["spearman"] < 0


def test_streaks_flag_always_left() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [{"judgment_id": f"j{i}", "prompt_id": f"p{i}", "response_ids": [f"a{i}", f"b{i}"], "kind": "pairwise",
             "judge_id": "lazy", "pairwise": {"scale": 2, "preferred": f"a{i}", "strength": 1, "tie": False, "both_bad": False},
             "started_at": t0 + timedelta(minutes=i), "submitted_at": t0 + timedelta(minutes=i, seconds=30)}
            for i in range(25)]
    res = streaks(judgment_outcomes(pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA)))
    j = res["judges"][0]
    assert j["longest_run"] == 25 and j["longest_choice"] == "first"
    assert "always left" in j["flags"] and res["flagged"] == ["lazy"]


def test_too_fast_finds_the_clicker(outcomes: pl.DataFrame) -> None:
    res = too_fast(outcomes)
    per = {r["judge_id"]: r for r in res["by_judge"]}
    assert per["eve"]["share"] == 1.0 and per["alice"]["share"] == 0.0
    assert res["too_fast"] == 240 and res["limit_seconds"] >= 5.0


def test_gold_accuracy_over_time_is_reported_per_judge(outcomes: pl.DataFrame) -> None:
    res = gold_over_time(outcomes, every="1h")
    assert res["gold_judgments"] == 5 * 60
    assert {p["judge_id"] for p in res["periods"]} == {"alice", "bob", "carol", "dave", "eve"}
    assert all(0 <= p["accuracy"] <= 1 for p in res["periods"])
