"""Which two models meet in the next arena battle.

:func:`choose_pair` draws one unordered pair of the given names with a named policy, then which
of the two is shown as A. The names are whatever identities the caller pairs: the live arena
pairs a project's *endpoints*, and counts their battles on the ``endpoint_a`` / ``endpoint_b``
columns of :func:`preflab.collect.battles.project_battles` (the leaderboard itself rates the
responses' ``model_a`` / ``model_b``). Policies:

* ``uniform`` — every pair equally likely (Chatbot Arena's default sampling).
* ``fewest_battles`` — weight ``1 / (1 + n)`` for a pair with ``n`` counted battles, so new and
  rare pairs come up first.
* ``widest_interval`` — weight ``w_i + w_j``, the widths of the two models' bootstrap rating
  intervals on the battles so far (:func:`~preflab.arena.report.build_leaderboard`), so votes go
  where the leaderboard is least sure, the idea of Chatbot Arena's active sampling (Chiang et al.
  2024, §5.2) in its simplest form. A name without battles gets the widest width found; with
  fewer than two names in battles, or battles that cannot be fitted (groups that never met),
  the draw is uniform.

Only battles that count on the leaderboard are counted: the table goes through
:func:`~preflab.arena.hygiene.apply_hygiene` (self battles, recorded exclusions, non-anonymous and
self-identifying votes) first. The draw is deterministic for a seeded ``random.Random``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import Literal, get_args

import polars as pl

from preflab.arena.hygiene import apply_hygiene
from preflab.errors import InputError

__all__ = [
    "PAIRING_L2",
    "PAIRING_POLICIES",
    "PAIRING_ROUNDS",
    "WIDTH_CAP",
    "PairingPolicy",
    "choose_pair",
    "pair_weights",
]

PairingPolicy = Literal["uniform", "fewest_battles", "widest_interval"]
#: The policy names, in the order the docs list them.
PAIRING_POLICIES: tuple[str, ...] = get_args(PairingPolicy)
#: Bootstrap rounds of the ``widest_interval`` policy's quick fit (seed 0, so the weights depend
#: on the battles only, never on the draw's random state).
PAIRING_ROUNDS = 50
#: Ridge of that quick fit: a weak prior (θ ~ N(0, 10) in natural-log units) so that a model
#: that has not lost (or won) yet gets a wide but finite interval instead of an unbounded one.
PAIRING_L2 = 0.1
#: Widest interval width counted (Elo points), a guard for degenerate fits.
WIDTH_CAP = 2000.0


def _names(models: Sequence[str]) -> list[str]:
    if isinstance(models, str):
        raise InputError("models must be a list of names, not one string", field="models")
    names = set()
    for n, name in enumerate(models):
        if not isinstance(name, str) or not name.strip():
            raise InputError(
                f"models[{n}] is {name!r}; every model (endpoint) needs a non-empty name",
                field=f"models[{n}]",
                value=name,
            )
        names.add(name)
    if len(names) < 2:
        raise InputError(
            f"an arena battle needs at least 2 distinct models, got {sorted(names)}; "
            "add or enable another endpoint",
            field="models",
            value=sorted(names),
        )
    return sorted(names)


def _counted(battles: pl.DataFrame, columns: tuple[str, str]) -> pl.DataFrame:
    """Return the rows that count on the leaderboard, as ``model_a``/``model_b`` of ``columns``."""
    missing = [c for c in columns if c not in battles.columns]
    if missing:
        raise InputError(
            f"the battle table has no {missing[0]!r} column (columns: {battles.columns[:12]}); "
            "pairs are counted on it",
            field=missing[0],
        )
    df = battles
    if {"model_a", "model_b", "outcome"} <= set(df.columns):
        df, _ = apply_hygiene(df)
    if columns != ("model_a", "model_b"):
        df = df.drop([c for c in ("model_a", "model_b") if c in df.columns]).rename(
            {columns[0]: "model_a", columns[1]: "model_b"}
        )
    return df.filter(
        pl.col("model_a").is_not_null()
        & pl.col("model_b").is_not_null()
        & (pl.col("model_a") != pl.col("model_b"))
    )


def _default_columns(battles: pl.DataFrame | None) -> tuple[str, str]:
    if battles is not None and {"endpoint_a", "endpoint_b"} <= set(battles.columns):
        return ("endpoint_a", "endpoint_b")
    return ("model_a", "model_b")


def _pair_counts(df: pl.DataFrame, names: list[str]) -> dict[tuple[str, str], int]:
    inside = df.filter(pl.col("model_a").is_in(names) & pl.col("model_b").is_in(names))
    pairs = inside.select(
        pl.min_horizontal("model_a", "model_b").alias("lo"),
        pl.max_horizontal("model_a", "model_b").alias("hi"),
    ).group_by("lo", "hi").len()
    return {(lo, hi): int(n) for lo, hi, n in pairs.iter_rows()}


def _interval_widths(df: pl.DataFrame, names: list[str]) -> dict[str, float] | None:
    """Return each name's interval width, or None when the battles cannot be fitted."""
    from preflab.arena.report import build_leaderboard

    inside = df.filter(pl.col("model_a").is_in(names) & pl.col("model_b").is_in(names))
    seen = set(inside.get_column("model_a").to_list()) | set(inside.get_column("model_b").to_list())
    if len(seen) < 2:
        return None
    try:
        board = build_leaderboard(
            inside.select("model_a", "model_b", "outcome"),
            rounds=PAIRING_ROUNDS,
            seed=0,
            l2=PAIRING_L2,
            hygiene=False,  # already applied by _counted
        )
    except InputError:  # e.g. groups of models that never battled each other
        return None
    widths = {
        r.model: min(WIDTH_CAP, r.ci_high - r.ci_low)
        if math.isfinite(r.ci_high - r.ci_low)
        else WIDTH_CAP
        for r in board.rows
    }
    widest = max(widths.values())
    return {name: widths.get(name, widest) for name in names}


