"""Nectar (Zhu et al. 2023, "Starling-7B: improving LLM helpfulness & harmlessness with RLAIF";
berkeley-nest/Nectar on the HF Hub, ``data/rlaif.parquet``).

One row per prompt: ``prompt`` (an HH-style transcript, ``"\\n\\nHuman: …\\n\\nAssistant:"``,
ending with the empty ``Assistant:`` cue), ``answers`` (a list of ``{answer, model, rank}``,
usually 7; ``rank`` 1 is the best, as ranked by GPT-4 on the card's helpfulness and
harmlessness rubric), ``turns``, ``num_responses``, ``good_natured`` and ``source`` (a list of
the prompt's source datasets).

Each row becomes:

- a **prompt**: the transcript's turns (Human → ``user``, Assistant → ``assistant``, texts
  stripped) without the final empty ``Assistant:`` cue, so multi-turn context is kept; tagged
  ``source:<s>`` per source and ``good_natured:true``/``good_natured:false``;
- one **response** per answer (``origin="model"``, ``model`` kept);
- one **ranking judgment** by the AI judge ``nectar/gpt-4`` (model ``gpt-4``): groups of
  response ids best first (answers of equal rank share a group), flagged ``order_unknown``
  (the file lists answers by rank, not in the order GPT-4 saw them).

``turns`` and ``num_responses`` are read but not used (the transcript and the answers list say
the same).

Two turns of one role in a row in the prompt follow ``consecutive_turns`` as in
:mod:`preflab.formats.hh_rlhf`: ``"drop"`` (default, ``dropped_consecutive_turns``) or
``"merge"`` (joined with a blank line, ``merged_consecutive_turns``).

Dropped and counted (with the row's line): ``dropped_unparsable`` (the prompt is not a
transcript starting with ``Human:`` and ending with a Human turn or the ``Assistant:`` cue),
``dropped_empty_turn`` (an earlier turn is empty), ``dropped_too_few_answers`` (fewer than two
usable answers). Per answer, noted with its index: ``dropped_empty_answer``,
``dropped_duplicate_answer`` (same text and model as an earlier answer of the row),
``unranked_answers`` (``rank`` null: shown, left out of the ranking).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder
from preflab.formats.driver import read_file
from preflab.formats.fields import RowError, describe, get_number, get_str, optional_str
from preflab.formats.hh_rlhf import (
    ConsecutiveTurnsRule,
    TranscriptError,
    check_consecutive_turns,
    note_merged_turns,
    split_transcript,
)

__all__ = ["JUDGE_ID", "make_parser", "read_nectar"]

JUDGE_ID = "nectar/gpt-4"


def _tags(row: Mapping[str, Any]) -> list[str]:
    tags: list[str] = []
    sources: Any = row.get("source")
    if isinstance(sources, str):
        sources = [sources]
    if sources is not None:
        if not isinstance(sources, list):
            raise RowError("source", f"expected a list of strings, got {describe(sources)}")
        for i, s in enumerate(sources):
            if not isinstance(s, str):
                raise RowError(f"source[{i}]", f"expected a string, got {describe(s)}")
            tags.append(f"source:{s}")
    natured = row.get("good_natured")
    if natured is not None:
        if not isinstance(natured, bool):
            raise RowError("good_natured", f"expected true or false, got {describe(natured)}")
        tags.append(f"good_natured:{str(natured).lower()}")
    return tags


def make_parser(consecutive_turns: ConsecutiveTurnsRule = "drop") -> Any:
    """Return a row parser following the ``consecutive_turns`` rule (see module doc)."""

    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        text = get_str(row, "prompt")
        answers = row.get("answers")
        if not isinstance(answers, list):
            raise RowError("answers", f"expected a list of answers, got {describe(answers)}")
        tags = _tags(row)
        try:
            messages, merged = split_transcript(
                text, consecutive_turns=consecutive_turns, final="user"
            )
        except TranscriptError as exc:
            b.drop(exc.reason, f"prompt: {exc.detail}", field="prompt")
            return
        if any(not m["content"] for m in messages):
            b.drop("empty_turn", "an earlier turn of the prompt is empty", field="prompt")
            return
        prompt_id = b.add_prompt(messages, tags=tags)
        shown: list[str] = []
        groups: dict[float, list[str]] = {}
        for i, answer in enumerate(answers):
            field = f"answers[{i}]"
            if not isinstance(answer, Mapping):
                raise RowError(field, f"expected an answer object, got {describe(answer)}")
            content = get_str(answer, "answer", field=f"{field}.answer", allow_empty=True)
            model = optional_str(answer, "model")
            if not content.strip():
                b.drop("empty_answer", f"answer {i} ({model}) is empty", field=f"{field}.answer")
                continue
            rank = (
                get_number(answer, "rank", field=f"{field}.rank", lo=1)
                if answer.get("rank") is not None
                else None
            )
            rid = b.add_response(
                prompt_id, content, field=f"{field}.answer", model=model, origin="model"
            )
            if rid in shown:
                b.drop(
                    "duplicate_answer",
                    f"answer {i} ({model}) repeats an earlier answer's text and model",
                    field=f"{field}.answer",
                )
                continue
            shown.append(rid)
            if rank is None:
                b.note("unranked_answers", f"answer {i} ({model}) has no rank", field=field)
                continue
            groups.setdefault(rank, []).append(rid)
        if len(shown) < 2 or sum(len(g) for g in groups.values()) < 2:
            b.rollback_row()
            b.drop("too_few_answers", "fewer than two usable ranked answers", field="answers")
            return
        b.add_judge(JUDGE_ID, "ai", name="Nectar GPT-4 rankings", model="gpt-4")
        b.add_judgment(
            prompt_id=prompt_id,
            response_ids=shown,
            kind="ranking",
            judge_id=JUDGE_ID,
            ranking=[groups[r] for r in sorted(groups)],
            flags=[ORDER_UNKNOWN],
        )
        if merged:
            note_merged_turns(b, field="prompt", what="prompt turns")

    return parse


def read_nectar(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    consecutive_turns: ConsecutiveTurnsRule = "drop",
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from a Nectar file (Parquet or JSONL; see the module doc).

    Args:
        path: the file (``rlaif.parquet`` as published, or JSON lines).
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        consecutive_turns: ``"drop"`` (default) or ``"merge"`` two prompt turns of one role in
            a row.

    Raises:
        UsageError: an unknown ``consecutive_turns`` rule.
    """
    check_consecutive_turns(consecutive_turns)
    return read_file(
        path,
        make_parser(consecutive_turns),
        format="nectar",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
