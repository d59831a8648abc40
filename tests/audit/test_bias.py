"""Bias checks on the real HH-RLHF sample and on tables built to show one bias each."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflab.audit.bias import (
    common_prefix_lengths,
    format_bias,
    identity_mentions,
    length_bias,
    position_bias,
    prefix_bias,
)
from preflab.errors import InputError


def test_hh_sample_chosen_is_shorter_more_often_than_longer(hh_pairs: pl.DataFrame) -> None:
    res = length_bias(hh_pairs)
    for unit in ("words", "tokens"):
        assert res[unit]["chosen_shorter"] > res[unit]["chosen_longer"]
    c = [len(t.split()) for t in hh_pairs["chosen"]]
    r = [len(t.split()) for t in hh_pairs["rejected"]]
    w = res["words"]
    assert w["chosen_mean"] == pytest.approx(np.mean(c))
    assert w["rejected_median"] == pytest.approx(np.median(r))
    assert w["chosen_longer"] == sum(a > b for a, b in zip(c, r, strict=True))
    assert w["chosen_longer"] + w["chosen_shorter"] + w["equal"] == hh_pairs.height


def test_hh_length_model_says_longer_is_not_preferred(hh_pairs: pl.DataFrame) -> None:
    lm = length_bias(hh_pairs)["length_model"]
    assert lm["fitted"]
    assert lm["slope"] < 0 and lm["slope_ci95"][1] < 0
    assert lm["p_longer_by_1sd_chosen"] < 0.5


def _length_pairs(n: int, p_longer: Any, seed: int) -> pl.DataFrame:
    """Pairs of random lengths where the longer one is chosen with ``p_longer(|Δ| / sd)``."""
    rng = np.random.default_rng(seed)
    a_len = rng.integers(5, 200, n)
    b_len = rng.integers(5, 200, n)
    diff = np.abs(a_len - b_len) / np.std(a_len - b_len)
    longer_wins = rng.random(n) < p_longer(diff)
    a_longer = a_len >= b_len
    chosen_len = np.where(longer_wins == a_longer, a_len, b_len)
    rejected_len = np.where(longer_wins == a_longer, b_len, a_len)
    return pl.DataFrame({"chosen": ["w " * k for k in chosen_len],
                         "rejected": ["w " * k for k in rejected_len]})


def _logit_fit(df: pl.DataFrame) -> Any:
    """statsmodels' fit of the documented model, computed here from the texts."""
    import statsmodels.api as sm

    c = df["chosen"].str.count_matches(r"\w+|[^\w\s]").to_numpy().astype(float)
    r = df["rejected"].str.count_matches(r"\w+|[^\w\s]").to_numpy().astype(float)
    keep = c != r
    x = np.tanh(np.abs(c - r)[keep] / (c - r).std())
    return sm.Logit((c > r)[keep].astype(float), sm.add_constant(x)).fit(disp=0)


def test_length_model_finds_a_graded_verbosity_preference() -> None:
    """Planted: the larger the length difference, the likelier the longer answer wins."""
    df = _length_pairs(600, lambda d: 1 / (1 + np.exp(-2.0 * np.tanh(d))), seed=0)
    lm = length_bias(df)["length_model"]
    assert lm["slope"] > 0 and lm["slope_ci95"][0] > 0 and lm["slope_p_value"] < 0.01
    assert lm["biased"] and lm["p_longer_by_1sd_chosen"] > 0.6
    fit = _logit_fit(df)
    assert lm["slope"] == pytest.approx(float(fit.params[1]), rel=1e-9)
    assert lm["length_controlled_p_longer_chosen"] == pytest.approx(
        1 / (1 + np.exp(-float(fit.params[0]))), rel=1e-9)


def test_length_controlled_rate_finds_a_longer_always_wins_preference() -> None:
    """Planted: the longer answer wins 85% whatever the difference; the rate at Δ = 0 shows it
    (a randomly oriented model's intercept would be 0.5 by construction)."""
    df = _length_pairs(400, lambda d: np.full(len(d), 0.85), seed=1)
    lm = length_bias(df)["length_model"]
    assert lm["biased"]
    assert lm["length_controlled_ci95"][0] > 0.6
    assert 0.7 < lm["length_controlled_p_longer_chosen"] < 0.95


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_length_model_on_a_clean_control_shows_no_bias(seed: int) -> None:
    """Control: the choice ignores length; neither the coefficient nor the rate is off."""
    df = _length_pairs(600, lambda d: np.full(len(d), 0.5), seed=seed)
    lm = length_bias(df)["length_model"]
    assert lm["slope_ci95"][0] < 0 < lm["slope_ci95"][1]
    assert lm["length_controlled_ci95"][0] < 0.5 < lm["length_controlled_ci95"][1]
    assert not lm["biased"]


