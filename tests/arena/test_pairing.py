"""Pair choice for the live arena: policies, determinism, counted battles, errors."""

from __future__ import annotations

import random
from collections import Counter

import polars as pl
import pytest

from preflab.arena import choose_pair, pair_weights
from preflab.errors import InputError


def _battles(pairs: list[tuple[str, str, str]], **extra: list[object]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model_a": [p[0] for p in pairs],
            "model_b": [p[1] for p in pairs],
            "outcome": [p[2] for p in pairs],
            **extra,
        }
    )


def test_uniform_weights_are_equal_over_every_pair() -> None:
    weights = pair_weights(["c", "a", "b"], None, "uniform")
    assert weights == {("a", "b"): 1 / 3, ("a", "c"): 1 / 3, ("b", "c"): 1 / 3}


def test_choose_pair_is_deterministic_for_a_seeded_rng() -> None:
    models = ["m1", "m2", "m3", "m4"]
    battles = _battles([("m1", "m2", "a")] * 5 + [("m2", "m3", "b")] * 5)
    for policy in ("uniform", "fewest_battles", "widest_interval"):
        first = [choose_pair(models, battles, policy, random.Random(7)) for _ in range(3)]
        assert len(set(first)) == 1, policy
        seq_a = random.Random(11)
        seq_b = random.Random(11)
        assert [choose_pair(models, battles, policy, seq_a) for _ in range(20)] == [
            choose_pair(models, battles, policy, seq_b) for _ in range(20)
        ]


def test_choose_pair_returns_two_distinct_given_names_and_both_sides_occur() -> None:
    rng = random.Random(3)
    draws = [choose_pair(["x", "y"], None, "uniform", rng) for _ in range(200)]
    assert set(draws) == {("x", "y"), ("y", "x")}
    counts = Counter(draws)
    assert min(counts.values()) > 60  # the side is a fair coin, not fixed by name order


def test_uniform_draws_cover_every_pair() -> None:
    rng = random.Random(5)
    seen = Counter(frozenset(choose_pair(list("abcd"), None, "uniform", rng)) for _ in range(600))
    assert len(seen) == 6
    assert min(seen.values()) > 60


def test_fewest_battles_weight_is_one_over_one_plus_pair_count() -> None:
    battles = _battles([("x", "y", "a")] * 3 + [("y", "x", "b")] + [("y", "z", "tie")])
    weights = pair_weights(["x", "y", "z"], battles, "fewest_battles")
    raw = {("x", "y"): 1 / 5, ("x", "z"): 1.0, ("y", "z"): 1 / 2}
    total = sum(raw.values())
    assert weights == pytest.approx({p: w / total for p, w in raw.items()})


def test_fewest_battles_brings_a_new_model_up() -> None:
    battles = _battles([("x", "y", "a"), ("y", "x", "b")] * 20)
    rng = random.Random(0)
    draws = [frozenset(choose_pair(["x", "y", "new"], battles, "fewest_battles", rng))
             for _ in range(300)]
    assert sum("new" in d for d in draws) > 250


def test_excluded_and_non_anonymous_battles_are_not_counted() -> None:
    battles = _battles(
        [("x", "y", "a")] * 4,
        is_anonymous=[True, False, True, True],
        excluded_reason=[None, None, "answer_names_model", "names_seen_before_vote"],
    )
    weights = pair_weights(["x", "y", "z"], battles, "fewest_battles")
    # one counted x–y battle: weight 1/2 against 1 for the pairs with z
    assert weights[("x", "y")] == pytest.approx(0.5 / 2.5)


def test_endpoint_columns_are_used_when_present() -> None:
    battles = _battles(
        [("gpt-x", "llama-y", "a")] * 4,
        endpoint_a=["ep1"] * 4,
        endpoint_b=["ep2"] * 4,
    )
    weights = pair_weights(["ep1", "ep2", "ep3"], battles, "fewest_battles")
    assert weights[("ep1", "ep2")] == pytest.approx(0.2 / 2.2)
    by_model = pair_weights(
        ["gpt-x", "llama-y", "z"], battles, "fewest_battles", columns=("model_a", "model_b")
    )
    assert by_model[("gpt-x", "llama-y")] == pytest.approx(0.2 / 2.2)


def test_widest_interval_favours_the_model_with_few_battles() -> None:
    rng = random.Random(0)
    rows = []
    for _ in range(300):  # x and y meet often, z rarely
        rows.append(("x", "y", rng.choice("ab")))
    for _ in range(6):
        rows.append(("y", "z", rng.choice("ab")))
        rows.append(("x", "z", rng.choice("ab")))
    weights = pair_weights(["x", "y", "z"], _battles(rows), "widest_interval")
    assert weights[("x", "z")] > weights[("x", "y")]
    assert weights[("y", "z")] > weights[("x", "y")]


def test_widest_interval_gives_a_model_without_battles_the_widest_weight() -> None:
    rng = random.Random(1)
    rows = [("x", "y", rng.choice("ab")) for _ in range(40)]
    weights = pair_weights(["x", "y", "w"], _battles(rows), "widest_interval")
    assert weights[("w", "x")] >= weights[("x", "y")]
    assert weights[("w", "y")] >= weights[("x", "y")]
    assert weights[("w", "x")] == pytest.approx(weights[("w", "y")], rel=0.2)


def test_widest_interval_is_uniform_without_enough_battles() -> None:
    uniform = pair_weights(["x", "y", "z"], None, "uniform")
    assert pair_weights(["x", "y", "z"], None, "widest_interval") == uniform
    empty = _battles([("x", "y", "a")]).head(0)
    assert pair_weights(["x", "y", "z"], empty, "widest_interval") == uniform
    # two groups that never met cannot be fitted together
    apart = _battles([("x", "y", "a"), ("y", "x", "a"), ("z", "w", "a"), ("w", "z", "b")])
    assert pair_weights(["x", "y", "z", "w"], apart, "widest_interval") == pair_weights(
        ["x", "y", "z", "w"], None, "uniform"
    )


def test_battles_of_other_models_do_not_count() -> None:
    battles = _battles([("x", "old", "a")] * 10)
    assert pair_weights(["x", "y"], battles, "fewest_battles") == {("x", "y"): 1.0}


@pytest.mark.parametrize("models", [[], ["only"], ["same", "same"]])
def test_fewer_than_two_models_is_an_input_error(models: list[str]) -> None:
    with pytest.raises(InputError) as err:
        choose_pair(models, None, "uniform", random.Random(0))
    assert err.value.field == "models"


def test_unknown_policy_and_empty_name_are_input_errors() -> None:
    with pytest.raises(InputError) as err:
        choose_pair(["x", "y"], None, "best", random.Random(0))  # type: ignore[arg-type]
    assert err.value.field == "arena_policy"
    with pytest.raises(InputError) as err:
        choose_pair(["x", " "], None, "uniform", random.Random(0))
    assert err.value.field == "models[1]"


def test_missing_side_columns_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        pair_weights(["x", "y"], _battles([("x", "y", "a")]), "fewest_battles",
                     columns=("endpoint_a", "endpoint_b"))
    assert err.value.field == "endpoint_a"
