"""Scorecards per annotator and batch, and the trend across batches."""

from __future__ import annotations

from typing import Any

from preflab.audit.fatigue import streaks
from preflab.audit.outcomes import gold_from_judgments, judgment_outcomes
from preflab.audit.scorecards import batch_scorecards, batch_trend, judge_scorecards


def test_judge_scorecards_flag_each_bad_habit(crowd: dict[str, Any]) -> None:
    out = judgment_outcomes(crowd["judgments"], gold_from_judgments(crowd["gold"]))
    cards = {c["judge_id"]: c for c in judge_scorecards(out, streaks=streaks(out))}
    assert cards["alice"]["flags"] == []
    assert "position bias" in cards["carol"]["flags"]
    assert "many too-fast judgments" in cards["eve"]["flags"]
    assert cards["alice"]["gold_items"] == 60
    assert cards["alice"]["gold_accuracy"] > cards["eve"]["gold_accuracy"]


def test_batch_cards_follow_delivery_and_the_trend_sees_the_bad_batch(crowd: dict[str, Any]) -> None:
    out = judgment_outcomes(crowd["judgments"], gold_from_judgments(crowd["gold"]))
    cards = batch_scorecards(crowd["judgments"], out, batches=crowd["batches"])
    assert [c["batch_id"] for c in cards] == ["b1", "b2", "b3"]
    assert cards[0]["vendor"] == "acme" and cards[0]["judges"] == 5
    assert cards[2]["gold_accuracy"] < cards[0]["gold_accuracy"] - 0.1
    trend = batch_trend(cards)
    assert trend["gold_accuracy"]["slope"] < 0
    assert trend["consensus_agreement"]["worse"] == ["b3"]
