"""Bradley–Terry fit: exact against independent solvers, published values, recovery, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import choix
import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from preflab.arena import aggregate_battles, fit_bradley_terry
from preflab.errors import InputError, UsageError

ELO_PER_NAT = 400 / math.log(10)
REFERENCE = json.loads(
    (Path(__file__).resolve().parents[1] / "reference" / "arena.json").read_text()
)


def _centred_elo(theta: np.ndarray) -> np.ndarray:
    return (theta - theta.mean()) * ELO_PER_NAT


def test_half_tie_ratings_equal_choix_dense_solver_within_1e6_elo(simulate_battles) -> None:
    battles, _ = simulate_battles(
        np.random.default_rng(3).normal(0, 1, 10),
        20_000,
        seed=1,
        tie_model="random",
        tie_share=0.15,
    )
    counts = aggregate_battles(battles)
    fit = fit_bradley_terry(counts, ties="half")
    # choix's dense I-LSR on the win matrix with each tie as half a win each way
    comparisons = counts.matrix(0) + 0.5 * counts.matrix(2)
    expected = choix.ilsr_pairwise_dense(comparisons, alpha=0.0, max_iter=100_000, tol=1e-14)
    assert np.abs(_centred_elo(expected) - _centred_elo(fit.strengths)).max() < 1e-6


def test_drop_tie_ratings_equal_statsmodels_binomial_glm_within_1e6_elo(simulate_battles) -> None:
    battles, _ = simulate_battles(
        np.linspace(-1.5, 1.5, 8), 5_000, seed=2, tie_model="random", tie_share=0.1
    )
    counts = aggregate_battles(battles)
    fit = fit_bradley_terry(counts, ties="drop")
    k = len(counts.models)
    design = np.zeros((len(counts.i), k - 1))  # model 0 is the reference
    for row, (i, j) in enumerate(zip(counts.i, counts.j, strict=True)):
        if i > 0:
            design[row, i - 1] += 1
        if j > 0:
            design[row, j - 1] -= 1
    wins, losses = counts.counts[:, 0], counts.counts[:, 1]
    glm = sm.GLM(np.column_stack([wins, losses]), design, family=sm.families.Binomial()).fit(
        tol=1e-14, maxiter=100
    )
    expected = np.concatenate([[0.0], glm.params])
    assert np.abs(_centred_elo(expected) - _centred_elo(fit.strengths)).max() < 1e-6


def test_agresti_baseball_estimates_match_published_table() -> None:
    ref = REFERENCE["agresti_baseball_1987"]
    rows = []
    for home, away, home_wins, away_wins in ref["games"]:
        rows += [(home, away, "a")] * home_wins + [(home, away, "b")] * away_wins
    battles = pl.DataFrame(rows, schema=["model_a", "model_b", "outcome"], orient="row")
    fit = fit_bradley_terry(battles)
    base = fit.strengths[fit.models.index(ref["reference_team"])]
    for team, estimate in ref["estimates"].items():
        got = fit.strengths[fit.models.index(team)] - base
        assert abs(got - estimate) <= ref["tolerance"], team


def test_fit_recovers_known_strengths(simulate_battles) -> None:
    """20 models, 200,000 battles (≈20,000 per model, SE ≈ 3 Elo): Spearman ρ ≥ 0.99 and
    every rating within 15 Elo (≈ 5 SE) of the truth after centring."""
    truth = np.random.default_rng(7).normal(0, 1, 20)
    battles, _ = simulate_battles(truth, 200_000, seed=4)
    fit = fit_bradley_terry(battles, ties="drop")
    rho = spearmanr(truth, fit.strengths).statistic
    assert rho >= 0.99
    assert np.abs(_centred_elo(truth) - _centred_elo(fit.strengths)).max() <= 15.0


def test_davidson_rule_recovers_tie_parameter_and_strengths(simulate_battles) -> None:
    """ν = 0.6, 100,000 battles: ν within 0.03, ratings within 15 Elo of the truth."""
    truth = np.linspace(-1.0, 1.0, 8)
    battles, _ = simulate_battles(truth, 100_000, seed=5, tie_model="davidson", nu=0.6)
    fit = fit_bradley_terry(battles, ties="davidson")
    assert fit.tie_parameter == pytest.approx(0.6, abs=0.03)
    assert np.abs(_centred_elo(truth) - _centred_elo(fit.strengths)).max() <= 15.0


def test_rao_kupper_rule_recovers_tie_parameter_and_strengths(simulate_battles) -> None:
    """θ = 1.5, 100,000 battles: θ within 0.03, ratings within 15 Elo of the truth."""
    truth = np.linspace(-1.0, 1.0, 8)
    battles, _ = simulate_battles(truth, 100_000, seed=6, tie_model="rao_kupper", theta=1.5)
    fit = fit_bradley_terry(battles, ties="rao_kupper")
    assert fit.tie_parameter == pytest.approx(1.5, abs=0.03)
    assert np.abs(_centred_elo(truth) - _centred_elo(fit.strengths)).max() <= 15.0


@pytest.mark.parametrize("rule", ["half", "drop", "davidson", "rao_kupper"])
def test_exact_gradient_and_hessian_match_finite_differences(rule, simulate_battles) -> None:
    """The Newton solver's derivatives (with a style covariate) agree with central differences."""
    from preflab.arena.bradley_terry import _effective_counts, _Objective

    battles, _ = simulate_battles(np.linspace(-1, 1, 4), 2_000, seed=8, tie_model="davidson")
    counts = aggregate_battles(battles)
    eff = _effective_counts(counts.counts, rule, "tie")
    covariate = np.random.default_rng(0).normal(size=(len(counts.i), 1))
    objective = _Objective(4, counts.i, counts.j, eff, rule, covariate, 0.0)
    x = np.random.default_rng(1).normal(0, 0.5, objective.size)
    _, grad, hess = objective.evaluate(x)
    h = 1e-6
    for n in range(objective.size):
        step = np.zeros(objective.size)
        step[n] = h
        numeric = (objective.fun(x + step)[0] - objective.fun(x - step)[0]) / (2 * h)
        assert numeric == pytest.approx(grad[n], rel=1e-5, abs=1e-5)
        column = (objective.fun(x + step)[1] - objective.fun(x - step)[1]) / (2 * h)
        assert np.allclose(column, hess[:, n], rtol=1e-5, atol=1e-4)


