"""Hypothesis properties of derivation: never a pair with itself; ties never become pairs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.records import normalize_text

# crowd-kit (dawid_skene) passes keywords pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The (inplace|copy) keyword")

TEXTS = ["yes", "no", "Yes", " yes ", "maybe", "I think so.", "no way"]
judgment = st.fixed_dictionaries({
    "prompt": st.integers(0, 2),
    "a": st.sampled_from(TEXTS),
    "b": st.sampled_from(TEXTS),
    "judge": st.sampled_from(["j1", "j2", "j3"]),
    "outcome": st.sampled_from(["a", "b", "tie", "both_bad"]),
    "scale": st.sampled_from([2, 5, 7, 8]),
    "strength": st.integers(1, 4),
})


def build(tables, specs):
    prompts = [tables.prompt(f"prompt {k}") for k in range(3)]
    ties = []
    for s in specs:
        p = prompts[s["prompt"]]
        a, b = tables.response(p, s["a"], model="m1"), tables.response(p, s["b"], model="m2")
        strength = min(s["strength"], s["scale"] // 2)
        if s["outcome"] == "tie":
            ties.append(tables.pairwise(p, a, b, tie=True, judge=s["judge"]).judgment_id)
        elif s["outcome"] == "both_bad":
            tables.pairwise(p, a, b, both_bad=True, judge=s["judge"])
        else:
            winner = a if s["outcome"] == "a" else b
            tables.pairwise(p, a, b, preferred=winner, scale=s["scale"], strength=strength, judge=s["judge"])
    return ties


@given(specs=st.lists(judgment, max_size=25), aggregate=st.sampled_from(["none", "majority", "mean_strength"]))
@settings(max_examples=80, deadline=None)
def test_a_pair_never_has_chosen_equal_to_rejected(specs, aggregate):
    from tests.derive.conftest import Tables

    tables = Tables()
    build(tables, specs)
    pairs = tables.derive(aggregate=aggregate).pairs.to_pylist()
    for row in pairs:
        assert row["chosen_id"] != row["rejected_id"]
        assert normalize_text(row["chosen"]) != normalize_text(row["rejected"])
        if row["margin"] is not None:
            assert row["margin"] > 0


@given(specs=st.lists(judgment, max_size=25))
@settings(max_examples=80, deadline=None)
def test_tie_judgments_never_become_pairs(specs):
    from tests.derive.conftest import Tables

    tables = Tables()
    ties = set(build(tables, specs))
    result = tables.derive(tie_policy="separate")
    used = {j for ids in result.pairs.column("judgment_ids").to_pylist() for j in ids}
    assert not used & ties
    tied = {j for ids in result.ties.column("judgment_ids").to_pylist() for j in ids}
    assert tied == ties


@given(specs=st.lists(judgment, min_size=1, max_size=25),
       aggregate=st.sampled_from(["majority", "mean_strength", "dawid_skene"]))
@settings(max_examples=25, deadline=None)
def test_aggregated_items_give_at_most_one_row_and_agreement_in_unit_interval(specs, aggregate):
    from tests.derive.conftest import Tables

    tables = Tables()
    build(tables, specs)
    result = tables.derive(aggregate=aggregate, tie_policy="separate")
    items = [frozenset((r["chosen_id"], r["rejected_id"])) for r in result.pairs.to_pylist()]
    items += [frozenset((r["response_a_id"], r["response_b_id"])) for r in result.ties.to_pylist()]
    assert len(items) == len(set(items))
    for a in result.pairs.column("agreement").to_pylist():
        assert 0 <= a <= 1


@given(scores=st.lists(st.integers(0, 4), min_size=2, max_size=6),
       rule=st.sampled_from(["best_vs_random_lower", "best_vs_worst", "all_above_margin"]))
@settings(max_examples=80, deadline=None)
def test_rating_pairs_always_have_a_strictly_higher_chosen_score(scores, rule):
    from tests.derive.conftest import Tables

    tables = Tables()
    p = tables.prompt("Q")
    rated = [(tables.response(p, f"response {i}"), s) for i, s in enumerate(scores)]
    tables.rating(p, rated)
    by_text = {r.content: s for r, s in rated}
    pairs = tables.derive(rating_rule=rule).pairs.to_pylist()
    for row in pairs:
        assert by_text[row["chosen"]] > by_text[row["rejected"]]
    if len(set(scores)) == 1:
        assert pairs == []
