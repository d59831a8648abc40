"""Style control: markdown counts, exactness against statsmodels, and removal of a length bias."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from preflab.arena import (
    bootstrap_style_controlled,
    count_markdown,
    fit_bradley_terry,
    fit_style_controlled,
    normalize_battles,
)
from preflab.arena.style_control import style_covariates
from preflab.errors import InputError

ELO_PER_NAT = 400 / math.log(10)


def test_count_markdown_counts_headers_lists_bold_outside_code() -> None:
    text = (
        "## Plan\n1. first\n2. **second**\n   - nested\n* star item\n"
        "Some __bold__ words and **more**.\n```python\n# comment\n- not a list\n```\n"
    )
    counts = count_markdown(text)
    assert (counts.headers, counts.lists, counts.bold) == (1, 4, 3)
    assert counts.length == len(text)


def test_count_markdown_of_plain_or_missing_text_is_zero() -> None:
    assert count_markdown(None).length == 0
    plain = count_markdown("Just words, no #hashtag header and 3.5 is a number.")
    assert (plain.headers, plain.lists, plain.bold) == (0, 0, 0)


def _length_biased_battles(n: int, seed: int) -> pl.DataFrame:
    """Four equally good models; "verbose" answers 3× longer; judges prefer longer answers."""
    rng = np.random.default_rng(seed)
    models = np.array(["verbose", "terse", "plain", "mid"])
    base_len = np.array([900.0, 300.0, 300.0, 300.0])
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    len_a = base_len[a] * rng.lognormal(0, 0.3, n)
    len_b = base_len[b] * rng.lognormal(0, 0.3, n)
    ratio = (len_a - len_b) / (len_a + len_b)
    p = 1 / (1 + np.exp(-1.5 * ratio))
    outcome = np.where(rng.random(n) < p, "a", "b")
    zeros = np.zeros(n)
    return pl.DataFrame(
        {
            "model_a": models[a],
            "model_b": models[b],
            "outcome": outcome,
            "style_length_a": len_a,
            "style_length_b": len_b,
            "style_headers_a": zeros,
            "style_headers_b": zeros,
            "style_lists_a": zeros,
            "style_lists_b": zeros,
            "style_bold_a": zeros,
            "style_bold_b": zeros,
        }
    )


def test_style_control_removes_a_pure_length_bias() -> None:
    """Truth: equal strengths. Plain BT puts "verbose" > 60 Elo ahead; style control brings
    every model within 20 Elo of the others and finds a positive length coefficient."""
    battles = _length_biased_battles(20_000, seed=1)
    plain = fit_bradley_terry(battles, ties="drop")
    styled = fit_style_controlled(battles, ties="drop")
    lead = (
        plain.rating_of("verbose") - np.delete(plain.ratings, plain.models.index("verbose")).max()
    )
    assert lead > 60
    assert np.ptp(styled.ratings) < 20
    assert set(styled.coefficients) == {"length"}  # the markdown features never vary here
    assert styled.coefficients["length"] > 0.3


def test_style_controlled_fit_equals_statsmodels_logit_within_1e6_elo() -> None:
    battles = _length_biased_battles(3_000, seed=2)
    fit = fit_style_controlled(battles, ties="drop")
    x_style, _ = style_covariates(battles)
    models = fit.models
    k = len(models)
    design = np.zeros((battles.height, k - 1))
    ia = np.array([models.index(m) for m in battles["model_a"]])
    ib = np.array([models.index(m) for m in battles["model_b"]])
    rows = np.arange(battles.height)
    mask_a, mask_b = ia > 0, ib > 0
    design[rows[mask_a], ia[mask_a] - 1] += 1
    design[rows[mask_b], ib[mask_b] - 1] -= 1
    y = (battles["outcome"] == "a").to_numpy().astype(float)
    logit = sm.Logit(y, np.column_stack([design, x_style])).fit(
        method="newton", tol=1e-14, maxiter=100, disp=False
    )
    theta = np.concatenate([[0.0], logit.params[: k - 1]])
    expected = (theta - theta.mean()) * ELO_PER_NAT
    got = (fit.strengths - fit.strengths.mean()) * ELO_PER_NAT
    assert np.abs(expected - got).max() < 1e-6
    assert fit.coefficients["length"] == pytest.approx(logit.params[-1], abs=1e-8)


def test_style_features_come_from_response_text_when_counts_are_absent() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["x", "y", "x", "y"],
            "model_b": ["y", "x", "y", "x"],
            "outcome": ["a", "a", "b", "b"],
            "response_a": ["# H\n- a\n- b", "short", "**bold** text here", "x"],
            "response_b": ["plain", "## Title\n1. one", "a", "longer **answer** here"],
        }
    )
    x, names = style_covariates(battles)
    assert names == ("length", "headers", "lists", "bold")
    assert x.shape == (4, 4)
    assert np.allclose(x.mean(axis=0), 0) and np.allclose(x.std(axis=0), 1)


def test_style_control_without_text_or_counts_is_an_input_error() -> None:
    battles = pl.DataFrame({"model_a": ["x"], "model_b": ["y"], "outcome": ["a"]})
    with pytest.raises(InputError, match="style control needs"):
        fit_style_controlled(battles)


def test_arena_conv_metadata_becomes_style_columns() -> None:
    meta = {
        "sum_assistant_a_tokens": 120,
        "sum_assistant_b_tokens": 40,
        "header_count_a": {"h1": 1, "h2": 2, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "header_count_b": {"h1": 0, "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count_a": {"ordered": 3, "unordered": 1},
        "list_count_b": {"ordered": 0, "unordered": 2},
        "bold_count_a": {"**": 2, "__": 1},
        "bold_count_b": {"**": 0, "__": 0},
    }
    battles = normalize_battles(
        pl.DataFrame(
            {"model_a": ["x"], "model_b": ["y"], "winner": ["model_a"], "conv_metadata": [meta]}
        )
    )
    row = battles.row(0, named=True)
    assert (
        row["style_length_a"],
        row["style_headers_a"],
        row["style_lists_a"],
        row["style_bold_a"],
    ) == (120, 3, 4, 3)
    assert (row["style_length_b"], row["style_lists_b"]) == (40, 2)


def test_style_bootstrap_is_seeded_and_intervals_contain_point() -> None:
    battles = _length_biased_battles(2_000, seed=3)
    fit, boot = bootstrap_style_controlled(battles, rounds=20, seed=5, ties="drop")
    _, again = bootstrap_style_controlled(battles, rounds=20, seed=5, ties="drop")
    assert np.array_equal(boot.samples, again.samples)
    assert np.all((boot.ci_low <= fit.ratings + 1e-9) & (fit.ratings <= boot.ci_high + 1e-9))
