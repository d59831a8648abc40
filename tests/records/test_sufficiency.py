"""How much is enough: usable pairs against the published rules of thumb (shared/reference/002)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from preflab.records.sufficiency import RULES_OF_THUMB, assess_sufficiency

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "sufficiency.json"


def _pairs(splits, agreement=None):
    return pa.table({"split": splits, "agreement": agreement or [None] * len(splits)})


def test_the_figures_and_quotes_are_the_guides():
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))["preference_data_guide"]
    assert [{"use": r.use, "low": r.low, "high": r.high, "counts": r.counts} for r in RULES_OF_THUMB] == ref["rules"]
    assert all(any(r.quote in q for q in ref["quotes"]) for r in RULES_OF_THUMB)


@pytest.mark.parametrize(("train", "status"), [(499, "below"), (500, "within"), (999, "within"), (1000, "above")])
def test_status_at_the_edges_of_the_narrow_dpo_figure(train, status):
    got = assess_sufficiency(_pairs(["train"] * train))["uses"][0]
    assert (got["have"], got["status"], got["short_by"]) == (train, status, max(0, 500 - train))


def test_eval_and_gold_splits_do_not_count_as_training():
    s = assess_sufficiency(_pairs(["train"] * 7 + ["test"] * 2 + ["validation"] + ["gold"] * 3))
    assert (s["training"], s["held_out"], s["gold"], s["rows"]) == (7, 3, 3, 13)
    assert [u["have"] for u in s["uses"]] == [7, 7, 3]


def test_a_table_without_splits_counts_every_pair_as_training():
    s = assess_sufficiency(pa.table({"x": list(range(6000))}))
    assert [u["status"] for u in s["uses"]] == ["above", "within", "below"]
    assert "Enough training pairs for general-purpose DPO" in s["advice"]


def test_agreement_and_gold_sit_beside_the_counts_and_turn_the_advice_to_cleaning():
    s = assess_sufficiency(_pairs(["train"] * 4, [1.0, 0.5, None, 1.0]),
                           agreement={"name": "alpha", "value": 0.3, "verdict": "poor"},
                           gold_accuracy=0.7, gold_judgments=50)
    assert s["pair_agreement"] == {"multi_judged": 3, "unanimous": 2, "mean": pytest.approx(2.5 / 3)}
    assert s["advice"].startswith("Clean before collecting more: agreement is poor")
    assert "Gold accuracy is 70%" in s["advice"]


def test_unpaired_rows_get_counts_but_no_verdict():
    s = assess_sufficiency(_pairs(["train"] * 800), unit="unpaired rows")
    assert {u["status"] for u in s["uses"]} == {"n/a"} and s["training"] == 800
    assert "count preference pairs" in s["advice"]
