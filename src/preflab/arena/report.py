"""The leaderboard: fit, bootstrap, optional style control, and the numbers the views show.

:func:`build_leaderboard` is the one call the CLI (and later the web app) makes; it returns a
:class:`Leaderboard` that :func:`leaderboard_to_dict` turns into JSON and
:func:`preflab.arena.page.render_leaderboard_html` into a page. Every rating comes with its
bootstrap interval and rank interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from preflab.arena.bootstrap import (
    DEFAULT_ROUNDS,
    BootstrapResult,
    bootstrap_ratings,
    format_rank_interval,
)
from preflab.arena.bradley_terry import (
    ELO_BASE,
    ELO_SCALE,
    BothBadRule,
    PairCounts,
    RatingFit,
    TieRule,
    _check_rules,
    aggregate_battles,
    fit_cells,
)
from preflab.arena.hygiene import HygieneSummary, apply_hygiene
from preflab.arena.style_control import bootstrap_style_controlled
from preflab.errors import InputError

__all__ = ["Leaderboard", "ModelRow", "build_leaderboard", "leaderboard_to_dict"]


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One model's line on the leaderboard."""

    model: str
    rating: float
    ci_low: float
    ci_high: float
    rank: int
    rank_low: int
    rank_high: int
    battles: int
    wins: float
    losses: float
    ties: float

    @property
    def rank_interval(self) -> str:
        """Return the rank interval as text (``"2–4"``)."""
        return format_rank_interval(self.rank_low, self.rank_high)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rating": self.rating,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "rank": self.rank,
            "rank_low": self.rank_low,
            "rank_high": self.rank_high,
            "rank_interval": self.rank_interval,
            "battles": self.battles,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
        }


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """Ratings with intervals, pair matrices and how they were made.

    Attributes:
        rows: model rows, best first.
        models: model names in matrix order (same order as ``rows``).
        battle_counts: ``K × K`` battles per pair.
        win_rate: ``K × K`` observed share of battles the row model won (ties half); NaN where
            the pair never met.
        predicted_win: ``K × K`` Bradley–Terry probability that the row model wins (ties half).
        prob_stronger: ``K × K`` bootstrap share of rounds with the row model rated higher.
        fit: the point fit.
        bootstrap: the bootstrap result.
        style_rows: rows of the style-controlled fit, when asked.
        style_fit: the style-controlled fit.
        hygiene: what the hygiene filters dropped.
        settings: the options used (tie rule, anchor, rounds, seed…).
    """

    rows: tuple[ModelRow, ...]
    models: tuple[str, ...]
    battle_counts: np.ndarray
    win_rate: np.ndarray
    predicted_win: np.ndarray
    prob_stronger: np.ndarray
    fit: RatingFit
    bootstrap: BootstrapResult
    style_rows: tuple[ModelRow, ...] | None = None
    style_fit: RatingFit | None = None
    hygiene: HygieneSummary | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _rows(
    fit: RatingFit, boot: BootstrapResult, counts: PairCounts, order: np.ndarray | None = None
) -> tuple[ModelRow, ...]:
    k = len(fit.models)
    c = counts.counts
    wins = np.bincount(counts.i, c[:, 0], k) + np.bincount(counts.j, c[:, 1], k)
    losses = np.bincount(counts.i, c[:, 1], k) + np.bincount(counts.j, c[:, 0], k)
    ties = np.bincount(counts.i, c[:, 2] + c[:, 3], k) + np.bincount(counts.j, c[:, 2] + c[:, 3], k)
    rank = 1 + (fit.ratings[None, :] > fit.ratings[:, None]).sum(axis=1)
    if order is None:
        order = np.argsort(-fit.ratings, kind="stable")
    return tuple(
        ModelRow(
            model=fit.models[m],
            rating=float(fit.ratings[m]),
            ci_low=float(boot.ci_low[m]),
            ci_high=float(boot.ci_high[m]),
            rank=int(rank[m]),
            rank_low=int(boot.rank_low[m]),
            rank_high=int(boot.rank_high[m]),
            battles=int(wins[m] + losses[m] + ties[m]),
            wins=float(wins[m]),
            losses=float(losses[m]),
            ties=float(ties[m]),
        )
        for m in order
    )


