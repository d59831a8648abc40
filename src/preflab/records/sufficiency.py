"""How much is enough: the usable pairs of a dataset against published rules of thumb.

The figures come from shared/reference/002 ("Preference Data", a practitioner's guide),
section "Data Quality vs. Quantity", under "Concrete numbers to orient around":

- "500–1,000 pairs: Minimum viable for DPO on a narrow task."
- "5,000–10,000 pairs: Solid for general-purpose DPO or reward model training."
- "Human gold set for eval: 500–1,000 high-quality pairs, separate from training data."

The same section says quality comes first ("a few thousand high-quality, well-annotated
preference pairs beats tens of thousands of noisy ones"), so the assessment puts agreement and
gold accuracy beside the counts, with the guide's agreement bands (section "Inter-Annotator
Agreement": below 0.40 "Don't use this data for training until you fix the guidelines").

This module sits with the records because the export card (``preflab.formats``), the audit
report (``preflab.audit``) and the CLI all show it, and DESIGN.md's layers let those share only
what lies below them. It takes an Arrow table of pairs and does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "EVAL_SPLITS",
    "GOLD_SPLIT",
    "RULES_OF_THUMB",
    "SOURCE",
    "RuleOfThumb",
    "assess_sufficiency",
]

SOURCE = ('shared/reference/002 "Preference Data", section "Data Quality vs. Quantity" '
          '("Concrete numbers to orient around")')
#: Splits held out for evaluation: their pairs do not count as training pairs.
EVAL_SPLITS = frozenset({"test", "validation", "valid", "eval", "dev"})
#: The split ``--gold-prompts`` holds out: the human gold set.
GOLD_SPLIT = "gold"


@dataclass(frozen=True, slots=True)
class RuleOfThumb:
    """One published figure: for ``use``, ``low``–``high`` pairs of the kind ``counts``."""

    use: str
    label: str
    low: int
    high: int
    counts: str  # "training" or "gold"
    quote: str


RULES_OF_THUMB: tuple[RuleOfThumb, ...] = (
    RuleOfThumb("dpo_narrow", "DPO on a narrow task", 500, 1_000, "training",
                "Minimum viable for DPO on a narrow task"),
    RuleOfThumb("dpo_general_or_reward_model", "general-purpose DPO or a reward model", 5_000, 10_000,
                "training", "Solid for general-purpose DPO or reward model training"),
    RuleOfThumb("gold_eval", "human gold set for evaluation", 500, 1_000, "gold",
                "high-quality pairs, separate from training data"),
)

# shared/reference/002, "Inter-Annotator Agreement": the verdicts that say "clean first"
_CLEAN_FIRST = {"fair": "the task is ambiguous or the guidelines need significant work",
                "poor": "don't use this data for training until you fix the guidelines"}


def _status(n: int, rule: RuleOfThumb) -> str:
    return "below" if n < rule.low else "within" if n < rule.high else "above"


def assess_sufficiency(
    pairs: pa.Table,
    *,
    unit: str = "pairs",
    agreement: Mapping[str, Any] | None = None,
    gold_accuracy: float | None = None,
    gold_judgments: int | None = None,
) -> dict[str, Any]:
    """Return the usable rows per use against :data:`RULES_OF_THUMB`, with agreement and gold.

    Training rows are those outside :data:`EVAL_SPLITS` and :data:`GOLD_SPLIT` (every row when
    the table has no ``split`` column); the gold set is the :data:`GOLD_SPLIT` split.

    Args:
        pairs: the usable pairs (optional columns ``split`` and ``agreement``, the share of an
            item's judgments agreeing with the pair).
        unit: ``pairs``, or ``unpaired rows`` (the guide's figures count pairs, so unpaired rows
            get counts but no verdict).
        agreement: a chance-corrected agreement figure, ``{"name", "value", "verdict"}`` (the
            audit's Krippendorff's alpha), when measured.
        gold_accuracy: share of gold items the judges got right, when measured.
        gold_judgments: how many judgments that accuracy rests on.

    Returns:
        A JSON-ready dict: counts per split, ``uses`` (one entry per rule of thumb with
        ``have``, ``low``, ``high``, ``status`` = below / within / above / n/a and ``short_by``),
        ``agreement``, ``gold_accuracy`` and ``advice`` in words.

    >>> t = pa.table({"split": ["train"] * 600 + ["test"] * 60, "agreement": [None] * 660})
    >>> [(u["use"], u["have"], u["status"]) for u in assess_sufficiency(t)["uses"]]
    [('dpo_narrow', 600, 'within'), ('dpo_general_or_reward_model', 600, 'below'), ('gold_eval', 0, 'below')]
    """
    n = pairs.num_rows
    by_split: dict[str, int] = {}
    if "split" in pairs.column_names and n:
        values = pc.fill_null(pairs.column("split"), "train")
        by_split = {r["values"]: r["counts"] for r in pc.value_counts(values).to_pylist()}
    else:
        by_split = {"train": n} if n else {}
    gold = by_split.get(GOLD_SPLIT, 0)
    held_out = sum(v for k, v in by_split.items() if k in EVAL_SPLITS)
    training = n - gold - held_out
    uses = []
    for rule in RULES_OF_THUMB:
        have = training if rule.counts == "training" else gold
        status = _status(have, rule) if unit == "pairs" else "n/a"
        uses.append({"use": rule.use, "label": rule.label, "low": rule.low, "high": rule.high,
                     "counts": f"{rule.counts} pairs", "have": have, "status": status,
                     "short_by": max(0, rule.low - have) if unit == "pairs" else None,
                     "quote": rule.quote})
    pair_agreement = _pair_agreement(pairs)
    return {
        "source": SOURCE,
        "unit": unit,
        "rows": n,
        "training": training,
        "held_out": held_out,
        "gold": gold,
        "by_split": by_split,
        "uses": uses,
        "pair_agreement": pair_agreement,
        "agreement": dict(agreement) if agreement else None,
        "gold_accuracy": gold_accuracy,
        "gold_judgments": gold_judgments,
        "advice": _advice(unit, uses, pair_agreement, agreement, gold_accuracy),
    }


def _pair_agreement(pairs: pa.Table) -> dict[str, Any]:
    """Return how many pairs rest on several judgments, how many of those were unanimous."""
    if "agreement" not in pairs.column_names or pairs.num_rows == 0:
        return {"multi_judged": 0, "unanimous": 0, "mean": None}
    a = pairs.column("agreement").drop_null()
    multi = len(a)
    if not multi:
        return {"multi_judged": 0, "unanimous": 0, "mean": None}
    unanimous = int(pc.sum(pc.greater_equal(a, 1.0)).as_py() or 0)
    return {"multi_judged": multi, "unanimous": unanimous, "mean": float(pc.mean(a).as_py())}


def _advice(
    unit: str,
    uses: list[dict[str, Any]],
    pair_agreement: Mapping[str, Any],
    agreement: Mapping[str, Any] | None,
    gold_accuracy: float | None,
) -> str:
    if unit != "pairs":
        return ("The guide's figures count preference pairs; these are unpaired rows, so no verdict "
                "is given (each pair unpaired gives two rows).")
    parts = []
    verdict = (agreement or {}).get("verdict")
    if verdict in _CLEAN_FIRST:
        parts.append(f"Clean before collecting more: agreement is {verdict} ({_CLEAN_FIRST[verdict]}).")
    if gold_accuracy is not None and gold_accuracy < 0.8:
        parts.append(f"Gold accuracy is {100 * gold_accuracy:.0f}%: recalibrate the judges on the gold "
                     "items before adding volume.")
    narrow, general, gold = uses
    if narrow["status"] == "below":
        parts.append(f"Collect more: {narrow['short_by']:,} more training pairs reach the minimum for DPO "
                     f"on a narrow task ({narrow['low']:,}).")
    elif general["status"] == "below":
        parts.append(f"Enough for DPO on a narrow task; {general['short_by']:,} more training pairs reach "
                     f"{general['low']:,}, the figure for general-purpose DPO or a reward model.")
    else:
        parts.append("Enough training pairs for general-purpose DPO or a reward model by the guide's figures.")
    if gold["status"] == "below":
        parts.append(f"Hold out a human gold set for evaluation: {gold['have']:,} of {gold['low']:,}–"
                     f"{gold['high']:,} (`--gold-prompts FILE` puts listed prompts in split 'gold').")
    if not pair_agreement["multi_judged"] and not agreement:
        parts.append("No pair was judged twice, so agreement is unmeasured: have a sample judged by two "
                     "or more annotators.")
    return " ".join(parts)
