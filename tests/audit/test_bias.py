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


def test_length_model_finds_a_verbosity_preference() -> None:
    rng = np.random.default_rng(0)
    n = 400
    a_len = rng.integers(5, 200, n)
    b_len = rng.integers(5, 200, n)
    longer_first = a_len >= b_len
    # the longer one wins 85% of the time
    wins_longer = rng.random(n) < 0.85
    chosen_len = np.where(wins_longer == longer_first, a_len, b_len)
    rejected_len = np.where(wins_longer == longer_first, b_len, a_len)
    df = pl.DataFrame({"chosen": ["w " * k for k in chosen_len], "rejected": ["w " * k for k in rejected_len]})
    lm = length_bias(df)["length_model"]
    assert lm["slope"] > 0 and lm["slope_ci95"][0] > 0
    assert lm["p_longer_by_1sd_chosen"] > 0.6


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
