"""Bootstrap intervals for Bradley–Terry ratings, resampling aggregated counts.

Resampling ``N`` battles with replacement and then aggregating them gives counts per
(pair, outcome) cell that follow a multinomial distribution with ``N`` trials and the
observed cell shares as probabilities. Drawing those counts directly
(``Generator.multinomial``) is therefore the same bootstrap as Chatbot Arena's per-battle
resampling (Chiang et al. 2024, §5 and its ``get_bootstrap_result``), at a cost that grows with
the number of model pairs instead of battles.

Intervals are percentile intervals (Efron & Tibshirani 1993, ch. 13). Rank intervals follow
the Chatbot Arena leaderboard's definition: a model's best rank is one plus the number of
models whose lower bound is above its upper bound, its worst rank is the number of models
minus those whose upper bound is below its lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preflab.arena.bradley_terry import (
    ELO_BASE,
    FALLBACK_L2,
    BothBadRule,
    PairCounts,
    TieRule,
    _effective_counts,
    _is_strongly_connected,
    fit_cells,
)
from preflab.errors import UsageError

__all__ = [
    "BootstrapResult",
    "bootstrap_ratings",
    "format_rank_interval",
    "rank_intervals",
    "summarize_samples",
]

#: Chatbot Arena's default number of bootstrap rounds.
DEFAULT_ROUNDS = 100


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """Bootstrap samples of the ratings and what is read off them.

    Attributes:
        models: model names.
        samples: ``(rounds, K)`` Elo ratings, one row per round.
        ci_low: lower percentile bound per model.
        ci_high: upper percentile bound per model.
        sd: standard deviation per model.
        rank_low: best rank per model (1 = top).
        rank_high: worst rank per model.
        prob_stronger: ``K × K``; share of rounds in which the row model rates above the column.
        confidence: the interval's coverage (0.95).
        rounds: number of rounds.
        seed: the seed given, if any.
        regularized_rounds: rounds that had to use the ``FALLBACK_L2`` prior because the
            resample left a model unbeaten or winless.
    """

    models: tuple[str, ...]
    samples: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    sd: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray
    prob_stronger: np.ndarray
    confidence: float
    rounds: int
    seed: int | None
    regularized_rounds: int = 0


def rank_intervals(ci_low: np.ndarray, ci_high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (best, worst) ranks from rating intervals, as the Chatbot Arena leaderboard.

    >>> best, worst = rank_intervals(np.array([10., 0., -30.]), np.array([20., 15., -20.]))
    >>> best.tolist(), worst.tolist()
    ([1, 1, 3], [2, 2, 3])
    """
    k = len(ci_low)
    above = (ci_low[None, :] > ci_high[:, None]).sum(axis=1)  # models surely better
    below = (ci_high[None, :] < ci_low[:, None]).sum(axis=1)  # models surely worse
    return (1 + above).astype(np.int64), (k - below).astype(np.int64)


def format_rank_interval(low: int, high: int) -> str:
    """Return ``"3"`` or ``"2–4"``.

    >>> format_rank_interval(2, 4), format_rank_interval(1, 1)
    ('2–4', '1')
    """
    return str(low) if low == high else f"{low}–{high}"


def summarize_samples(
    models: tuple[str, ...],
    samples: np.ndarray,
    *,
    confidence: float = 0.95,
    seed: int | None = None,
    regularized_rounds: int = 0,
) -> BootstrapResult:
    """Return intervals, rank intervals and P(stronger) from ``(rounds, K)`` rating samples."""
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be in (0, 1), got {confidence}", field="confidence")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha], axis=0)
    best, worst = rank_intervals(low, high)
    stronger = (samples[:, :, None] > samples[:, None, :]).mean(axis=0)
    return BootstrapResult(
        models=models,
        samples=samples,
        ci_low=low,
        ci_high=high,
        sd=samples.std(axis=0, ddof=1) if len(samples) > 1 else np.zeros(len(models)),
        rank_low=best,
        rank_high=worst,
        prob_stronger=stronger,
        confidence=confidence,
        rounds=int(samples.shape[0]),
        seed=seed,
        regularized_rounds=regularized_rounds,
    )


def bootstrap_ratings(
    counts: PairCounts,
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int | np.random.Generator | None = 0,
    ties: TieRule = "half",
    both_bad: BothBadRule = "tie",
    anchor: str | None = None,
    anchor_rating: float = ELO_BASE,
    l2: float = 0.0,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Return bootstrap intervals by multinomial resampling of the aggregated counts.

    Args:
        counts: aggregated battles (:func:`~preflab.arena.bradley_terry.aggregate_battles`).
        rounds: bootstrap rounds (Chatbot Arena uses 100).
        seed: an int seed or a NumPy ``Generator``; the same seed gives the same intervals.
        ties: the tie rule of the fit.
        both_bad: the both-bad rule of the fit.
        anchor: anchor model (its interval is then a point: it is fixed by definition).
        anchor_rating: the anchor's rating.
        l2: ridge of the fit.
        confidence: coverage of the percentile intervals.

    Returns:
        The bootstrap result.

    >>> import polars as pl
    >>> from preflab.arena.bradley_terry import aggregate_battles
    >>> battles = pl.DataFrame({"model_a": ["x", "y", "z"] * 20, "model_b": ["y", "z", "x"] * 20,
    ...                         "outcome": ["a", "a", "b", "tie"] * 15})
    >>> boot = bootstrap_ratings(aggregate_battles(battles), rounds=20, seed=1)
    >>> boot.samples.shape, bool((boot.ci_low <= boot.ci_high).all())
    ((20, 3), True)
    """
    if rounds < 2:
        raise UsageError(f"rounds must be at least 2, got {rounds}", field="rounds")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    kwargs = {"ties": ties, "both_bad": both_bad, "anchor": anchor, "anchor_rating": anchor_rating}
    # the point estimate is the warm start of every round: Newton then needs 2–4 steps
    _, start = fit_cells(counts.models, counts.i, counts.j, counts.counts, l2=l2, **kwargs)  # type: ignore[arg-type]
    n = counts.n_battles
    flat = counts.counts.reshape(-1)
    probs = flat / flat.sum()
    draws = rng.multinomial(n, probs, size=rounds).astype(np.float64)
    k = len(counts.models)
    samples = np.empty((rounds, k))
    regularized = 0
    for r in range(rounds):
        resample = draws[r].reshape(counts.counts.shape)
        round_l2 = l2
        if l2 == 0:
            eff = _effective_counts(resample, ties, both_bad)
            if not _is_strongly_connected(k, counts.i, counts.j, eff):
                round_l2 = FALLBACK_L2
                regularized += 1
        fit, _ = fit_cells(
            counts.models,
            counts.i,
            counts.j,
            resample,
            l2=round_l2,
            start=start,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )
        samples[r] = fit.ratings
    seed_value = seed if isinstance(seed, int) else None
    return summarize_samples(
        counts.models,
        samples,
        confidence=confidence,
        seed=seed_value,
        regularized_rounds=regularized,
    )