def test_drop_rule_ignores_ties() -> None:
    base = pl.DataFrame(
        {
            "model_a": ["x", "x", "y", "z", "z", "x"],
            "model_b": ["y", "y", "z", "x", "y", "z"],
            "outcome": ["a", "b", "a", "b", "a", "b"],
        }
    )
    with_ties = pl.concat(
        [
            base,
            pl.DataFrame({"model_a": ["x", "y"], "model_b": ["z", "x"], "outcome": ["tie", "tie"]}),
        ]
    )
    a = fit_bradley_terry(base, ties="drop").ratings
    b = fit_bradley_terry(with_ties, ties="drop").ratings
    assert np.allclose(a, b, atol=1e-9)


def test_both_bad_counts_as_tie_or_is_dropped() -> None:
    rows = {
        "model_a": ["x", "x", "x", "y"],
        "model_b": ["y", "y", "y", "x"],
        "outcome": ["a", "b", "both_bad", "both_bad"],
    }
    as_tie = fit_bradley_terry(pl.DataFrame(rows), both_bad="tie")
    tie_rows = dict(rows, outcome=["a", "b", "tie", "tie"])
    assert np.allclose(as_tie.ratings, fit_bradley_terry(pl.DataFrame(tie_rows)).ratings)
    dropped = fit_bradley_terry(pl.DataFrame(rows), both_bad="drop")
    assert dropped.n_battles == 2


