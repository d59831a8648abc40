"""Vote hygiene: drop votes that cannot count, and say what was dropped and why.

Filters (each one a named step in the :class:`HygieneSummary`):

* ``self_battle`` — a model against itself says nothing about its rating.
* ``excluded`` — votes the live arena stored but excluded, with the reason recorded in an
  ``excluded_reason`` column (:data:`RECORDED_REASONS`); this step exists only for tables
  with that column, and its note counts the votes per reason.
* ``non_anonymous`` — votes cast after the model names were shown (Chatbot Arena's
  ``anony == False``); the Arena leaderboard counts anonymous battles only (Chiang et al. 2024,
  §3: "only the votes cast when model names are hidden").
* ``self_identified`` — a response names its own model or the other side's (by full name,
  family name or maker, e.g. "I am Claude", "as ChatGPT", "trained by Anthropic"), which breaks
  anonymity from inside the answer. Family words common in prose ("command", "falcon"…) are
  not used; more terms per model can be given.
* ``judge_cap`` — at most ``max_votes_per_judge`` votes per judge (the first ones in table
  order), so one prolific judge cannot steer the ratings; the Arena applies a similar per-user
  rate cap against vote stuffing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

__all__ = [
    "RECORDED_REASONS",
    "FilterStep",
    "HygieneSummary",
    "apply_hygiene",
    "identity_terms",
]

# Family words too common in ordinary prose to signal a model's identity.
_COMMON_WORDS = frozenset(
    {
        "command",
        "chat",
        "instruct",
        "model",
        "base",
        "large",
        "small",
        "mini",
        "text",
        "open",
        "code",
        "the",
        "dolly",
        "alpaca",
        "falcon",
        "phoenix",
        "guanaco",
        "koala",
    }
)

# Names a model family goes by in its own answers besides its model name.
_FAMILY_ALIASES: dict[str, tuple[str, ...]] = {
    "gpt": ("chatgpt", "openai"),
    "claude": ("anthropic",),
    "gemini": ("bard",),
}


@dataclass(frozen=True, slots=True)
class FilterStep:
    """One hygiene filter: how many votes it dropped, and why (or why it could not run)."""

    name: str
    reason: str
    dropped: int
    applied: bool = True
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reason": self.reason,
            "dropped": self.dropped,
            "applied": self.applied,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class HygieneSummary:
    """What the hygiene filters did."""

    rows_in: int
    rows_out: int
    steps: tuple[FilterStep, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "steps": [s.to_dict() for s in self.steps],
        }


def identity_terms(model: str) -> list[str]:
    """Return the words that would reveal ``model`` in an answer: name, family, maker.

    >>> identity_terms("claude-3-opus-20240229")
    ['claude-3-opus-20240229', 'claude', 'anthropic']
    >>> identity_terms("command-r-plus")
    ['command-r-plus']
    """
    terms = [model]
    family = re.match(r"[A-Za-z]{3,}", model)
    if family and family.group(0).lower() not in _COMMON_WORDS:
        word = family.group(0).lower()
        if word != model.lower():
            terms.append(word)
        terms.extend(_FAMILY_ALIASES.get(word, ()))
    return terms


def _identity_pattern(terms: Sequence[str]) -> str:
    parts = []
    for term in terms:
        # separators in model names are written variously ("gpt-4", "GPT 4", "gpt4")
        pieces = [re.escape(p) for p in re.split(r"[-_\s.]+", term) if p]
        parts.append(r"[-_\s.]?".join(pieces))
    return r"(?i)\b(?:" + "|".join(parts) + r")\b"


#: Reasons the live arena records on a vote it keeps but excludes
#: (``live_conversations.excluded_reason``), and the filter each one stands for: turning that
#: filter off keeps the votes of that reason too.
RECORDED_REASONS: dict[str, str] = {
    "names_seen_before_vote": "non_anonymous",
    "answer_names_model": "self_identified",
}


def _drop_recorded(
    df: pl.DataFrame, require_anonymous: bool, drop_self_identified: bool
) -> tuple[pl.DataFrame, FilterStep]:
    """Drop the votes excluded when they were stored (an ``excluded_reason`` is set)."""
    off = {
        "non_anonymous": not require_anonymous,
        "self_identified": not drop_self_identified,
    }
    kept_reasons = [r for r, step in RECORDED_REASONS.items() if off[step]]
    # a battle file whose reasons are all empty reads back as a column of nulls (no type)
    reasons = pl.col("excluded_reason").cast(pl.String)
    drop = (reasons.is_not_null() & (reasons != "") & ~reasons.is_in(kept_reasons)).fill_null(
        False
    )
    mask = df.select(drop.alias("m")).get_column("m")
    counts = (
        df.filter(mask)
        .group_by(reasons.alias("reason"))
        .len()
        .sort(["len", "reason"], descending=[True, False])
    )
    note = ", ".join(f"{r}: {n}" for r, n in counts.iter_rows())
    if kept_reasons:
        note = "; ".join(x for x in (note, f"kept by request: {', '.join(kept_reasons)}") if x)
    step = FilterStep("excluded", "excluded when the vote was stored", int(mask.sum()), note=note)
    return df.filter(~mask), step


def apply_hygiene(
    battles: pl.DataFrame,
    *,
    require_anonymous: bool = True,
    drop_self_identified: bool = True,
    max_votes_per_judge: int | None = None,
    extra_identity_terms: Mapping[str, Sequence[str]] | None = None,
) -> tuple[pl.DataFrame, HygieneSummary]:
    """Return the battles that pass the hygiene filters and a summary of what was dropped.

    A filter whose column is missing is reported as not applied (with the reason), never
    silently skipped.

    Args:
        battles: the battle table.
        require_anonymous: drop votes with ``is_anonymous == False`` (null counts as unknown
            and is kept), and votes recorded as ``names_seen_before_vote``.
        drop_self_identified: drop votes where ``response_a`` or ``response_b`` names either
            model of the battle, and votes recorded as ``answer_names_model``.
        max_votes_per_judge: keep at most this many votes per ``judge_id`` (None: no cap).
        extra_identity_terms: more words per model that reveal it (``{"gpt-4": ["ChatGPT"]}``).

    Returns:
        The kept battles and the summary.

    >>> import polars as pl
    >>> df = pl.DataFrame({"model_a": ["x", "x", "y"], "model_b": ["y", "x", "x"],
    ...                    "outcome": ["a", "a", "b"], "is_anonymous": [True, True, False]})
    >>> kept, summary = apply_hygiene(df)
    >>> kept.height, [(s.name, s.dropped) for s in summary.steps if s.applied]
    (1, [('self_battle', 1), ('non_anonymous', 1)])
    """
    rows_in = battles.height
    steps: list[FilterStep] = []
    df = battles

    same = df.get_column("model_a") == df.get_column("model_b")
    steps.append(FilterStep("self_battle", "a model battling itself", int(same.sum())))
    df = df.filter(~same)

    if "excluded_reason" in df.columns:
        df, step = _drop_recorded(df, require_anonymous, drop_self_identified)
        steps.append(step)

    reason = "vote cast after the model names were shown"
    if not require_anonymous:
        steps.append(FilterStep("non_anonymous", reason, 0, applied=False, note="turned off"))
    elif "is_anonymous" not in df.columns:
        steps.append(
            FilterStep("non_anonymous", reason, 0, applied=False, note="no is_anonymous column")
        )
    else:
        named = df.get_column("is_anonymous") == False  # noqa: E712 (null stays null)
        named = named.fill_null(False)
        unknown = int(df.get_column("is_anonymous").is_null().sum())
        note = f"{unknown} votes of unknown anonymity kept" if unknown else ""
        steps.append(FilterStep("non_anonymous", reason, int(named.sum()), note=note))
        df = df.filter(~named)

    reason = "a response names its own model or its opponent"
    if not drop_self_identified:
        steps.append(FilterStep("self_identified", reason, 0, applied=False, note="turned off"))
    elif not {"response_a", "response_b"} <= set(df.columns):
        steps.append(
            FilterStep(
                "self_identified", reason, 0, applied=False, note="no response_a/response_b text"
            )
        )
    else:
        extra = extra_identity_terms or {}
        indexed = df.select(
            pl.int_range(pl.len()).alias("_row"),
            "model_a",
            "model_b",
            pl.col("response_a").fill_null(""),
            pl.col("response_b").fill_null(""),
        )
        models = set(df.get_column("model_a").unique()) | set(df.get_column("model_b").unique())
        hits: list[pl.Series] = []
        for model in sorted(models):
            # scan only the battles this model is in: each answer is read twice, not K times
            pattern = _identity_pattern([*identity_terms(model), *extra.get(model, ())])
            rows = indexed.filter((pl.col("model_a") == model) | (pl.col("model_b") == model))
            naming = rows.filter(
                pl.col("response_a").str.contains(pattern)
                | pl.col("response_b").str.contains(pattern)
            )
            hits.append(naming.get_column("_row"))
        flagged_rows = pl.concat(hits) if hits else pl.Series("_row", [], pl.Int64)
        mask = indexed.get_column("_row").is_in(flagged_rows.implode())
        steps.append(FilterStep("self_identified", reason, int(mask.sum())))
        df = df.filter(~mask)

    reason = f"more than {max_votes_per_judge} votes from one judge (first ones kept)"
    if max_votes_per_judge is None:
        steps.append(FilterStep("judge_cap", "per-judge vote cap", 0, applied=False, note="no cap"))
    elif "judge_id" not in df.columns:
        steps.append(FilterStep("judge_cap", reason, 0, applied=False, note="no judge_id column"))
    else:
        position = pl.int_range(pl.len()).over("judge_id")
        over = df.select(
            ((position >= max_votes_per_judge) & pl.col("judge_id").is_not_null()).alias("m")
        ).get_column("m")
        capped = df.filter(over).get_column("judge_id").n_unique()
        steps.append(
            FilterStep(
                "judge_cap",
                reason,
                int(over.sum()),
                note=f"{capped} judges capped" if capped else "",
            )
        )
        df = df.filter(~over)

    return df, HygieneSummary(rows_in=rows_in, rows_out=df.height, steps=tuple(steps))
