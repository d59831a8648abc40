"""Anthropic HH-RLHF: ``{"chosen": transcript, "rejected": transcript}`` rows.

A transcript is ``"\\n\\nHuman: …\\n\\nAssistant: …"`` (Bai et al. 2022, "Training a Helpful and
Harmless Assistant with RLHF", data at github.com/anthropics/hh-rlhf). Each row becomes:

- a **prompt**: the turns before the last ``Assistant:`` turn (Human → ``user``,
  Assistant → ``assistant``), which must be the same in both transcripts;
- two **responses**: the final assistant turns of ``chosen`` and ``rejected``;
- one **pairwise judgment** on a 2-point scale preferring ``chosen`` (the crowdworker's
  choice), by the imported judge ``hh-rlhf``. ``response_ids`` are (chosen, rejected): the
  file does not say which side was shown first, so the judgment is flagged ``order_unknown``.

Turn texts are stripped of surrounding whitespace. Rows that are well-formed JSON with string
fields but cannot become a pair are dropped by these rules and counted, never mangled:

============================  =================================================================
``dropped_unparsable``        a transcript does not start with ``Human:``, has text before the
                              first marker, does not end with an ``Assistant:`` turn, or has
                              two turns of the same role in a row
``dropped_empty_turn``        an earlier turn of the conversation is empty
``dropped_divergent``         the transcripts differ before their last assistant turn
``dropped_empty_response``    a final assistant turn is empty
``dropped_identical``         both final assistant turns are the same text (once normalized)
============================  =================================================================

A ``chosen`` or ``rejected`` field that is missing or not a string is bad input (an error, or a
reported skip with ``skip_invalid``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder
from preflab.formats.driver import read_rows
from preflab.formats.fields import get_str
from preflab.formats.streams import iter_rows

__all__ = ["JUDGE_ID", "parse_transcript", "read_hh_rlhf", "parse_row"]

JUDGE_ID = "hh-rlhf"
_MARKER = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}
_LAST = "\n\nAssistant:"
_HUMAN = "\n\nHuman:"
_PAIRWISE = {"scale": 2, "strength": 1, "tie": False, "both_bad": False}


class _Unparsable(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def parse_transcript(text: str) -> list[dict[str, str]]:
    """Return the messages of an HH transcript; raise ``ValueError`` if it does not parse.

    >>> parse_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    try:
        return _split(text)
    except _Unparsable as exc:
        raise ValueError(exc.reason) from None


def _split(text: str) -> list[dict[str, str]]:
    parts = _MARKER.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise _Unparsable("unparsable")
    messages = []
    previous = None
    for i in range(1, len(parts), 2):
        role = _ROLE[parts[i]]
        if role == previous:
            raise _Unparsable("unparsable")
        previous = role
        messages.append({"role": role, "content": parts[i + 1].strip()})
    if messages[0]["role"] != "user" or messages[-1]["role"] != "assistant":
        raise _Unparsable("unparsable")
    return messages


def parse_row(b: ChunkBuilder, row: dict[str, Any]) -> None:
    """Check one input row and add its records to ``b`` (rules in the module docstring)."""
    chosen_text = get_str(row, "chosen", allow_empty=True)
    rejected_text = get_str(row, "rejected", allow_empty=True)
    try:
        chosen = _split(chosen_text)
        # Fast path: the same raw text before the last "Assistant:" means the same context,
        # so only the rejected reply needs cutting out.
        cut_c, cut_r = chosen_text.rfind(_LAST), rejected_text.rfind(_LAST)
        tail = rejected_text[cut_r + len(_LAST) :]
        if cut_r >= 0 and chosen_text[:cut_c] == rejected_text[:cut_r] and _HUMAN not in tail:
            rejected = [*chosen[:-1], {"role": "assistant", "content": tail.strip()}]
        else:
            rejected = _split(rejected_text)
    except _Unparsable as exc:
        b.drop(exc.reason)
        return
    context = chosen[:-1]
    if context != rejected[:-1]:
        b.drop("divergent")
        return
    if any(not m["content"] for m in context):
        b.drop("empty_turn")
        return
    chosen_reply, rejected_reply = chosen[-1]["content"], rejected[-1]["content"]
    if not chosen_reply or not rejected_reply:
        b.drop("empty_response")
        return
    if chosen_reply == rejected_reply:
        b.drop("identical")
        return
    prompt_id = b.add_prompt(context, field="chosen")
    chosen_id = b.add_response(prompt_id, chosen_reply, field="chosen")
    rejected_id = b.add_response(prompt_id, rejected_reply, field="rejected")
    if chosen_id == rejected_id:  # same text once normalized (NFC, line endings)
        b.rollback_row()
        b.drop("identical")
        return
    b.add_judge(JUDGE_ID, "imported", name="Anthropic HH-RLHF crowdworkers")
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[chosen_id, rejected_id],
        kind="pairwise",
        judge_id=JUDGE_ID,
        pairwise={"preferred": chosen_id, **_PAIRWISE},
        flags=[ORDER_UNKNOWN],
    )


def read_hh_rlhf(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from an HH-RLHF JSON-lines file (see the module docstring).

    Args:
        path: ``.jsonl`` file, optionally ``.gz``/``.bz2``/``.zst`` compressed (or Parquet/CSV
            with ``chosen`` and ``rejected`` columns).
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.

    Yields:
        :class:`~preflab.formats.base.ImportChunk` objects; ``counts`` holds ``rows``,
        ``dropped_*`` (see the rules above) and the records added.
    """
    return read_rows(
        str(path),
        iter_rows(path),
        parse_row,
        format="hh-rlhf",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
