"""Bootstrap on aggregated counts: same spread as per-battle resampling, seeded, rank intervals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from preflab.arena import aggregate_battles, bootstrap_ratings, rank_intervals
from preflab.arena.bootstrap import format_rank_interval
from preflab.arena.bradley_terry import PairCounts, fit_bradley_terry
from preflab.errors import UsageError


def _per_battle_bootstrap_sd(battles: pl.DataFrame, rounds: int, seed: int) -> np.ndarray:
    """Resample battle rows with replacement (as Chatbot Arena's notebook) and refit."""
    rng = np.random.default_rng(seed)
    models = tuple(sorted(set(battles["model_a"]) | set(battles["model_b"])))
    samples = []
    for _ in range(rounds):
        rows = rng.integers(0, battles.height, battles.height)
        counts = aggregate_battles(battles[rows], models=models)
        samples.append(fit_bradley_terry(counts).ratings)
    return np.std(samples, axis=0, ddof=1)


def test_aggregated_bootstrap_sd_within_10_percent_of_per_battle_bootstrap(
    simulate_battles,
) -> None:
    """6 models, 3,000 battles, 1,000 rounds each (Monte Carlo error of an SD ratio ≈ 3%)."""
    battles, _ = simulate_battles(
        np.linspace(-0.8, 0.8, 6), 3_000, seed=11, tie_model="random", tie_share=0.1
    )
    aggregated = bootstrap_ratings(aggregate_battles(battles), rounds=1000, seed=1).sd
    per_battle = _per_battle_bootstrap_sd(battles, rounds=1000, seed=2)
    assert np.all(np.abs(aggregated / per_battle - 1) < 0.10), aggregated / per_battle


def test_same_seed_gives_same_intervals_and_other_seed_differs(simulate_battles) -> None:
    battles, _ = simulate_battles(np.linspace(-1, 1, 5), 2_000, seed=3)
    counts = aggregate_battles(battles)
    one = bootstrap_ratings(counts, rounds=30, seed=42)
    two = bootstrap_ratings(counts, rounds=30, seed=42)
    other = bootstrap_ratings(counts, rounds=30, seed=43)
    assert np.array_equal(one.samples, two.samples)
    assert not np.array_equal(one.samples, other.samples)
    assert one.seed == 42


def test_intervals_contain_point_ratings_and_prob_stronger_is_complementary(
    simulate_battles,
) -> None:
    battles, _ = simulate_battles(np.linspace(-1, 1, 5), 5_000, seed=4)
    counts = aggregate_battles(battles)
    fit = fit_bradley_terry(counts)
    boot = bootstrap_ratings(counts, rounds=100, seed=0)
    assert np.all((boot.ci_low <= fit.ratings) & (fit.ratings <= boot.ci_high))
    off_diagonal = ~np.eye(5, dtype=bool)
    total = boot.prob_stronger + boot.prob_stronger.T
    assert np.allclose(total[off_diagonal], 1.0)
    assert boot.prob_stronger[4, 0] == 1.0  # m04 (strongest) above m00 in every round


def test_rank_intervals_follow_overlap_of_rating_intervals() -> None:
    low = np.array([1200.0, 1190.0, 1100.0, 1000.0])
    high = np.array([1250.0, 1210.0, 1195.0, 1050.0])
    best, worst = rank_intervals(low, high)
    assert best.tolist() == [1, 1, 2, 4]
    assert worst.tolist() == [2, 3, 3, 4]
    assert format_rank_interval(2, 3) == "2–3"


def test_unbeaten_resamples_use_fallback_prior_and_are_counted() -> None:
    # x beats y once and loses once: many resamples leave x unbeaten or winless
    battles = pl.DataFrame(
        {
            "model_a": ["x", "x", "y", "y", "z", "z"],
            "model_b": ["y", "y", "z", "z", "x", "x"],
            "outcome": ["a", "b", "a", "b", "a", "b"],
        }
    )
    boot = bootstrap_ratings(aggregate_battles(battles), rounds=50, seed=0)
    assert boot.regularized_rounds > 0
    assert np.isfinite(boot.samples).all()


def test_anchor_has_a_point_interval_and_others_are_relative(simulate_battles) -> None:
    battles, _ = simulate_battles(np.linspace(-1, 1, 4), 2_000, seed=5)
    boot = bootstrap_ratings(aggregate_battles(battles), rounds=20, seed=0, anchor="m00")
    assert boot.ci_low[0] == boot.ci_high[0] == pytest.approx(1000.0)
    assert np.all(boot.sd[1:] > 0)


def test_fewer_than_two_rounds_is_a_usage_error() -> None:
    counts = PairCounts(("x", "y"), np.array([0]), np.array([1]), np.array([[2.0, 1.0, 0.0, 0.0]]))
    with pytest.raises(UsageError, match="rounds"):
        bootstrap_ratings(counts, rounds=1)