def test_length_bias_accepts_a_tokenizer() -> None:
    df = pl.DataFrame({"chosen": ["abcdef"], "rejected": ["ab"]})
    res = length_bias(df, tokenize=lambda t: list(t))
    assert res["tokens"]["chosen_mean"] == 6 and res["words"]["equal"] == 1


def test_length_bias_names_a_missing_column() -> None:
    with pytest.raises(InputError) as err:
        length_bias(pl.DataFrame({"chosen": ["a"]}))
    assert err.value.field == "rejected"


def test_position_bias_flags_the_first_clicker(crowd: dict[str, Any]) -> None:
    res = position_bias(crowd["judgments"])
    per = {g["judge_id"]: g for g in res["by_judge"]}
    assert per["carol"]["biased"] and per["carol"]["share"] > 0.8
    assert not per["alice"]["biased"]
    lo, hi = per["carol"]["ci95"]
    assert lo < per["carol"]["share"] < hi
    assert {g["batch_id"] for g in res["by_batch"]} == {"b1", "b2", "b3"}
    assert res["overall"]["trials"] == 5 * 240


def test_format_bias_sees_lists_in_chosen() -> None:
    chosen = ["Steps:\n- one\n- two\n**Note** this"] * 30 + ["plain"] * 10
    rejected = ["plain answer"] * 40
    res = format_bias(pl.DataFrame({"chosen": chosen, "rejected": rejected}))
    assert res["list"]["chosen_share"] == pytest.approx(0.75)
    assert res["list"]["rejected_share"] == 0
    assert res["list"]["when_one_has"]["share"] == 1.0 and res["list"]["when_one_has"]["p_value"] < 1e-6
    assert res["bold"]["chosen_mean_count"] == pytest.approx(0.75)
    assert res["emoji"]["chosen_share"] == 0


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.text("ab", max_size=12), st.text("ab", max_size=12)), max_size=20))
def test_common_prefix_matches_os_path_commonprefix(pairs: list[tuple[str, str]]) -> None:
    got = common_prefix_lengths([a for a, _ in pairs], [b for _, b in pairs]).tolist()
    assert got == [len(os.path.commonprefix([a, b])) for a, b in pairs]


def test_prefix_bias_lists_pairs_that_differ_only_at_the_end() -> None:
    df = pl.DataFrame({"chosen": ["Sure, here is the plan: A", "x"], "rejected": ["Sure, here is the plan: B", "y"]})
    res = prefix_bias(df)
    assert res["shared_prefix_pairs"] == 1 and res["examples"] == [0]


def test_identity_mentions_are_found() -> None:
    df = pl.DataFrame({
        "chosen": ["As an AI language model, I cannot", "Paris.", "I'm Claude, made by Anthropic."],
        "rejected": ["No.", "I am ChatGPT", "Sure"],
    })
    res = identity_mentions(df)
    assert (res["chosen"], res["rejected"]) == (2, 1)
    assert res["examples"] == [0, 1, 2]


def test_length_examples_show_both_directions(hh_pairs: pl.DataFrame) -> None:
    ex = length_bias(hh_pairs)["examples"]
    assert ex["chosen_much_shorter"] and ex["chosen_much_longer"]
    row = ex["chosen_much_shorter"][0]
    assert len(hh_pairs["chosen"][row].split()) < len(hh_pairs["rejected"][row].split())


def test_position_bias_leaves_out_judgments_whose_shown_order_is_unknown():
    import pyarrow as pa

    from preflab.audit.bias import position_bias
    from preflab.records import ORDER_UNKNOWN_FLAG

    rows = [
        {"kind": "pairwise", "response_ids": ["a", "b"], "judge_id": "j",
         "pairwise": {"preferred": "a"}, "flags": [ORDER_UNKNOWN_FLAG]},
        {"kind": "pairwise", "response_ids": ["c", "d"], "judge_id": "j",
         "pairwise": {"preferred": "d"}, "flags": []},
    ]
    out = position_bias(pa.Table.from_pylist(rows))
    assert out["order_unknown"] == 1
    assert out["overall"]["trials"] == 1 and out["overall"]["successes"] == 0


def test_length_model_reports_why_it_was_not_fitted() -> None:
    same_gap = pl.DataFrame({"chosen": ["a b c"] * 6 + ["a"] * 6, "rejected": ["a"] * 6 + ["a b c"] * 6})
    assert length_bias(same_gap)["length_model"] == {
        "fitted": False, "reason": "every pair has the same length difference"}
    # the longer one wins exactly when it is more than 50 words longer: separated, no estimate
    separated = _length_pairs(200, lambda d: d > 50 / 80, seed=0)
    lm = length_bias(separated)["length_model"]
    assert not lm["fitted"] and "converge" in lm["reason"]