def test_anchor_model_gets_anchor_rating_and_differences_are_kept(simulate_battles) -> None:
    battles, _ = simulate_battles(np.linspace(-1, 1, 5), 3_000, seed=9)
    free = fit_bradley_terry(battles)
    anchored = fit_bradley_terry(battles, anchor="m02", anchor_rating=1114.0)
    assert anchored.rating_of("m02") == pytest.approx(1114.0, abs=1e-9)
    assert free.ratings.mean() == pytest.approx(1000.0, abs=1e-9)
    assert np.allclose(np.diff(free.ratings), np.diff(anchored.ratings), atol=1e-9)


def test_duplicating_every_battle_keeps_ratings_and_pair_cells() -> None:
    """Cost grows with model pairs: three times the battles, the same cells and ratings."""
    battles = pl.DataFrame(
        {
            "model_a": ["x", "y", "z", "x", "y"],
            "model_b": ["y", "z", "x", "z", "x"],
            "outcome": ["a", "a", "a", "b", "tie"],
        }
    )
    once = aggregate_battles(battles)
    thrice = aggregate_battles(pl.concat([battles] * 3))
    assert len(once.i) == len(thrice.i) == 3
    assert np.array_equal(thrice.counts, 3 * once.counts)
    assert np.allclose(fit_bradley_terry(once).ratings, fit_bradley_terry(thrice).ratings)


def test_model_that_never_lost_raises_input_error_unless_prior_given() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["x", "x", "y", "z"],
            "model_b": ["y", "z", "z", "y"],
            "outcome": ["a", "a", "a", "a"],
        }
    )
    with pytest.raises(InputError, match="do not exist") as err:
        fit_bradley_terry(battles)
    assert "x" in str(err.value)
    fit = fit_bradley_terry(battles, l2=1e-6)
    assert np.isfinite(fit.ratings).all()
    assert fit.models[int(np.argmax(fit.ratings))] == "x"


def test_models_in_separate_groups_raise_input_error() -> None:
    battles = pl.DataFrame(
        {
            "model_a": ["a1", "a2", "b1", "b2"],
            "model_b": ["a2", "a1", "b2", "b1"],
            "outcome": ["a", "a", "a", "a"],
        }
    )
    with pytest.raises(InputError, match="2 groups"):
        fit_bradley_terry(battles)


def test_unknown_outcome_names_row_and_field() -> None:
    battles = pl.DataFrame({"model_a": ["x", "x"], "model_b": ["y", "y"], "outcome": ["a", "won"]})
    with pytest.raises(InputError) as err:
        fit_bradley_terry(battles)
    assert (err.value.line, err.value.field, err.value.value) == (2, "outcome", "won")


def test_unknown_tie_rule_and_anchor_are_usage_errors(simulate_battles) -> None:
    battles, _ = simulate_battles(np.zeros(3), 300)
    with pytest.raises(UsageError, match="ties must be one of"):
        fit_bradley_terry(battles, ties="thirds")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="anchor model 'nobody'"):
        fit_bradley_terry(battles, anchor="nobody")


def test_tie_aware_rule_without_ties_is_an_input_error(simulate_battles) -> None:
    battles, _ = simulate_battles(np.zeros(3), 300)
    with pytest.raises(InputError, match="no ties"):
        fit_bradley_terry(battles, ties="davidson")


_OUTCOME = st.sampled_from(["a", "b", "tie"])
_BATTLE = st.tuples(st.sampled_from("pqrs"), st.sampled_from("pqrs"), _OUTCOME).filter(
    lambda t: t[0] != t[1]
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_BATTLE, min_size=1, max_size=40))
def test_ratings_ignore_which_side_a_model_was_shown_on(rows) -> None:
    base = [("p", "q", "a"), ("q", "r", "a"), ("r", "s", "a"), ("s", "p", "a"), ("q", "p", "tie")]
    rows = base + rows
    flip = {"a": "b", "b": "a", "tie": "tie"}
    forward = pl.DataFrame(rows, schema=["model_a", "model_b", "outcome"], orient="row")
    mirrored = pl.DataFrame(
        [(b, a, flip[o]) for a, b, o in reversed(rows)],
        schema=["model_a", "model_b", "outcome"],
        orient="row",
    )
    assert np.allclose(
        fit_bradley_terry(forward).ratings, fit_bradley_terry(mirrored).ratings, atol=1e-6
    )


