"""preflab.arena: Bradley–Terry leaderboards with honest uncertainty.

A library over a battle table (``model_a``, ``model_b``, ``outcome`` in ``a``/``b``/``tie``/
``both_bad``, optional judge, prompt, anonymity, answer text and style counts):

* :func:`read_battles`, :func:`normalize_battles`, :func:`battles_from_judgments` — battle tables;
* :func:`apply_hygiene` — drop non-anonymous, self-identifying and over-cap votes, with a summary;
* :func:`aggregate_battles`, :func:`fit_bradley_terry` — the fit on aggregated counts;
* :func:`bootstrap_ratings` — intervals, rank intervals, P(stronger);
* :func:`fit_style_controlled` — ratings with length/markdown covariates;
* :func:`build_leaderboard`, :func:`leaderboard_to_dict`, :func:`render_leaderboard_html`;
* :func:`choose_pair`, :func:`pair_weights` — which two models meet next (live arena).

Takes tables, never a database session.

Names are imported on first use (PEP 562): SciPy and Polars load only when needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflab.arena.battles import (
        ANONYMOUS_FLAG,
        ARENA_WINNERS,
        NON_ANONYMOUS_FLAGS,
        battles_from_judgments,
        normalize_battles,
        read_battles,
    )
    from preflab.arena.bootstrap import BootstrapResult, bootstrap_ratings, rank_intervals
    from preflab.arena.bradley_terry import (
        ELO_BASE,
        ELO_SCALE,
        OUTCOMES,
        BothBadRule,
        PairCounts,
        RatingFit,
        TieRule,
        aggregate_battles,
        fit_bradley_terry,
    )
    from preflab.arena.hygiene import FilterStep, HygieneSummary, apply_hygiene
    from preflab.arena.page import render_leaderboard_html, render_leaderboard_sections
    from preflab.arena.pairing import PAIRING_POLICIES, PairingPolicy, choose_pair, pair_weights
    from preflab.arena.report import Leaderboard, ModelRow, build_leaderboard, leaderboard_to_dict
    from preflab.arena.style_control import (
        add_style_features,
        bootstrap_style_controlled,
        count_markdown,
        fit_style_controlled,
    )

__all__ = [
    "ANONYMOUS_FLAG",
    "ARENA_WINNERS",
    "ELO_BASE",
    "ELO_SCALE",
    "NON_ANONYMOUS_FLAGS",
    "OUTCOMES",
    "PAIRING_POLICIES",
    "BootstrapResult",
    "BothBadRule",
    "FilterStep",
    "HygieneSummary",
    "Leaderboard",
    "ModelRow",
    "PairCounts",
    "PairingPolicy",
    "RatingFit",
    "TieRule",
    "add_style_features",
    "aggregate_battles",
    "apply_hygiene",
    "battles_from_judgments",
    "bootstrap_ratings",
    "bootstrap_style_controlled",
    "build_leaderboard",
    "choose_pair",
    "count_markdown",
    "fit_bradley_terry",
    "fit_style_controlled",
    "leaderboard_to_dict",
    "normalize_battles",
    "pair_weights",
    "rank_intervals",
    "read_battles",
    "render_leaderboard_html",
    "render_leaderboard_sections",
]

_EXPORTS = {
    "battles": (
        "ANONYMOUS_FLAG",
        "ARENA_WINNERS",
        "NON_ANONYMOUS_FLAGS",
        "battles_from_judgments",
        "normalize_battles",
        "read_battles",
    ),
    "bootstrap": ("BootstrapResult", "bootstrap_ratings", "rank_intervals"),
    "bradley_terry": (
        "ELO_BASE",
        "ELO_SCALE",
        "OUTCOMES",
        "BothBadRule",
        "PairCounts",
        "RatingFit",
        "TieRule",
        "aggregate_battles",
        "fit_bradley_terry",
    ),
    "hygiene": ("FilterStep", "HygieneSummary", "apply_hygiene"),
    "page": ("render_leaderboard_html", "render_leaderboard_sections"),
    "pairing": ("PAIRING_POLICIES", "PairingPolicy", "choose_pair", "pair_weights"),
    "report": ("Leaderboard", "ModelRow", "build_leaderboard", "leaderboard_to_dict"),
    "style_control": (
        "add_style_features",
        "bootstrap_style_controlled",
        "count_markdown",
        "fit_style_controlled",
    ),
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
