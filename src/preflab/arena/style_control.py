"""Style control: ratings with the effect of answer length and markdown taken out.

Following Chatbot Arena's style control (Li, Chiang et al., "Does style matter? Disentangling
style and substance in Chatbot Arena", LMSYS blog, Aug 2024; Chiang et al. 2024 §5 for the
covariate form of the Bradley–Terry model), each battle gets covariates for the difference
between the two answers in

* length (tokens in Arena logs; characters when computed here from text),
* markdown headers (``#`` … ``######`` at line start),
* list items (ordered ``1.`` and unordered ``-``/``*``/``+`` at line start),
* bold spans (``**x**`` or ``__x__``),

each as the normalized difference ``(a - b) / (a + b)`` (0 when both are 0), then
standardized over the battles. The fit is ``P(a beats b) = σ(θ_a - θ_b + zᵀγ)``; ``θ`` are the
style-controlled strengths and ``γ`` says how much each feature sways the votes. Fenced code
blocks are removed before counting, as in Arena's counting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from preflab.arena.battles import STYLE_COUNTS
from preflab.arena.bootstrap import BootstrapResult, summarize_samples
from preflab.arena.bradley_terry import (
    ELO_BASE,
    FALLBACK_L2,
    OUTCOMES,
    BothBadRule,
    RatingFit,
    TieRule,
    fit_cells,
)
from preflab.errors import InputError, UsageError

__all__ = [
    "MarkdownCounts",
    "add_style_features",
    "bootstrap_style_controlled",
    "count_markdown",
    "fit_style_controlled",
    "style_covariates",
]

_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


@dataclass(frozen=True, slots=True)
class MarkdownCounts:
    """Style counts of one answer."""

    length: int
    headers: int
    lists: int
    bold: int


def count_markdown(text: str | None) -> MarkdownCounts:
    """Return the length and markdown element counts of an answer (code blocks left out).

    >>> count_markdown("# Title\\n\\n- one\\n- **two**\\n1. three\\n```\\n# not a header\\n```")
    MarkdownCounts(length=56, headers=1, lists=3, bold=1)
    """
    text = text or ""
    prose = _CODE_BLOCK.sub("", text)
    return MarkdownCounts(
        length=len(text),
        headers=len(_HEADER.findall(prose)),
        lists=len(_LIST.findall(prose)),
        bold=len(_BOLD.findall(prose)),
    )


def add_style_features(battles: pl.DataFrame) -> pl.DataFrame:
    """Return the battles with ``style_<count>_a/b`` columns, computed from the response text.

    Columns already present (from an Arena log's ``conv_metadata``) are kept.

    Raises:
        InputError: neither style columns nor ``response_a`` / ``response_b`` text.
    """
    wanted = [f"style_{name}_{side}" for name in STYLE_COUNTS for side in ("a", "b")]
    if all(c in battles.columns for c in wanted):
        return battles
    if not {"response_a", "response_b"} <= set(battles.columns):
        raise InputError(
            "style control needs the answers' text (response_a, response_b) or style counts "
            f"({', '.join(wanted)}); this battle table has neither",
            field="response_a",
        )
    new: dict[str, list[int]] = {c: [] for c in wanted}
    for side in ("a", "b"):
        for text in battles.get_column(f"response_{side}").to_list():
            counts = count_markdown(text)
            for name in STYLE_COUNTS:
                new[f"style_{name}_{side}"].append(getattr(counts, name))
    return battles.with_columns(
        [pl.Series(c, v, dtype=pl.Float64) for c, v in new.items() if c not in battles.columns]
    )


def style_covariates(battles: pl.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return the standardized normalized-difference covariates and their names.

    A feature with no variation (e.g. no answer has bold text) is left out.
    """
    df = add_style_features(battles)
    columns: list[np.ndarray] = []
    names: list[str] = []
    for name in STYLE_COUNTS:
        a = df.get_column(f"style_{name}_a").fill_null(0).to_numpy().astype(np.float64)
        b = df.get_column(f"style_{name}_b").fill_null(0).to_numpy().astype(np.float64)
        total = a + b
        diff = np.divide(a - b, total, out=np.zeros_like(total), where=total > 0)
        sd = diff.std()
        if sd > 0:
            columns.append((diff - diff.mean()) / sd)
            names.append(name)
    x = np.column_stack(columns) if columns else np.zeros((df.height, 0))
    return x, tuple(names)


def _battle_cells(
    battles: pl.DataFrame,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    models = tuple(
        sorted(
            pl.concat([battles.get_column("model_a"), battles.get_column("model_b")])
            .unique()
            .to_list()
        )
    )
    enum = pl.Enum(list(models))
    codes = battles.select(
        pl.col("model_a").cast(enum).to_physical().alias("a"),
        pl.col("model_b").cast(enum).to_physical().alias("b"),
        pl.col("outcome")
        .replace_strict(list(OUTCOMES), list(range(4)), return_dtype=pl.Int64)
        .alias("o"),
    )
    i = codes.get_column("a").to_numpy().astype(np.int64)
    j = codes.get_column("b").to_numpy().astype(np.int64)
    counts = np.zeros((battles.height, 4))
    counts[np.arange(battles.height), codes.get_column("o").to_numpy()] = 1.0
    return models, i, j, counts


def fit_style_controlled(
    battles: pl.DataFrame,
    *,
    ties: TieRule = "half",
    both_bad: BothBadRule = "tie",
    anchor: str | None = None,
    anchor_rating: float = ELO_BASE,
    l2: float = 0.0,
) -> RatingFit:
    """Return Bradley–Terry ratings with style covariates (one cell per battle).

    Args:
        battles: battles with ``response_a``/``response_b`` or ``style_*`` columns.
        ties: the tie rule (all four rules work with covariates).
        both_bad: the both-bad rule.
        anchor: anchor model.
        anchor_rating: the anchor's rating.
        l2: ridge on the model strengths.

    Returns:
        The fit; ``coefficients`` holds ``γ`` per style feature (logit per standard deviation).
    """
    fit, _ = _fit(battles, None, ties, both_bad, anchor, anchor_rating, l2)
    return fit


def _fit(
    battles: pl.DataFrame,
    weights: np.ndarray | None,
    ties: TieRule,
    both_bad: BothBadRule,
    anchor: str | None,
    anchor_rating: float,
    l2: float,
    start: np.ndarray | None = None,
    prepared: tuple[
        tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]
    ]
    | None = None,
) -> tuple[RatingFit, np.ndarray]:
    if prepared is None:
        models, i, j, counts = _battle_cells(battles)
        x, names = style_covariates(battles)
    else:
        models, i, j, counts, x, names = prepared
    if weights is not None:
        counts = counts * weights[:, None]
    return fit_cells(
        models,
        i,
        j,
        counts,
        ties=ties,
        both_bad=both_bad,
        covariates=x,
        covariate_names=names,
        anchor=anchor,
        anchor_rating=anchor_rating,
        l2=l2,
        start=start,
        check=start is None,
    )


def bootstrap_style_controlled(
    battles: pl.DataFrame,
    *,
    rounds: int = 100,
    seed: int | np.random.Generator | None = 0,
    ties: TieRule = "half",
    both_bad: BothBadRule = "tie",
    anchor: str | None = None,
    anchor_rating: float = ELO_BASE,
    l2: float = 0.0,
    confidence: float = 0.95,
) -> tuple[RatingFit, BootstrapResult]:
    """Return the style-controlled fit and its bootstrap (per-battle multinomial weights).

    With covariates each battle is its own cell, so a round draws how many times each battle
    is picked (``multinomial(N, 1/N)``), which is resampling battles with replacement. Rounds
    use the ``FALLBACK_L2`` prior when ``l2`` is 0, so that a resample with an unbeaten model
    still has finite ratings; the count of such rounds is not tracked here.
    """
    if rounds < 2:
        raise UsageError(f"rounds must be at least 2, got {rounds}", field="rounds")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    models, i, j, counts = _battle_cells(battles)
    x, names = style_covariates(battles)
    prepared = (models, i, j, counts, x, names)
    args = (ties, both_bad, anchor, anchor_rating)
    point, start = _fit(battles, None, *args, l2, prepared=prepared)
    n = battles.height
    samples = np.empty((rounds, len(models)))
    round_l2 = l2 if l2 > 0 else FALLBACK_L2
    for r in range(rounds):
        weights = rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64)
        fit, _ = _fit(battles, weights, *args, round_l2, start=start, prepared=prepared)
        samples[r] = fit.ratings
    seed_value = seed if isinstance(seed, int) else None
    return point, summarize_samples(models, samples, confidence=confidence, seed=seed_value)
