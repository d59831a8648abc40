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
fields but cannot become a pair are dropped by these rules and counted, never mangled (each
dropped row is noted with its file and line in the import summary):

================================  =============================================================
``dropped_unparsable``            a transcript does not start with ``Human:``, has text before
                                  the first marker, or does not end with an ``Assistant:`` turn
``dropped_consecutive_turns``     two turns of the same role in a row, with the default
                                  ``consecutive_turns="drop"``
``dropped_empty_turn``            an earlier turn of the conversation is empty
``dropped_divergent``             the transcripts differ before their last assistant turn
``dropped_empty_response``        a final assistant turn is empty
``dropped_identical``             both final assistant turns are the same text (once normalized)
================================  =============================================================

**Two turns of one role in a row** (real: 15 of the 2,354 helpful-base test rows have two
``Assistant:`` turns in a row, the answer cut in two) follow the rule ``consecutive_turns``:

- ``"drop"`` (default): the row is dropped (``dropped_consecutive_turns``). The default keeps
  what the crowdworker saw unchanged: nothing is guessed about how the two turns belong together.
- ``"merge"``: each run of turns of one role becomes one turn, their stripped texts joined with
  a blank line (``"\\n\\n"``, the separator the transcript itself uses between paragraphs); the
  row is counted as ``merged_consecutive_turns`` (once per row) and imported.

A ``chosen`` or ``rejected`` field that is missing or not a string is bad input (an error, or a
reported skip with ``skip_invalid``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ORDER_UNKNOWN, ChunkBuilder, two_point
from preflab.formats.driver import check_choice, read_file
from preflab.formats.fields import get_str
from preflab.formats.streams import iter_rows

__all__ = [
    "JUDGE_ID",
    "ConsecutiveTurnsRule",
    "TranscriptError",
    "make_parser",
    "note_merged_turns",
    "parse_row",
    "parse_transcript",
    "read_hh_rlhf",
    "split_transcript",
]

ConsecutiveTurnsRule = Literal["drop", "merge"]
CONSECUTIVE_TURNS_RULES = ("drop", "merge")

JUDGE_ID = "hh-rlhf"
_MARKER = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}
_LAST = "\n\nAssistant:"
_HUMAN = "\n\nHuman:"
_CUE = {"role": "assistant", "content": ""}  # a prompt's final empty "Assistant:" turn


