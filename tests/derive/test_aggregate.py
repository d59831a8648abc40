"""Several judges on one item: majority, mean strength, Dawid–Skene; agreement kept."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from crowdkit.aggregation import MajorityVote

from preflab.derive.aggregate import Vote, aggregate_dawid_skene, aggregate_majority

# crowd-kit's MajorityVote passes pandas' deprecated ``inplace=`` to DataFrame.eval
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")


@pytest.fixture
def item(tables):
    p = tables.prompt("Which is better?")
    a, b = tables.response(p, "answer A"), tables.response(p, "answer B")
    return tables, p, a, b


def test_majority_picks_the_side_most_judges_chose_and_keeps_agreement(item):
    tables, p, a, b = item
    tables.pairwise(p, a, b, preferred=a, judge="j1")
    tables.pairwise(p, a, b, preferred=a, judge="j2")
    tables.pairwise(p, a, b, preferred=b, judge="j3")
    pairs = tables.derive(aggregate="majority").pairs
    row = pairs.to_pylist()
    assert len(row) == 1
    assert (row[0]["chosen"], row[0]["rule"], row[0]["judge_ids"]) == ("answer A", "pairwise_majority",
                                                                       ["j1", "j2", "j3"])
    assert row[0]["agreement"] == pytest.approx(2 / 3)
    assert row[0]["margin"] == pytest.approx(1 / 3)


def test_majority_split_vote_is_a_tie_never_a_pair(item):
    tables, p, a, b = item
    tables.pairwise(p, a, b, preferred=a, judge="j1")
    tables.pairwise(p, a, b, preferred=b, judge="j2")
    result = tables.derive(aggregate="majority", tie_policy="separate")
    assert (result.pairs.num_rows, result.ties.num_rows) == (0, 1)
    assert result.ties.column("agreement")[0].as_py() == 0.0


def test_mean_strength_lets_one_strong_vote_outweigh_two_weak_ones(item):
    tables, p, a, b = item
    tables.pairwise(p, a, b, preferred=a, scale=7, strength=1, judge="j1")
    tables.pairwise(p, a, b, preferred=a, scale=7, strength=1, judge="j2")
    tables.pairwise(p, a, b, preferred=b, scale=7, strength=3, judge="j3")
    majority = tables.derive(aggregate="majority").pairs
    mean = tables.derive(aggregate="mean_strength").pairs
    assert majority.column("chosen").to_pylist() == ["answer A"]
    assert mean.column("chosen").to_pylist() == ["answer B"]
    # (3/3 - 1/3 - 1/3) / 3 = 1/9
    assert mean.column("margin")[0].as_py() == pytest.approx(1 / 9)
    assert mean.column("agreement")[0].as_py() == pytest.approx(1 / 3)


def test_without_aggregation_each_judgment_is_a_pair_with_item_agreement(item):
    tables, p, a, b = item
    tables.pairwise(p, a, b, preferred=a, judge="j1")
    tables.pairwise(p, a, b, preferred=a, judge="j2")
    tables.pairwise(p, a, b, preferred=b, judge="j3")
    pairs = tables.derive().pairs
    assert sorted(zip(pairs.column("chosen").to_pylist(), pairs.column("agreement").to_pylist(), strict=True)) == [
        ("answer A", pytest.approx(2 / 3)), ("answer A", pytest.approx(2 / 3)), ("answer B", pytest.approx(1 / 3))]


def test_majority_of_both_bad_gives_negatives(item):
    tables, p, a, b = item
    tables.pairwise(p, a, b, both_bad=True, judge="j1")
    tables.pairwise(p, a, b, both_bad=True, judge="j2")
    tables.pairwise(p, a, b, preferred=a, judge="j3")
    result = tables.derive(aggregate="majority")
    assert result.pairs.num_rows == 0
    assert result.unpaired.column("label").to_pylist() == [False, False]
    assert result.unpaired.column("judge_ids")[0].as_py() == ["j1", "j2", "j3"]


def test_dawid_skene_downweights_a_judge_who_always_disagrees(tables):
    """Three reliable judges and one contrarian on 8 items; one item has only the contrarian
    and one reliable judge. Majority cannot decide it; Dawid–Skene follows the reliable one."""
    p = tables.prompt("shared prompt")
    items = []
    for k in range(8):
        a, b = tables.response(p, f"good {k}"), tables.response(p, f"bad {k}")
        items.append((a, b))
        for judge in ("r1", "r2", "r3"):
            tables.pairwise(p, a, b, preferred=a, judge=judge)
        tables.pairwise(p, a, b, preferred=b, judge="contrarian")
    a, b = tables.response(p, "good X"), tables.response(p, "bad X")
    tables.pairwise(p, a, b, preferred=a, judge="r1")
    tables.pairwise(p, a, b, preferred=b, judge="contrarian")
    ds = tables.derive(aggregate="dawid_skene").pairs
    chosen = set(ds.column("chosen").to_pylist())
    assert chosen == {f"good {k}" for k in range(8)} | {"good X"}
    assert set(ds.column("rule").to_pylist()) == {"pairwise_dawid_skene"}
    majority = tables.derive(aggregate="majority").pairs
    assert "good X" not in set(majority.column("chosen").to_pylist())


def test_majority_matches_crowd_kit_majority_vote_on_random_votes():
    rng = random.Random(7)
    votes = []
    for t in range(200):
        for w in range(rng.choice([3, 5])):
            votes.append(Vote(("p", f"a{t}", f"b{t}"), f"w{w}", f"j{t}-{w}", rng.choice("ab"), 1.0))
    by_item = {}
    for v in votes:
        by_item.setdefault(v.item, []).append(v)
    frame = pd.DataFrame({"task": [v.item[1] for v in votes], "worker": [v.judge_id for v in votes],
                          "label": [v.label for v in votes]})
    theirs = MajorityVote().fit_predict(frame)
    for key, vs in by_item.items():
        assert aggregate_majority(vs).label == theirs[key[1]]


def test_dawid_skene_outcomes_cover_every_item_with_agreement_in_unit_interval():
    rng = random.Random(3)
    votes = [Vote(("p", f"a{t}", f"b{t}"), f"w{w}", f"j{t}{w}", rng.choice(["a", "b", "tie"]), 1.0)
             for t in range(30) for w in range(3)]
    out = aggregate_dawid_skene(votes)
    assert len(out) == 30
    assert all(0.0 <= o.agreement <= 1.0 for o in out.values())


def test_dawid_skene_without_crowd_kit_is_a_dependency_error(item, monkeypatch):
    import sys

    from preflab.errors import DependencyError

    tables, p, a, b = item
    tables.pairwise(p, a, b, preferred=a, judge="j1")
    monkeypatch.setitem(sys.modules, "crowdkit.aggregation", None)  # as if the extra were missing
    with pytest.raises(DependencyError) as info:
        tables.derive(aggregate="dawid_skene")
    assert "preflab[crowd]" in str(info.value) and "majority" in str(info.value)


def test_ratings_of_several_judges_are_averaged_with_agreement(tables):
    p = tables.prompt("Q")
    a, b = tables.response(p, "answer A"), tables.response(p, "answer B")
    tables.rating(p, [(a, 4), (b, 1)], judge="j1")
    tables.rating(p, [(a, 2), (b, 3)], judge="j2")
    pairs = tables.derive(aggregate="mean_strength", rating_rule="best_vs_worst").pairs.to_pylist()
    assert [(r["chosen"], r["margin"], r["agreement"], r["judge_ids"]) for r in pairs] == [
        ("answer A", 1.0, 0.5, ["j1", "j2"])]
