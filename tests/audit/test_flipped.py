"""Likely-flipped labels: planted flips are found, a clean control flags few, the score is DS."""

from __future__ import annotations

import warnings

import polars as pl
import pyarrow as pa
import pytest
from lxml import html
from tests.flip_data import (
    AI_JUDGE,
    crowd_with_ai,
    flip_judgments,
    flip_pairs,
    majority_pairs,
    wrong_labels,
)

from preflab.audit.flipped import drop_likely_flipped, flip_scores, likely_flipped
from preflab.audit.report import render_html
from preflab.audit.suite import audit_dataset
from preflab.errors import UsageError


def _judgment(jid, judge, preferred, *, flags=(), prompt="p", ids=("r1", "r2")):
    return {
        "judgment_id": jid,
        "prompt_id": prompt,
        "response_ids": list(ids),
        "kind": "pairwise",
        "judge_id": judge,
        "flags": list(flags),
        "pairwise": {
            "scale": 2,
            "preferred": preferred,
            "strength": 1,
            "tie": preferred is None,
            "both_bad": False,
        },
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_pair_flips_fill_the_top_of_the_ranking(seed):
    crowd = crowd_with_ai(seed)
    pairs, planted = flip_pairs(majority_pairs(crowd), k=25, seed=100 + seed)
    scores, info = flip_scores(crowd.judgments, pairs)
    top = scores.head(len(planted))["prompt_id"].to_list()
    # measured 0.80–0.84 on seeds 0–2: a planted flip on an item whose only annotator was wrong
    # looks right to the evidence, and natural errors compete for the top places
    assert sum(p in planted for p in top) / len(planted) >= 0.75
    assert sum(p in wrong_labels(scores, crowd.truth) for p in top) / len(top) >= 0.9
    assert info["scored"] == pairs.height


@pytest.mark.parametrize("seed", [0, 1])
def test_top_of_the_ranking_is_mostly_truly_wrong_labels(seed):
    crowd, _ = flip_judgments(crowd_with_ai(seed), k=20, seed=seed)
    scores, _ = flip_scores(crowd.judgments)
    wrong = wrong_labels(scores, crowd.truth)
    top = scores.head(20)["prompt_id"].to_list()
    # measured 0.75–0.90 on seeds 0–2; chance is len(wrong) / n, 0.16–0.19
    assert sum(p in wrong for p in top) / 20 >= 0.7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_control_flags_few(seed):
    crowd = crowd_with_ai(seed, accuracies=(0.97, 0.96, 0.95, 0.95, 0.94), ai_accuracy=0.9)
    scores, info = flip_scores(crowd.judgments)
    assert info["scored"] == 400
    assert info["flagged"] <= 0.03 * info["scored"]  # measured 0, 7 and 10 of 400
    assert info["flagged"] <= len(wrong_labels(scores, crowd.truth))
    assert info["confident_learning_issues"] is not None


def test_score_is_one_minus_the_dawid_skene_posterior_of_the_chosen_response():
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    crowd = crowd_with_ai(3, n=120)
    scores, _ = flip_scores(crowd.judgments)
    j = pl.from_arrow(crowd.judgments)
    pref = pl.col("pairwise").struct.field("preferred")
    votes = j.filter(pref.is_not_null()).select(
        "prompt_id",
        "judge_id",
        pref.alias("pref"),
        pl.col("response_ids").list.sort().list.get(0).alias("first"),
    )
    frame = pd.DataFrame(
        {
            "task": votes["prompt_id"].to_list(),
            "worker": votes["judge_id"].to_list(),
            "label": [
                0 if a == f else 1 for a, f in zip(votes["pref"], votes["first"], strict=True)
            ],
        }
    )
    with warnings.catch_warnings():  # crowd-kit's pandas deprecation warnings
        warnings.simplefilter("ignore")
        probas = DawidSkene(n_iter=100).fit_predict_proba(frame)
    for row in scores.head(30).iter_rows(named=True):
        first = min(row["chosen_id"], row["rejected_id"])
        p_chosen = probas.loc[row["prompt_id"], 0 if row["chosen_id"] == first else 1]
        assert row["flip_score"] == pytest.approx(1 - p_chosen, abs=1e-9)


def test_ai_votes_count_only_when_consistent_in_both_orders():
    rows = [
        _judgment("a", "ann", "r1"),
        _judgment("b", "bob", "r1"),
        _judgment("c", "ai:x", "r2", flags=["both_orders"]),
        _judgment("d", "ai:y", None, flags=["both_orders", "position_inconsistent"]),
        _judgment("e", "ai:z", "r2"),  # one order only
        _judgment("f", "cat", None),
    ]
    _, info = flip_scores(pa.Table.from_pylist(rows))
    assert {
        "ai_position_inconsistent": 1,
        "ai_single_order": 1,
        "human_tie_or_both_bad": 1,
    } == info["skipped"]
    assert (2, 1) == (info["human_votes"], info["ai_votes"])


def test_a_gold_answer_decides_its_item():
    rows = [_judgment("a", "ann", "r1"), _judgment("b", "bob", "r1"), _judgment("c", "cat", "r2")]
    scores, _ = flip_scores(pa.Table.from_pylist(rows), gold={"p|r1|r2": -1.0})
    row = scores.row(0, named=True)
    assert ("r1", 1.0, "disagrees", True) == (
        row["chosen_id"],
        row["flip_score"],
        row["gold"],
        row["flagged"],
    )


def test_one_vote_per_item_without_ai_or_gold_is_not_scored():
    rows = [
        _judgment(f"j{i}", "ann", f"a{i}", prompt=f"p{i}", ids=(f"a{i}", f"b{i}")) for i in range(5)
    ]
    section = likely_flipped(pa.Table.from_pylist(rows))
    assert 0 == section["scored"]
    assert "nothing to compare" in section["skipped_reason"]


def test_a_threshold_outside_zero_one_is_refused():
    with pytest.raises(UsageError, match="flip threshold"):
        flip_scores(pa.Table.from_pylist([_judgment("a", "ann", "r1")]), threshold=1.5)


def test_drop_likely_flipped_drops_exactly_the_flagged_pairs():
    crowd = crowd_with_ai(4, n=200)
    pairs, _ = flip_pairs(majority_pairs(crowd), k=15, seed=7)
    table = pairs.with_columns(pl.lit("text").alias("chosen")).to_arrow()
    kept, dropped, _ = drop_likely_flipped(table, crowd.judgments)
    scores, info = flip_scores(crowd.judgments, pairs)
    flagged = set(scores.filter(pl.col("flagged"))["prompt_id"].to_list())
    assert info["flagged"] == dropped == len(flagged) > 0
    assert table.num_rows - dropped == kept.num_rows
    assert set(kept.column("prompt_id").to_pylist()) == set(pairs["prompt_id"].to_list()) - flagged
    assert kept.column_names == table.column_names


def test_audit_reports_the_likely_flipped_pairs_with_links():
    crowd = crowd_with_ai(5, n=200)
    pairs, planted = flip_pairs(majority_pairs(crowd), k=10, seed=3)
    texts = pairs.with_columns(
        pl.format("A good answer to {}.", "prompt_id").alias("chosen"),
        pl.format("Another reply, {}", "rejected_id").alias("rejected"),
    )
    report = audit_dataset(texts, crowd.judgments, include_agreement=False)
    finding = next(f for f in report["findings"] if f["id"] == "likely_flipped")
    section = report["sections"]["flipped"]
    assert "warn" == finding["severity"]
    assert (
        f"{section['flagged']} of {section['scored']} distinct pairs" in finding["text"]
    )
    shown = {pairs["prompt_id"][r] for r in finding["examples"]}
    assert len(shown & planted) >= len(shown) // 2
    doc = html.fromstring(render_html(report, texts))
    assert doc.cssselect("h2#flipped")
    cells = [td.text_content() for td in doc.cssselect("h2#flipped ~ table")[0].cssselect("td")]
    assert section["top"][0]["prompt_id"] in cells
    assert doc.cssselect(f"#pair-{finding['examples'][0]}")


def test_ai_judges_are_listed_with_their_reliability():
    crowd = crowd_with_ai(6, n=200)
    _, info = flip_scores(crowd.judgments)
    judges = {j["judge_id"]: j for j in info["judges"]}
    assert "ai" == judges[AI_JUDGE]["kind"]
    # ann4 is the 62% annotator: the least reliable by Dawid–Skene
    assert (
        "ann4"
        == min((j for j in info["judges"] if j["kind"] == "human"), key=lambda j: j["ds_accuracy"])[
            "judge_id"
        ]
    )


def test_without_cleanlab_the_same_score_comes_from_numpy_and_says_how_to_install():
    import json
    import subprocess
    import sys

    # cleanlab made unimportable in a fresh interpreter: the core install's path
    script = (
        "import json, sys\n"
        "for m in ('cleanlab', 'cleanlab.filter', 'cleanlab.rank'): sys.modules[m] = None\n"
        "from preflab.audit.flipped import flip_scores\n"
        "from tests.flip_data import crowd_with_ai\n"
        "s, info = flip_scores(crowd_with_ai(2, n=150).judgments)\n"
        "print(json.dumps({'scores': s['flip_score'].to_list(), 'items': s['item'].to_list(),\n"
        "                  'cl': s['confident_learning'].to_list(), 'info': info}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                          timeout=300)
    assert 0 == proc.returncode, proc.stderr
    bare = json.loads(proc.stdout)
    scores, info = flip_scores(crowd_with_ai(2, n=150).judgments)
    assert (True, False) == (info["cleanlab"], bare["info"]["cleanlab"])
    assert None is bare["info"]["confident_learning_issues"]
    assert set(bare["cl"]) == {None}
    assert "pip install 'preflab[clean]'" in bare["info"]["method"]
    assert scores["item"].to_list() == bare["items"]
    assert scores["flip_score"].to_list() == pytest.approx(bare["scores"], abs=1e-12)
