"""Several judgments of one item → one outcome, with the agreement kept.

A pairwise item is a prompt and an unordered pair of responses ``(a, b)`` with ``a < b``. Each
judgment of it is a :class:`Vote` labelled ``a``, ``b``, ``tie`` or ``both_bad`` with its
strength normalized to ``[0, 1]`` (strength / the scale's largest strength). The aggregators
return an :class:`Outcome` per item:

- ``majority``: the most frequent label; ``a`` and ``b`` with equal counts make a tie.
  Margin = (votes for the winner − votes for the loser) / votes.
- ``mean_strength``: the mean signed strength (``+s`` for ``a``, ``−s`` for ``b``, 0 for tie and
  both-bad); zero means tie (or both-bad when both-bad votes outnumber tie votes). Margin = the
  absolute mean.
- ``dawid_skene``: Dawid & Skene (1979) EM over all items and judges at once, via crowd-kit
  (``pip install 'preflab[crowd]'``). Margin = the posterior probability of the winning label.

Agreement is the share of the item's judgments whose label equals the outcome's label.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from preflab.errors import DependencyError

__all__ = [
    "ItemKey",
    "Label",
    "Outcome",
    "Vote",
    "aggregate_dawid_skene",
    "aggregate_majority",
    "aggregate_mean_strength",
    "aggregate_votes",
]

Label = Literal["a", "b", "tie", "both_bad"]
ItemKey = tuple[str, str, str]
"""``(prompt_id, a, b)`` with response ids ``a < b``."""


@dataclass(frozen=True, slots=True)
class Vote:
    """One pairwise judgment of an item."""

    item: ItemKey
    judge_id: str
    judgment_id: str
    label: Label
    strength: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """The combined verdict on one item."""

    label: Label
    margin: float | None
    agreement: float


def _agreement(votes: Sequence[Vote], label: Label) -> float:
    return sum(v.label == label for v in votes) / len(votes)


def aggregate_majority(votes: Sequence[Vote]) -> Outcome:
    """Return the majority outcome of one item's votes.

    >>> v = [Vote(("p", "a", "b"), f"j{i}", f"x{i}", lab, 1.0) for i, lab in enumerate("aab")]
    >>> aggregate_majority(v)
    Outcome(label='a', margin=0.333..., agreement=0.666...)
    """
    counts = Counter(v.label for v in votes)
    top = max(counts.values())
    leaders = [lab for lab, c in counts.items() if c == top]
    if len(leaders) == 1:
        label: Label = leaders[0]
    elif set(leaders) == {"a", "b"} or "tie" in leaders:
        label = "tie"
    else:  # e.g. a winner level with both-bad: no clear verdict
        label = "tie"
    margin = None
    if label in ("a", "b"):
        loser: Label = "b" if label == "a" else "a"
        margin = (counts[label] - counts[loser]) / len(votes)
    return Outcome(label, margin, _agreement(votes, label))


def aggregate_mean_strength(votes: Sequence[Vote]) -> Outcome:
    """Return the outcome of one item from the mean signed strength of its votes.

    >>> v = [Vote(("p", "a", "b"), "j1", "x1", "a", 1.0), Vote(("p", "a", "b"), "j2", "x2", "b", 0.5)]
    >>> aggregate_mean_strength(v)
    Outcome(label='a', margin=0.25, agreement=0.5)
    """
    total = 0.0
    for v in votes:
        if v.label == "a":
            total += v.strength
        elif v.label == "b":
            total -= v.strength
    mean = total / len(votes)
    label: Label
    if abs(mean) < 1e-12:
        counts = Counter(v.label for v in votes)
        label = "both_bad" if counts["both_bad"] > counts["tie"] else "tie"
        return Outcome(label, None, _agreement(votes, label))
    label = "a" if mean > 0 else "b"
    return Outcome(label, abs(mean), _agreement(votes, label))


def aggregate_dawid_skene(votes: Iterable[Vote], *, n_iter: int = 100) -> dict[ItemKey, Outcome]:
    """Return Dawid–Skene outcomes for every item, fitted jointly over all judges.

    Raises:
        DependencyError: crowd-kit is not installed.
    """
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise DependencyError(
            "aggregate='dawid_skene' needs crowd-kit. Install it with "
            "`pip install 'preflab[crowd]'`, or use aggregate='majority' or 'mean_strength'."
        ) from exc
    votes = list(votes)
    by_item: dict[ItemKey, list[Vote]] = {}
    for v in votes:
        by_item.setdefault(v.item, []).append(v)
    keys = list(by_item)
    task_of = {k: i for i, k in enumerate(keys)}
    frame = pd.DataFrame(
        {
            "task": [task_of[v.item] for v in votes],
            "worker": [v.judge_id for v in votes],
            "label": [v.label for v in votes],
        }
    )
    model = DawidSkene(n_iter=n_iter)
    with warnings.catch_warnings():
        # crowd-kit still passes keywords pandas 3 deprecates (``inplace=``, ``copy=``)
        category = getattr(pd.errors, "Pandas4Warning", FutureWarning)
        warnings.filterwarnings("ignore", category=category)
        probas = model.fit_predict_proba(frame)
    out: dict[ItemKey, Outcome] = {}
    for key in keys:
        row = probas.loc[task_of[key]]
        label: Label = str(row.idxmax())  # type: ignore[assignment]
        margin = float(row[label]) if label in ("a", "b") else None
        out[key] = Outcome(label, margin, _agreement(by_item[key], label))
    return out


def aggregate_votes(
    votes: Iterable[Vote], method: Literal["majority", "mean_strength", "dawid_skene"]
) -> dict[ItemKey, tuple[Outcome, list[Vote]]]:
    """Group ``votes`` by item and return each item's outcome with the votes behind it."""
    by_item: dict[ItemKey, list[Vote]] = {}
    for v in votes:
        by_item.setdefault(v.item, []).append(v)
    if method == "dawid_skene":
        outcomes: Mapping[ItemKey, Outcome] = aggregate_dawid_skene(
            [v for vs in by_item.values() for v in vs]
        )
        return {k: (outcomes[k], vs) for k, vs in by_item.items()}
    fn = aggregate_majority if method == "majority" else aggregate_mean_strength
    return {k: (fn(vs), vs) for k, vs in by_item.items()}
