"""UltraFeedback binarized (HuggingFaceH4/ultrafeedback_binarized on the HF Hub; Tunstall et al.
2023, "Zephyr", arXiv:2310.16944, from Cui et al. 2023's UltraFeedback).

One row per prompt: ``prompt`` (text), ``prompt_id`` (the card's hash of the prompt),
``chosen`` and ``rejected`` (message lists: the user turn, then the assistant answer),
``messages`` (the chosen conversation again, for SFT), ``score_chosen``, ``score_rejected``
(GPT-4's scores of the two completions, as the card binarized them: the best-scored of four
completions is chosen, one of the other three at random rejected). Every split (``train_prefs``,
``test_prefs``, ``train_sft``, ``test_sft``, ``train_gen``, ``test_gen``) has these columns.

**What is kept: the scores, as a rating judgment** (not a pairwise one). Each row becomes one
prompt (the messages before the last assistant turn of ``chosen``, which must equal those of
``rejected``), two responses (the final assistant turns; the file names no model) and one
**rating judgment** by the AI judge ``ultrafeedback-binarized/gpt-4``: attribute ``score`` per
response, ``scale_min`` 1 and ``scale_max`` 10 (the range of UltraFeedback's 1–10
``overall_score``, which also holds the mean of its 1–5 aspect ratings; the scores are kept as
published). A derive with any rating rule then gives back the published pair, chosen over
rejected, with ``margin = score_chosen − score_rejected``; a row whose two scores are equal
gives no pair (DESIGN.md: equal scores never pair; counted ``rating_no_lower_score`` by the
derive), where a pairwise reading would have invented a preference. Rows with equal scores are
also counted at import (``equal_scores``). Rows that share one prompt (the same instruction
listed twice) are one judge's scores of the answers to that prompt, so the derive pools them
into one comparison set (as for HelpSteer2's one-row-per-answer file) and gives one pair for the
prompt by its rating rule, not one per row; ``--rating-rule all_above_margin`` gives every
strictly ordered pair.

``response_ids`` are (chosen, rejected), flagged ``order_unknown``. The prompt is tagged
``prompt_id:<prompt_id>`` when the row has one. Dropped and counted (with file and line):
``dropped_empty_response`` (a final answer is empty), ``dropped_identical`` (both answers are
the same text), ``dropped_divergent`` (the two conversations differ before their answers).
``score_chosen`` below ``score_rejected`` is kept as published (the derive then prefers the
higher score) and counted (``chosen_scored_lower``).

``preflab import ultrafeedback`` also reads this layout: a row with ``chosen`` and
``score_chosen`` and no ``completions`` is read by these rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder
from preflab.formats.driver import read_file
from preflab.formats.fields import RowError, get_messages, get_number, optional_str

__all__ = ["JUDGE_ID", "is_binarized_row", "parse_row", "read_ultrafeedback_binarized"]

JUDGE_ID = "ultrafeedback-binarized/gpt-4"
SCALE = (1.0, 10.0)


def is_binarized_row(row: dict[str, Any]) -> bool:
    """True when ``row`` has the binarized layout (``chosen``, ``score_chosen``, no completions)."""
    return "completions" not in row and "chosen" in row and "score_chosen" in row


def _conversation(row: dict[str, Any], key: str) -> list[dict[str, str]]:
    messages = get_messages(row.get(key), key)
    if len(messages) < 2:
        raise RowError(
            key, f"expected a user turn and an assistant answer, got {len(messages)} messages"
        )
    if messages[-1]["role"] != "assistant":
        raise RowError(
            f"{key}[{len(messages) - 1}].role",
            f"expected the last message to be the assistant's answer, got {messages[-1]['role']!r}",
        )
    return messages


def parse_row(b: ChunkBuilder, row: dict[str, Any]) -> None:
    """Check one binarized row and add its records to ``b`` (rules in the module docstring)."""
    chosen = _conversation(row, "chosen")
    rejected = _conversation(row, "rejected")
    lo, hi = SCALE
    score_c = get_number(row, "score_chosen", lo=lo, hi=hi)
    score_r = get_number(row, "score_rejected", lo=lo, hi=hi)
    if chosen[:-1] != rejected[:-1]:
        b.drop("divergent", "chosen and rejected differ before their answers", field="rejected")
        return
    reply_c, reply_r = chosen[-1]["content"], rejected[-1]["content"]
    if not reply_c.strip() or not reply_r.strip():
        side = "chosen" if not reply_c.strip() else "rejected"
        b.drop("empty_response", f"the {side} answer is empty", field=side)
        return
    if reply_c.strip() == reply_r.strip():
        b.drop("identical", "chosen and rejected end with the same answer", field="rejected")
        return
    source_id = optional_str(row, "prompt_id")
    prompt_id = b.add_prompt(
        chosen[:-1], field="chosen", tags=[f"prompt_id:{source_id}"] if source_id else []
    )
    id_c = b.add_response(prompt_id, reply_c, field="chosen", origin="model")
    id_r = b.add_response(prompt_id, reply_r, field="rejected", origin="model")
    if id_c == id_r:  # the same text once normalized (NFC, line endings)
        b.rollback_row()
        b.drop("identical", "chosen and rejected are the same answer once normalized")
        return
    if score_c == score_r:
        b.count("equal_scores")
    elif score_c < score_r:
        b.count("chosen_scored_lower")
    b.add_judge(JUDGE_ID, "ai", model="gpt-4", template="ultrafeedback-binarized")
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[id_c, id_r],
        kind="rating",
        judge_id=JUDGE_ID,
        rating={
            "scores": [
                {"response_id": id_c, "attribute": "score", "score": score_c},
                {"response_id": id_r, "attribute": "score", "score": score_r},
            ],
            "scale_min": lo,
            "scale_max": hi,
        },
        flags=[ORDER_UNKNOWN],
    )


def read_ultrafeedback_binarized(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from an UltraFeedback-binarized file (see the module doc).

    Args:
        path: the file (Parquet as published on the Hub, or JSON lines).
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
    """
    return read_file(
        path,
        parse_row,
        format="ultrafeedback-binarized",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