class TranscriptError(ValueError):
    """A transcript that does not parse: ``reason`` is the drop rule, ``detail`` what was wrong."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_transcript(
    text: str, *, consecutive_turns: ConsecutiveTurnsRule = "drop"
) -> list[dict[str, str]]:
    """Return the messages of an HH transcript; raise ``ValueError`` if it does not parse.

    >>> parse_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    >>> text = "\\n\\nHuman: Hi\\n\\nAssistant: A\\n\\nAssistant: B"
    >>> parse_transcript(text, consecutive_turns="merge")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'A\\n\\nB'}]
    """
    return split_transcript(text, consecutive_turns=consecutive_turns)[0]


def split_transcript(
    text: str, *, consecutive_turns: ConsecutiveTurnsRule = "drop", final: str = "assistant"
) -> tuple[list[dict[str, str]], int]:
    """Return the messages of an HH transcript and how many turns were merged into others.

    ``final`` is the role the transcript must end with: ``"assistant"`` for HH rows;
    ``"user"`` for a prompt (Nectar's), where a trailing empty ``Assistant:`` turn, the cue for
    the answer, is removed first.

    Raises:
        TranscriptError: with the drop reason (``unparsable``, ``consecutive_turns``) and what
            was wrong.
    """
    parts = _MARKER.split(text)
    if parts[0].strip():
        raise TranscriptError("unparsable", "text before the first Human:/Assistant: marker")
    if len(parts) < 3:
        raise TranscriptError("unparsable", "no Human:/Assistant: turn")
    messages: list[dict[str, str]] = []
    merged = 0
    for i in range(1, len(parts), 2):
        role = _ROLE[parts[i]]
        content = parts[i + 1].strip()
        if messages and messages[-1]["role"] == role:
            if consecutive_turns == "drop":
                raise TranscriptError(
                    "consecutive_turns",
                    f"turns {len(messages)} and {len(messages) + 1} are both {parts[i]}: turns",
                )
            last = messages[-1]
            last["content"] = "\n\n".join(t for t in (last["content"], content) if t)
            merged += 1
            continue
        messages.append({"role": role, "content": content})
    if final == "user" and len(messages) > 1 and messages[-1] == _CUE:
        messages.pop()
    if messages[0]["role"] != "user":
        raise TranscriptError("unparsable", "the first turn is not a Human: turn")
    if messages[-1]["role"] != final:
        marker = "Assistant" if final == "assistant" else "Human"
        raise TranscriptError("unparsable", f"the last turn is not a {marker}: turn")
    return messages, merged


def note_merged_turns(b: ChunkBuilder, *, field: str | None = None, what: str = "turns") -> None:
    """Note a row whose ``what`` (turns, prompt turns) of one role in a row were merged."""
    b.note(
        "merged_consecutive_turns",
        f"{what} of one role in a row joined with a blank line",
        field=field,
    )


#: Distinct rows whose outcome a parser remembers; past it, the memo starts again (or stops
#: for good when few rows repeated).
ROW_MEMO_LIMIT = 20_000


class _Outcome(NamedTuple):
    """What a row became: its records (ids and texts) or the rule that dropped it."""

    prompt_id: str | None
    context: list[dict[str, str]] | None
    chosen_id: str
    chosen: str
    rejected_id: str
    rejected: str
    merged: bool
    drop: tuple[str, str] | None = None


def _replay(b: ChunkBuilder, o: _Outcome) -> None:
    """Add the records of a row whose text was read before (same checks passed, same ids)."""
    if o.drop is not None:
        b.drop(*o.drop)
        return
    assert o.prompt_id is not None and o.context is not None
    b.add_checked_prompt(o.prompt_id, o.context)
    b.add_checked_response(o.chosen_id, o.prompt_id, o.chosen)
    b.add_checked_response(o.rejected_id, o.prompt_id, o.rejected)
    _add_judgment(b, o.prompt_id, o.chosen_id, o.rejected_id, o.merged)


def _add_judgment(
    b: ChunkBuilder, prompt_id: str, chosen_id: str, rejected_id: str, merged: bool
) -> None:
    b.add_judge(JUDGE_ID, "imported", name="Anthropic HH-RLHF crowdworkers")
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[chosen_id, rejected_id],
        kind="pairwise",
        judge_id=JUDGE_ID,
        pairwise=two_point(chosen_id),
        flags=[ORDER_UNKNOWN],
    )
    if merged:
        note_merged_turns(b)


def make_parser(consecutive_turns: ConsecutiveTurnsRule = "drop") -> Any:
    """Return a row parser following the ``consecutive_turns`` rule (see the module docstring).

    The parser remembers the outcome of each distinct ``(chosen, rejected)`` pair of texts, so a
    row repeated in the file is checked, split and hashed once (its judgment still gets its own
    id, from its line). The memo holds up to :data:`ROW_MEMO_LIMIT` rows and is given up when
    fewer than one row in four repeats one before it.
    """
    memo: dict[tuple[str, str], _Outcome] = {}
    stats = {"hits": 0, "rows": 0, "on": True}

    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        chosen_text = get_str(row, "chosen", allow_empty=True)
        rejected_text = get_str(row, "rejected", allow_empty=True)
        if not stats["on"]:
            _parse(b, chosen_text, rejected_text)
            return
        key = (chosen_text, rejected_text)
        stats["rows"] += 1
        known = memo.get(key)
        if known is not None:
            stats["hits"] += 1
            _replay(b, known)
            return
        outcome = _parse(b, chosen_text, rejected_text)
        if len(memo) >= ROW_MEMO_LIMIT:
            if stats["hits"] * 4 < stats["rows"]:
                stats["on"] = False  # few repeats: remembering costs memory for nothing
            memo.clear()
            stats["hits"] = stats["rows"] = 0
        if outcome is not None and stats["on"]:
            memo[key] = outcome

    def _parse(b: ChunkBuilder, chosen_text: str, rejected_text: str) -> _Outcome | None:
        def drop(reason: str, detail: str) -> _Outcome:
            b.drop(reason, detail)
            return _Outcome(None, None, "", "", "", "", False, (reason, detail))

        try:
            chosen, merged = split_transcript(chosen_text, consecutive_turns=consecutive_turns)
            # Fast path: the same raw text before the last "Assistant:" means the same context,
            # so only the rejected reply needs cutting out (not when turns were merged: the
            # final answer may then be a merge of several turns).
            cut_c, cut_r = chosen_text.rfind(_LAST), rejected_text.rfind(_LAST)
            tail = rejected_text[cut_r + len(_LAST) :]
            if (
                not merged
                and cut_r >= 0
                and chosen_text[:cut_c] == rejected_text[:cut_r]
                and _HUMAN not in tail
            ):
                rejected = [*chosen[:-1], {"role": "assistant", "content": tail.strip()}]
            else:
                rejected, merged_r = split_transcript(
                    rejected_text, consecutive_turns=consecutive_turns
                )
                merged += merged_r
        except TranscriptError as exc:
            return drop(exc.reason, exc.detail)
        context = chosen[:-1]
        if context != rejected[:-1]:
            return drop("divergent", "the two transcripts differ before their last Assistant: turn")
        if any(not m["content"] for m in context):
            return drop("empty_turn", "an earlier turn of the conversation is empty")
        chosen_reply, rejected_reply = chosen[-1]["content"], rejected[-1]["content"]
        if not chosen_reply or not rejected_reply:
            return drop(
                "empty_response",
                f"the final answer of {'chosen' if not chosen_reply else 'rejected'} is empty",
            )
        if chosen_reply == rejected_reply:
            return drop("identical", "chosen and rejected end with the same answer")
        prompt_id = b.add_prompt(context, field="chosen")  # a RowError here: nothing remembered
        chosen_id = b.add_response(prompt_id, chosen_reply, field="chosen")
        rejected_id = b.add_response(prompt_id, rejected_reply, field="rejected")
        if chosen_id == rejected_id:  # same text once normalized (NFC, line endings)
            b.rollback_row()
            return drop("identical", "chosen and rejected end with the same answer once normalized")
        _add_judgment(b, prompt_id, chosen_id, rejected_id, bool(merged))
        return _Outcome(
            prompt_id, context, chosen_id, chosen_reply, rejected_id, rejected_reply, bool(merged)
        )

    return parse


parse_row = make_parser("drop")
"""Check one input row and add its records to a builder (the default rules)."""


def read_hh_rlhf(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    consecutive_turns: ConsecutiveTurnsRule = "drop",
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from an HH-RLHF JSON-lines file (see the module docstring).

    Args:
        path: ``.jsonl`` file, optionally ``.gz``/``.bz2``/``.zst`` compressed (or Parquet/CSV
            with ``chosen`` and ``rejected`` columns).
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        consecutive_turns: ``"drop"`` (default) or ``"merge"`` two turns of one role in a row
            (see the module docstring).

    Yields:
        :class:`~preflab.formats.base.ImportChunk` objects; ``counts`` holds ``rows``,
        ``dropped_*``, ``merged_consecutive_turns`` (see the rules above) and the records added.

    Raises:
        UsageError: an unknown ``consecutive_turns`` rule.
    """
    check_consecutive_turns(consecutive_turns)
    return read_file(
        path,
        make_parser(consecutive_turns),
        format="hh-rlhf",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        rows=iter_rows(path, repeats=True),  # the parser never changes a row
    )


def check_consecutive_turns(rule: str) -> None:
    """Raise :class:`~preflab.errors.UsageError` unless ``rule`` is ``drop`` or ``merge``."""
    check_choice("consecutive_turns", rule, CONSECUTIVE_TURNS_RULES)