def build_leaderboard(
    battles: pl.DataFrame | pa.Table,
    *,
    ties: TieRule = "half",
    both_bad: BothBadRule = "tie",
    anchor: str | None = None,
    anchor_rating: float = ELO_BASE,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    confidence: float = 0.95,
    l2: float = 0.0,
    style_control: bool = False,
    hygiene: bool = True,
    require_anonymous: bool = True,
    drop_self_identified: bool = True,
    max_votes_per_judge: int | None = None,
) -> Leaderboard:
    """Return the leaderboard of a battle table: hygiene, fit, bootstrap, matrices.

    Args:
        battles: the battle table (see :mod:`preflab.arena.battles`).
        ties: tie rule (``half``, ``drop``, ``rao_kupper``, ``davidson``).
        both_bad: count both-bad votes as ties or drop them.
        anchor: model fixed at ``anchor_rating``.
        anchor_rating: the anchor's rating (or the mean without an anchor).
        rounds: bootstrap rounds.
        seed: bootstrap seed.
        confidence: interval coverage.
        l2: ridge on the strengths (0: maximum likelihood).
        style_control: also fit with style covariates (needs answer text or style counts).
        hygiene: run :func:`~preflab.arena.hygiene.apply_hygiene` first.
        require_anonymous: hygiene: drop non-anonymous votes.
        drop_self_identified: hygiene: drop votes whose answers name a model.
        max_votes_per_judge: hygiene: per-judge cap.

    Returns:
        The leaderboard.
    """
    _check_rules(ties, both_bad)
    df = battles if isinstance(battles, pl.DataFrame) else pl.from_arrow(battles)
    assert isinstance(df, pl.DataFrame)
    summary = None
    if hygiene:
        df, summary = apply_hygiene(
            df,
            require_anonymous=require_anonymous,
            drop_self_identified=drop_self_identified,
            max_votes_per_judge=max_votes_per_judge,
        )
    if df.height == 0:
        dropped = (
            "; ".join(f"{st.name} dropped {st.dropped}" for st in summary.steps if st.dropped)
            if summary
            else ""
        )
        raise InputError(
            "no battles left to rate"
            + (
                f" after hygiene ({dropped}); the filters can be turned off "
                "(require_anonymous=False, --keep-non-anonymous, …)"
                if dropped
                else ""
            ),
            field="model_a",
        )
    counts = aggregate_battles(df)
    opts = {"ties": ties, "both_bad": both_bad, "anchor": anchor, "anchor_rating": anchor_rating}
    fit, _ = fit_cells(counts.models, counts.i, counts.j, counts.counts, l2=l2, **opts)  # type: ignore[arg-type]
    boot = bootstrap_ratings(
        counts,
        rounds=rounds,
        seed=seed,
        l2=l2,
        confidence=confidence,
        **opts,  # type: ignore[arg-type]
    )
    rows = _rows(fit, boot, counts)
    order = np.array([fit.models.index(r.model) for r in rows])
    style_rows = style_fit = None
    if style_control:
        style_fit, style_boot = bootstrap_style_controlled(
            df,
            rounds=rounds,
            seed=seed,
            l2=l2,
            confidence=confidence,
            **opts,  # type: ignore[arg-type]
        )
        style_rows = _rows(style_fit, style_boot, counts)
    games = counts.matrix(0) + counts.matrix(1) + counts.matrix(2) + counts.matrix(3)
    half_wins = counts.matrix(0) + 0.5 * (counts.matrix(2) + counts.matrix(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = np.where(games > 0, half_wins / games, np.nan)
    diff = (fit.ratings[:, None] - fit.ratings[None, :]) * math.log(10.0) / ELO_SCALE
    predicted = 1.0 / (1.0 + np.exp(-diff))
    ix = np.ix_(order, order)
    settings = {
        "ties": ties,
        "both_bad": both_bad,
        "anchor": anchor,
        "anchor_rating": anchor_rating,
        "rounds": rounds,
        "seed": seed,
        "confidence": confidence,
        "l2": l2,
        "style_control": style_control,
        "battles": counts.n_battles,
        "models": len(counts.models),
    }
    return Leaderboard(
        rows=rows,
        models=tuple(r.model for r in rows),
        battle_counts=games[ix],
        win_rate=win_rate[ix],
        predicted_win=predicted[ix],
        prob_stronger=boot.prob_stronger[ix],
        fit=fit,
        bootstrap=boot,
        style_rows=style_rows,
        style_fit=style_fit,
        hygiene=summary,
        settings=settings,
    )


def _matrix(values: np.ndarray, digits: int = 4) -> list[list[float | None]]:
    return [[None if math.isnan(v) else round(float(v), digits) for v in row] for row in values]


def leaderboard_to_dict(board: Leaderboard) -> dict[str, Any]:
    """Return the leaderboard as plain JSON-ready data (ratings always with intervals)."""
    out: dict[str, Any] = {
        "settings": dict(board.settings),
        "models": list(board.models),
        "ratings": [r.to_dict() for r in board.rows],
        "tie_parameter": board.fit.tie_parameter,
        "bootstrap": {
            "rounds": board.bootstrap.rounds,
            "seed": board.bootstrap.seed,
            "confidence": board.bootstrap.confidence,
            "regularized_rounds": board.bootstrap.regularized_rounds,
        },
        "battle_counts": _matrix(board.battle_counts, 0),
        "win_rate": _matrix(board.win_rate),
        "predicted_win": _matrix(board.predicted_win),
        "prob_stronger": _matrix(board.prob_stronger),
        "hygiene": board.hygiene.to_dict() if board.hygiene else None,
    }
    if board.style_rows is not None and board.style_fit is not None:
        out["style_control"] = {
            "ratings": [r.to_dict() for r in board.style_rows],
            "coefficients": dict(board.style_fit.coefficients),
        }
    return out