def test_counts_with_many_models_match_a_plain_python_count() -> None:
    """1,100 models (more cells than the dense path takes): the sparse count is the same."""
    from collections import Counter

    rng = np.random.default_rng(0)
    n = 6_000
    a = rng.integers(0, 1_100, n)
    b = (a + rng.integers(1, 1_100, n)) % 1_100
    outcome = rng.choice(["a", "b", "tie", "both_bad"], n)
    names = [f"m{x:04d}" for x in range(1_100)]
    battles = pl.DataFrame(
        {"model_a": [names[x] for x in a], "model_b": [names[x] for x in b], "outcome": outcome}
    )
    counts = aggregate_battles(battles)
    expected: Counter = Counter()
    for x, y, o in zip(a, b, outcome, strict=True):
        if x > y:
            x, y, o = y, x, {"a": "b", "b": "a"}.get(o, o)
        expected[(names[x], names[y], o)] += 1
    got = Counter()
    for i, j, row in zip(counts.i, counts.j, counts.counts, strict=True):
        for col, o in enumerate(["a", "b", "tie", "both_bad"]):
            if row[col]:
                got[(counts.models[i], counts.models[j], o)] = int(row[col])
    assert got == expected


def _paper_log_likelihood(rule: str, theta: np.ndarray, tie: float, counts) -> float:
    """Log-likelihood written straight from Davidson (1970) and Rao & Kupper (1967)."""
    pi = np.exp(theta)
    pi_i, pi_j = pi[counts.i], pi[counts.j]
    wins, losses = counts.counts[:, 0], counts.counts[:, 1]
    ties = counts.counts[:, 2] + counts.counts[:, 3]
    if rule == "davidson":
        den = pi_i + pi_j + tie * np.sqrt(pi_i * pi_j)
        p_i, p_j, p_t = pi_i / den, pi_j / den, tie * np.sqrt(pi_i * pi_j) / den
    else:
        p_i = pi_i / (pi_i + tie * pi_j)
        p_j = pi_j / (pi_j + tie * pi_i)
        p_t = (tie**2 - 1) * pi_i * pi_j / ((pi_i + tie * pi_j) * (tie * pi_i + pi_j))
    return float((wins * np.log(p_i) + losses * np.log(p_j) + ties * np.log(p_t)).sum())


@pytest.mark.parametrize("rule", ["davidson", "rao_kupper"])
def test_tie_aware_fit_maximizes_the_papers_likelihood(rule, simulate_battles) -> None:
    """The paper's formula gives the same log-likelihood at our optimum, and a generic
    optimizer (Nelder–Mead on the paper's formula) finds nothing better."""
    from scipy.optimize import minimize

    battles, _ = simulate_battles(np.array([0.6, 0.0, -0.4]), 3_000, seed=12, tie_model=rule)
    counts = aggregate_battles(battles)
    fit = fit_bradley_terry(counts, ties=rule)
    assert _paper_log_likelihood(rule, fit.strengths, fit.tie_parameter, counts) == pytest.approx(
        fit.log_likelihood, abs=1e-8
    )

    def negative(params: np.ndarray) -> float:
        theta = np.concatenate([[0.0], params[:2]])
        tie = math.exp(params[2]) + (1.0 if rule == "rao_kupper" else 0.0)
        return -_paper_log_likelihood(rule, theta, tie, counts)

    best = minimize(
        negative,
        np.zeros(3),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000},
    )
    assert -best.fun <= fit.log_likelihood + 1e-8
    assert -best.fun == pytest.approx(fit.log_likelihood, abs=1e-5)
