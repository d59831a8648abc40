"""PKU-SafeRLHF (Ji et al. 2023, "BeaverTails", arXiv:2307.04657; Ji et al. 2024,
"PKU-SafeRLHF", arXiv:2406.15513; PKU-Alignment/PKU-SafeRLHF on the HF Hub).

One row compares two answers to one prompt on **two** preferences, as the dataset card and
PKU-Alignment/safe-rlhf (``safe_rlhf/datasets/raw/safe_rlhf.py``) read it:

- ``better_response_id`` (0 or 1): the more **helpful** answer;
- ``safer_response_id`` (0 or 1): the more **harmless** answer;
- ``is_response_0_safe``, ``is_response_1_safe``: a safety label per answer.

Both published layouts are read, told apart row by row:

- the original (2023) layout: ``prompt``, ``response_0``, ``response_1``,
  ``is_response_0_safe``, ``is_response_1_safe``, ``better_response_id``,
  ``safer_response_id``;
- the current (2024, ``data/<model>/{train,test}.jsonl``) layout adds ``prompt_source``,
  ``response_0_source``/``response_1_source`` (the model that wrote the answer),
  ``response_0_harm_category``/``response_1_harm_category`` (an object of 19 harm categories →
  true/false), ``response_0_severity_level``/``response_1_severity_level`` (0–3) and
  ``response_0_sha256``/``response_1_sha256`` (not used).

Each row becomes one **prompt** (one ``user`` message, tagged ``prompt_source:<source>`` when
given), two **responses** (``origin="model"``, ``model`` = ``response_<i>_source`` when given)
and, as chosen by ``preferences`` and ``safety_labels``:

- judge ``pku-saferlhf/helpfulness``: a **pairwise** judgment (2-point) preferring
  ``better_response_id``;
- judge ``pku-saferlhf/harmlessness``: a **pairwise** judgment (2-point) preferring
  ``safer_response_id``;
- judge ``pku-saferlhf/safety``: one **binary** judgment per answer, ``label`` =
  ``is_response_<i>_safe``, ``reasons`` = ``harm:<category>`` for each category marked true and
  ``severity:<level>`` when the row has one.

``response_ids`` are (response 0, response 1) and the pairwise judgments are flagged
``order_unknown`` (the files do not say which answer was shown first).

How a derive selects one preference: the two preferences are two judges of the same item, so
``preflab derive``/``export`` with the default ``--aggregate none`` makes a pair from each (two
pairs per row, opposite when the preferences disagree); ``--aggregate majority`` keeps the rows
where helpfulness and harmlessness agree (a disagreement is a tie, dropped); to train on one
preference, derive or export with ``--judge pku-saferlhf/helpfulness`` (or
``pku-saferlhf/harmlessness``; ``DeriveConfig(judges=…)``), or import with
``preferences="helpfulness"`` (``--option preferences=helpfulness``) or ``"harmlessness"``. Safety labels become unpaired (KTO) rows in a derive (``binary_thumbs``:
safe = desirable); ``safety_labels="none"`` leaves them out.

Dropped and counted (with the row's line): ``dropped_empty_response`` (an answer is empty),
``dropped_identical`` (the two answers are the same text).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder, two_point
from preflab.formats.driver import check_choice, read_file
from preflab.formats.fields import RowError, describe, get_bool, get_number, get_str, optional_str

__all__ = [
    "HARMLESSNESS_JUDGE",
    "HELPFULNESS_JUDGE",
    "SAFETY_JUDGE",
    "Preferences",
    "SafetyLabels",
    "make_parser",
    "read_pku_saferlhf",
]

Preferences = Literal["both", "helpfulness", "harmlessness"]
SafetyLabels = Literal["binary", "none"]
HELPFULNESS_JUDGE = "pku-saferlhf/helpfulness"
HARMLESSNESS_JUDGE = "pku-saferlhf/harmlessness"
SAFETY_JUDGE = "pku-saferlhf/safety"
_PREFERENCES = ("both", "helpfulness", "harmlessness")
_SAFETY_LABELS = ("binary", "none")


def _side(row: Mapping[str, Any], key: str) -> int:
    value = get_number(row, key, integer=True)
    if value not in (0, 1):
        raise RowError(key, f"expected 0 (response_0) or 1 (response_1), got {describe(value)}")
    return int(value)


def _reasons(row: Mapping[str, Any], i: int) -> list[str]:
    """Return the ``harm:<category>`` and ``severity:<level>`` tags of answer ``i``."""
    reasons: list[str] = []
    key = f"response_{i}_harm_category"
    categories = row.get(key)
    if categories is not None:
        if not isinstance(categories, Mapping):
            raise RowError(
                key, f"expected an object of harm categories, got {describe(categories)}"
            )
        for name, marked in categories.items():
            if not isinstance(marked, bool):
                raise RowError(f"{key}.{name}", f"expected true or false, got {describe(marked)}")
            if marked:
                reasons.append(f"harm:{name}")
    level = f"response_{i}_severity_level"
    if row.get(level) is not None:
        reasons.append(f"severity:{int(get_number(row, level, lo=0, hi=3, integer=True))}")
    return reasons


def make_parser(preferences: Preferences = "both", safety_labels: SafetyLabels = "binary") -> Any:
    """Return a row parser keeping the chosen preferences and safety labels (see module doc)."""

    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        prompt = get_str(row, "prompt")
        texts = [get_str(row, f"response_{i}", allow_empty=True) for i in (0, 1)]
        better = _side(row, "better_response_id")
        safer = _side(row, "safer_response_id")
        safe = [get_bool(row, f"is_response_{i}_safe") for i in (0, 1)]
        reasons = [_reasons(row, i) for i in (0, 1)]
        models = [optional_str(row, f"response_{i}_source") for i in (0, 1)]
        for i, text in enumerate(texts):
            if not text.strip():
                b.drop("empty_response", f"response_{i} is empty", field=f"response_{i}")
                return
        if texts[0].strip() == texts[1].strip():
            b.drop("identical", "response_0 and response_1 are the same text", field="response_1")
            return
        source = optional_str(row, "prompt_source")
        prompt_id = b.add_prompt(
            [{"role": "user", "content": prompt}],
            tags=[f"prompt_source:{source}"] if source else [],
        )
        ids = [
            b.add_response(
                prompt_id, texts[i], field=f"response_{i}", model=models[i], origin="model"
            )
            for i in (0, 1)
        ]
        if ids[0] == ids[1]:  # same text once normalized (NFC, line endings)
            b.rollback_row()
            b.drop("identical", "response_0 and response_1 are the same text once normalized")
            return
        judged: list[tuple[str, int, str]] = []
        if preferences in ("both", "helpfulness"):
            judged.append((HELPFULNESS_JUDGE, better, "helpfulness (better_response_id)"))
        if preferences in ("both", "harmlessness"):
            judged.append((HARMLESSNESS_JUDGE, safer, "harmlessness (safer_response_id)"))
        for judge_id, side, name in judged:
            b.add_judge(judge_id, "imported", name=f"PKU-SafeRLHF annotators: {name}")
            b.add_judgment(
                prompt_id=prompt_id,
                response_ids=ids,
                kind="pairwise",
                judge_id=judge_id,
                pairwise=two_point(ids[side]),
                flags=[ORDER_UNKNOWN],
            )
        if safety_labels == "binary":
            b.add_judge(SAFETY_JUDGE, "imported", name="PKU-SafeRLHF annotators: safety labels")
            for i in (0, 1):
                b.add_judgment(
                    prompt_id=prompt_id,
                    response_ids=[ids[i]],
                    kind="binary",
                    judge_id=SAFETY_JUDGE,
                    binary={"response_id": ids[i], "label": safe[i], "reasons": reasons[i]},
                    id_extra=i,
                )

    return parse


def read_pku_saferlhf(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    preferences: Preferences = "both",
    safety_labels: SafetyLabels = "binary",
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from a PKU-SafeRLHF file (see the module docstring).

    Args:
        path: the file (JSONL, optionally compressed, or Parquet), either layout.
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        preferences: ``both`` (default), ``helpfulness`` or ``harmlessness``: which pairwise
            judgments to make.
        safety_labels: ``binary`` (default: one binary judgment per answer) or ``none``.

    Raises:
        UsageError: an unknown ``preferences`` or ``safety_labels`` value.
    """
    check_choice("preferences", preferences, _PREFERENCES)
    check_choice("safety_labels", safety_labels, _SAFETY_LABELS)
    return read_file(
        path,
        make_parser(preferences, safety_labels),
        format="pku-saferlhf",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
