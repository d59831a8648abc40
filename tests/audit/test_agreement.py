"""Agreement coefficients: published worked examples, the reference libraries, properties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from preflab.audit.agreement import (
    agreement_summary,
    bootstrap_interval,
    cohen_kappa,
    fleiss_kappa,
    kendall_tau_rankings,
    krippendorff_alpha,
    pairwise_label_matrix,
    raw_agreement,
    verdict,
)
from preflab.audit.outcomes import gold_from_judgments
from preflab.errors import UsageError
from preflab.records import JUDGMENT_SCHEMA

REF = json.loads((Path(__file__).parents[1] / "reference" / "agreement.json").read_text())
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _kripp_data() -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in REF["krippendorff_2011"]["data"]])


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_krippendorff_2011_worked_example(level: str) -> None:
    ref = REF["krippendorff_2011"]
    assert krippendorff_alpha(_kripp_data(), level) == pytest.approx(ref["alpha"][level], abs=ref["tolerance"])


def test_fleiss_kappa_equals_wikipedia_worked_example() -> None:
    ref = REF["fleiss_wikipedia"]
    assert fleiss_kappa(ref["table"]) == pytest.approx(ref["kappa"], abs=ref["tolerance"])


def _reliability(draw: Any, max_value: int = 5) -> np.ndarray:
    n_judges = draw(st.integers(2, 5))
    n_items = draw(st.integers(3, 30))
    data = draw(arrays(np.float64, (n_judges, n_items), elements=st.integers(1, max_value).map(float)))
    missing = draw(arrays(np.bool_, (n_judges, n_items)))
    data = np.where(missing, np.nan, data)
    return data


@st.composite
def reliability_data(draw: Any) -> np.ndarray:
    data = _reliability(draw)
    # krippendorff needs at least two distinct values among pairable units
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = data[:, pairable]
    values = values[~np.isnan(values)]
    if len(np.unique(values)) < 2:
        data[0, 0], data[1, 0] = 1.0, 2.0
    return data


@settings(max_examples=150, deadline=None)
@given(data=reliability_data(), level=st.sampled_from(LEVELS))
def test_alpha_matches_krippendorff_package(data: np.ndarray, level: str) -> None:
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    table=st.integers(2, 6).flatmap(
        lambda k: st.integers(2, 8).flatmap(
            lambda raters: st.lists(
                st.lists(st.integers(0, raters), min_size=k, max_size=k).filter(lambda r: sum(r) > 0), min_size=2, max_size=25
            ).map(lambda rows: [_rescale(r, raters) for r in rows])
        )
    )
)
def test_fleiss_matches_statsmodels(table: list[list[int]]) -> None:
    arr = np.array(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = sm_fleiss_kappa(arr, method="fleiss")
    got = fleiss_kappa(arr)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-9)


def _rescale(row: list[int], raters: int) -> list[int]:
    """Make a row sum to exactly ``raters`` (statsmodels assumes equal raters per item)."""
    out = [0] * len(row)
    total = sum(row)
    for i in range(raters):
        # distribute proportionally, deterministically
        out[int(np.searchsorted(np.cumsum(row), (i + 0.5) * total / raters))] += 1
    return out


@settings(max_examples=150, deadline=None)
@given(
    pair=st.integers(2, 40).flatmap(
        lambda n: st.tuples(st.lists(st.integers(0, 4), min_size=n, max_size=n),
                            st.lists(st.integers(0, 4), min_size=n, max_size=n))
    ),
    weights=st.sampled_from([None, "linear", "quadratic"]),
)
def test_cohen_matches_sklearn(pair: tuple[list[int], list[int]], weights: str | None) -> None:
    a, b = pair
    with np.errstate(divide="ignore", invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = cohen_kappa_score(a, b, weights=weights)
    got = cohen_kappa(a, b, weights)  # type: ignore[arg-type]
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(data=reliability_data(), level=st.sampled_from(LEVELS), seed=st.integers(0, 2**16))
def test_alpha_is_symmetric_in_judges_and_invariant_to_item_order(data: np.ndarray, level: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shuffled = data[rng.permutation(data.shape[0])][:, rng.permutation(data.shape[1])]
    a, b = krippendorff_alpha(data, level), krippendorff_alpha(shuffled, level)
    assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(row=st.lists(st.integers(1, 5), min_size=3, max_size=30).filter(lambda r: len(set(r)) > 1),
       judges=st.integers(2, 5), level=st.sampled_from(LEVELS))
def test_alpha_is_one_on_identical_labels(row: list[int], judges: int, level: str) -> None:
    data = np.tile(np.array(row, dtype=float), (judges, 1))
    assert krippendorff_alpha(data, level) == pytest.approx(1.0)
    assert raw_agreement(data) == 1.0


def test_verdict_bands_follow_reference_002() -> None:
    assert [verdict(x) for x in (0.9, 0.75, 0.74, 0.60, 0.59, 0.40, 0.39)] == [
        "strong", "strong", "moderate", "moderate", "fair", "fair", "poor"]
    assert verdict(float("nan")) == "undefined"


def test_alpha_rejects_a_vector() -> None:
    with pytest.raises(UsageError, match="judges × items"):
        krippendorff_alpha([1, 2, 3])


def test_bootstrap_interval_brackets_the_estimate_and_repeats_with_its_seed() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300).astype(float)
    data = np.vstack([np.where(rng.random(300) < 0.8, truth, rng.integers(0, 3, 300)) for _ in range(3)])
    est = krippendorff_alpha(data)
    lo, hi = bootstrap_interval(krippendorff_alpha, data, n_resamples=300, seed=1)
    assert lo < est < hi
    assert (lo, hi) == bootstrap_interval(krippendorff_alpha, data, n_resamples=300, seed=1)


def test_kendall_tau_between_rankings_counts_ties_in_groups() -> None:
    assert kendall_tau_rankings([["a"], ["b"], ["c"]], [["a"], ["b"], ["c"]]) == pytest.approx(1.0)
    assert kendall_tau_rankings([["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]]) == pytest.approx(-1.0)
    from scipy.stats import kendalltau

    expected = kendalltau([0, 0, 1], [0, 1, 2]).statistic
    assert kendall_tau_rankings([["a", "b"], ["c"]], [["a"], ["b"], ["c"]]) == pytest.approx(expected)


def _pw(jid: str, judge: str, shown: list[str], preferred: str | None, **kw: Any) -> dict[str, Any]:
    return {"judgment_id": jid, "prompt_id": "p1", "response_ids": shown, "kind": "pairwise", "judge_id": judge,
            "pairwise": {"scale": kw.get("scale", 2), "preferred": preferred, "strength": kw.get("strength", 1),
                         "tie": preferred is None and not kw.get("both_bad", False),
                         "both_bad": kw.get("both_bad", False)},
            "submitted_at": kw.get("at")}


def test_label_matrix_codes_direction_relative_to_ids_not_positions() -> None:
    from datetime import UTC, datetime

    t = pa.Table.from_pylist([
        _pw("1", "a", ["r1", "r2"], "r1"),
        _pw("2", "b", ["r2", "r1"], "r1"),          # same choice, other order on screen
        _pw("3", "c", ["r1", "r2"], None),           # tie
        _pw("4", "d", ["r1", "r2"], None, both_bad=True),
        _pw("5", "e", ["r1", "r2"], "r2", at=datetime(2025, 1, 1, tzinfo=UTC)),
        _pw("6", "e", ["r1", "r2"], "r1", at=datetime(2025, 1, 2, tzinfo=UTC)),  # e changed their mind
    ], schema=JUDGMENT_SCHEMA)
    m = pairwise_label_matrix(t)
    assert m.judges == ["a", "b", "c", "d", "e"]
    assert m.direction[:, 0].tolist() == [1.0, 1.0, 0.0, 9.0, 1.0]


def test_likert_signed_value_keeps_strength() -> None:
    t = pa.Table.from_pylist([
        _pw("1", "a", ["r1", "r2"], "r1", scale=5, strength=2),
        _pw("2", "b", ["r1", "r2"], "r2", scale=5, strength=1),
    ], schema=JUDGMENT_SCHEMA)
    assert pairwise_label_matrix(t).signed[:, 0].tolist() == [1.0, -0.5]


def test_summary_finds_the_careless_annotators(crowd: dict[str, Any]) -> None:
    gold = gold_from_judgments(crowd["gold"])
    s = agreement_summary(crowd["judgments"], gold=gold, n_resamples=50)
    assert s["multi_judged_items"] == 240
    names = [c["name"] for c in s["coefficients"]]
    assert "Krippendorff's alpha (nominal)" in names and "Fleiss' kappa" in names
    per = {j["judge_id"]: j for j in s["judge_agreement"]}
    assert per["alice"]["consensus_agreement"] > per["carol"]["consensus_agreement"] + 0.15
    assert per["alice"]["gold_accuracy"] > per["eve"]["gold_accuracy"]
    assert per["alice"]["gold_items"] == 60
    assert len(s["cohen"]) == 10  # 5 judges → 10 pairs
    assert s["hardest_items"] and s["hardest_items"][0]["disagreement"] >= s["hardest_items"][-1]["disagreement"]
    by_judge = {r["judge_id"]: r["disagreement"] for r in s["disagreement_by"]["judge_id"]}
    assert by_judge["carol"] > by_judge["alice"]


def test_summary_reports_kendall_tau_for_rankings() -> None:
    rows = []
    for judge, ranking in (("a", [["x"], ["y"], ["z"]]), ("b", [["x"], ["y"], ["z"]]), ("c", [["z"], ["y"], ["x"]])):
        rows.append({"judgment_id": judge, "prompt_id": "p", "response_ids": ["x", "y", "z"], "kind": "ranking",
                     "judge_id": judge, "ranking": ranking})
    s = agreement_summary(pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA), n_resamples=0)
    assert s["rankings"]["judge_pairs"] == 3
    assert s["rankings"]["mean_tau"] == pytest.approx((1 - 1 - 1) / 3)


def test_rating_agreement_per_attribute_matches_krippendorff() -> None:
    rows = []
    scores = {"a": [0, 1, 2, 3, 4, 2], "b": [0, 1, 2, 4, 4, 1], "c": [1, 1, 2, 3, 3, 2]}
    for judge, vals in scores.items():
        rows.append({"judgment_id": judge, "prompt_id": "p", "response_ids": [f"r{i}" for i in range(6)],
                     "kind": "rating", "judge_id": judge,
                     "rating": {"scores": [{"response_id": f"r{i}", "attribute": "helpfulness", "score": float(v)}
                                           for i, v in enumerate(vals)], "scale_min": 0.0, "scale_max": 4.0}})
    s = agreement_summary(pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA), n_resamples=0)
    (r,) = s["ratings"]
    expected = krippendorff.alpha(reliability_data=np.array(list(scores.values()), dtype=float),
                                  level_of_measurement="interval")
    assert r["attribute"] == "helpfulness" and r["responses"] == 6
    assert r["interval"]["value"] == pytest.approx(expected, abs=1e-9)


def test_disagreements_are_clustered_by_prompt_tag(crowd: dict[str, Any]) -> None:
    import polars as pl

    prompts = pl.from_arrow(crowd["prompts"]).with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit(["even"])).otherwise(pl.lit(["odd"])).alias("tags"))
    s = agreement_summary(crowd["judgments"], prompts=prompts, n_resamples=0)
    assert {r["tag"] for r in s["disagreement_by"]["tag"]} == {"even", "odd"}
    assert all(0 <= r["disagreement"] <= 1 for r in s["disagreement_by"]["tag"])


@pytest.mark.parametrize("kind,level,fn", [
    ("raw", "nominal", raw_agreement),
    ("fleiss", "nominal", lambda x: fleiss_kappa(np.array([np.bincount(c[~np.isnan(c)].astype(int), minlength=4) for c in x.T]))),
    ("alpha", "nominal", lambda x: krippendorff_alpha(x, "nominal")),
    ("alpha", "ordinal", lambda x: krippendorff_alpha(x, "ordinal")),
    ("alpha", "interval", lambda x: krippendorff_alpha(x, "interval")),
])
def test_weighted_bootstrap_matches_the_resampling_loop(kind: str, level: str, fn: Any) -> None:
    from preflab.audit.agreement import bootstrap_counts_interval

    rng = np.random.default_rng(5)
    truth = rng.integers(0, 4, 400).astype(float)
    data = np.vstack([np.where(rng.random(400) < 0.7, truth, rng.integers(0, 4, 400)) for _ in range(4)])
    data[rng.random(data.shape) < 0.25] = np.nan
    fast = bootstrap_counts_interval(kind, data, level=level, n_resamples=2000, seed=1)  # type: ignore[arg-type]
    slow = bootstrap_interval(fn, data, n_resamples=2000, seed=2)
    assert fast[0] < fn(data) < fast[1]
    assert fast == pytest.approx(slow, abs=0.02)


@settings(max_examples=80, deadline=None)
@given(
    pair=st.integers(2, 30).flatmap(
        lambda n: st.tuples(st.lists(st.integers(0, 3), min_size=n, max_size=n),
                            st.lists(st.integers(0, 3), min_size=n, max_size=n))
    ),
    weights=st.sampled_from([None, "linear", "quadratic"]),
)
def test_cohen_is_symmetric_in_judges(pair: tuple[list[int], list[int]], weights: str | None) -> None:
    a, b = pair
    x, y = cohen_kappa(a, b, weights), cohen_kappa(b, a, weights)  # type: ignore[arg-type]
    assert (np.isnan(x) and np.isnan(y)) or x == pytest.approx(y, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(data=reliability_data(), seed=st.integers(0, 2**16))
def test_fleiss_and_raw_agreement_are_invariant_to_item_and_judge_order(data: np.ndarray, seed: int) -> None:
    from preflab.audit.coefficients import counts_table

    rng = np.random.default_rng(seed)
    shuffled = data[rng.permutation(data.shape[0])][:, rng.permutation(data.shape[1])]
    for fn in (raw_agreement, lambda d: fleiss_kappa(counts_table(d))):
        a, b = fn(data), fn(shuffled)
        assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12)


def test_summary_gives_each_judge_pair_a_cohen_interval_over_shared_item_resamples(
    crowd: dict[str, Any],
) -> None:
    from preflab.audit.coefficients import bootstrap_cohen_interval

    s = agreement_summary(crowd["judgments"], n_resamples=400, seed=3)
    m = pairwise_label_matrix(crowd["judgments"])
    multi = (~np.isnan(m.direction)).sum(axis=0) >= 2
    for pair in s["cohen"]:
        lo, hi = pair["ci95"]
        assert lo < pair["kappa"] < hi
    # the summary's interval for one pair, rebuilt from the same shared resamples of all items
    first = s["cohen"][0]
    a, b = (m.judges.index(j) for j in first["judges"])
    d = m.direction[:, multi]
    from preflab.audit.coefficients import resample_counts

    shared = list(resample_counts(d.shape[1], 400, 3))
    assert first["ci95"] == list(bootstrap_cohen_interval(d[a], d[b], weights_blocks=shared))