def pair_weights(
    models: Sequence[str],
    battles: pl.DataFrame | None,
    policy: PairingPolicy = "uniform",
    *,
    columns: tuple[str, str] | None = None,
) -> dict[tuple[str, str], float]:
    """Return the draw weight of every unordered pair of ``models`` under ``policy``.

    Args:
        models: the names to pair (at least 2 distinct).
        battles: the battles so far (a battle table), or None for none.
        policy: ``uniform``, ``fewest_battles`` or ``widest_interval``.
        columns: the two columns naming the sides in ``battles``; default ``endpoint_a`` /
            ``endpoint_b`` when the table has them, else ``model_a`` / ``model_b``.

    Returns:
        ``{(name_1, name_2): weight}`` with ``name_1 < name_2``; weights sum to 1.

    Raises:
        InputError: fewer than 2 distinct names, an empty name, an unknown policy, or a battle
            table without the named columns.

    >>> import polars as pl
    >>> b = pl.DataFrame({"model_a": ["x", "y", "x"], "model_b": ["y", "x", "y"],
    ...                   "outcome": ["a", "b", "tie"]})
    >>> pair_weights(["x", "y", "z"], b, "fewest_battles")  # raw 1/4, 1, 1
    {('x', 'y'): 0.1111111111111111, ('x', 'z'): 0.4444444444444444, ('y', 'z'): 0.4444444444444444}
    """
    names = _names(models)
    if policy not in PAIRING_POLICIES:
        raise InputError(
            f"arena policy {policy!r} is not one of {list(PAIRING_POLICIES)}",
            field="arena_policy",
            value=policy,
        )
    pairs = list(itertools.combinations(names, 2))
    raw = [1.0] * len(pairs)
    if battles is not None and battles.height and policy != "uniform":
        df = _counted(battles, columns or _default_columns(battles))
        if policy == "fewest_battles":
            counts = _pair_counts(df, names)
            raw = [1.0 / (1.0 + counts.get(p, 0)) for p in pairs]
        else:
            widths = _interval_widths(df, names)
            if widths is not None:
                summed = [widths[a] + widths[b] for a, b in pairs]
                if sum(summed) > 0:
                    raw = summed
    total = sum(raw)
    return {p: w / total for p, w in zip(pairs, raw, strict=True)}


def choose_pair(
    models: Sequence[str],
    battles: pl.DataFrame | None,
    policy: PairingPolicy = "uniform",
    rng: random.Random | None = None,
    *,
    columns: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """Return the two names of the next battle, in the order shown (A, B).

    The pair is drawn with :func:`pair_weights`; which of the two is A is a coin flip, so no
    model keeps one side.

    Args:
        models: the names to pair (at least 2 distinct; order and repeats do not matter).
        battles: the battles so far (a battle table), or None.
        policy: ``uniform``, ``fewest_battles`` or ``widest_interval``.
        rng: the random source; a seeded ``random.Random`` gives the same pair every time.
        columns: see :func:`pair_weights`.

    Returns:
        ``(a, b)``, two distinct names of ``models``.

    Raises:
        InputError: see :func:`pair_weights`.

    >>> import random
    >>> choose_pair(["x", "y"], None, "uniform", random.Random(0)) in {("x", "y"), ("y", "x")}
    True
    """
    weights = pair_weights(models, battles, policy, columns=columns)
    rng = rng if rng is not None else random.Random()
    pairs = list(weights)
    a, b = rng.choices(pairs, weights=[weights[p] for p in pairs], k=1)[0]
    return (b, a) if rng.random() < 0.5 else (a, b)
