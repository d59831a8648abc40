"""Chatbot Arena battles (Zheng et al. 2023; lmsys/chatbot_arena_conversations on the HF Hub).

Fields: ``question_id``, ``model_a``, ``model_b``, ``winner`` (``model_a``, ``model_b``, ``tie``,
``tie (bothbad)``), ``judge`` (the voter's id), ``conversation_a``/``conversation_b`` (lists of
``{role, content}``), ``turn``, ``anony``, ``language``, ``tstamp`` (Unix seconds).

Each battle becomes one **pairwise judgment** on a 2-point scale, shown order (A, B):
``model_a``/``model_b`` prefer that side; ``tie`` is a tie; ``tie (bothbad)`` is ``both_bad``
(no preferred response). The judge is the voter, ``arena:<judge>`` (human); ``submitted_at`` is
``tstamp``; ``anony`` battles carry the flag ``anonymous``. Responses are the final assistant
turns, tagged with their model (``origin="model"``). Prompts are tagged ``lang:<language>``.

Multi-turn battles (the vote covers the whole conversation) follow the rule ``multi_turn``:

- ``"preferred_context"`` (default): the prompt is every user turn, with the earlier assistant
  turns of the preferred side (side A for ties), continuing with the chosen answer as DESIGN.md
  says; the judgment is flagged ``multi_turn`` (and ``context_from_preferred`` when the two
  sides' earlier answers differ, since the other side's final answer followed its own context).
- ``"drop"``: multi-turn battles are dropped (``dropped_multi_turn``).

Dropped and counted: ``dropped_divergent`` (the two sides' user turns differ),
``dropped_empty_response`` (a final answer is empty),
``dropped_identical`` (same model and same final answer on both sides).

**Repeated battles.** A battle whose ``question_id`` was already read earlier in the file gives
no judgment: **the first occurrence wins**, each later one is counted as
``skipped_repeated_source`` and noted with its line, the id and the line of the first
occurrence. Rows without ``question_id`` are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ChunkBuilder, two_point
from preflab.formats.driver import check_choice, read_file
from preflab.formats.fields import (
    RowError,
    describe,
    get_messages,
    get_number,
    get_str,
    optional_str,
)

__all__ = ["MULTI_TURN_RULES", "MultiTurnRule", "make_parser", "read_arena", "vote"]

MultiTurnRule = Literal["preferred_context", "drop"]
MULTI_TURN_RULES = ("preferred_context", "drop")
_WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


def _conversation(row: dict[str, Any], key: str) -> list[dict[str, str]]:
    messages = get_messages(row.get(key), key)
    if not messages:
        raise RowError(key, "expected a non-empty conversation")
    expected = "user"
    start = 1 if messages[0]["role"] == "system" else 0
    for i, m in enumerate(messages[start:], start):
        if m["role"] != expected:
            raise RowError(
                f"{key}[{i}].role",
                f"expected {expected} (turns alternate, starting with user), got {m['role']!r}",
            )
        expected = "assistant" if expected == "user" else "user"
    if messages[-1]["role"] != "assistant":
        raise RowError(key, "expected the conversation to end with an assistant turn")
    return messages


def vote(winner: str, id_a: str, id_b: str) -> dict[str, Any]:
    """Return the 2-point ``pairwise`` value of an arena verdict on the responses (A, B).

    ``winner`` is ``model_a``, ``model_b``, ``tie`` or anything else for both bad.
    """
    if winner == "model_a":
        return two_point(id_a)
    if winner == "model_b":
        return two_point(id_b)
    if winner == "tie":
        return two_point(tie=True)
    return two_point(both_bad=True)


def make_parser(multi_turn: MultiTurnRule) -> Any:
    """Return a row parser for battles following the ``multi_turn`` rule (see module doc)."""

    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        model_a = get_str(row, "model_a")
        model_b = get_str(row, "model_b")
        winner = row.get("winner")
        if winner not in _WINNERS:
            raise RowError(
                "winner", f"expected one of {', '.join(_WINNERS)}, got {describe(winner)}", winner
            )
        conv_a = _conversation(row, "conversation_a")
        conv_b = _conversation(row, "conversation_b")
        question_id = optional_str(row, "question_id")
        if question_id is not None and b.skip_repeated_source(
            "arena-battle", question_id,
            seen=f"battle {question_id!r} was already read", field="question_id",
        ):
            return
        users_a = [m for m in conv_a if m["role"] != "assistant"]
        users_b = [m for m in conv_b if m["role"] != "assistant"]
        if users_a != users_b:
            b.drop("divergent", "the two sides' user turns differ")
            return
        turns = len(users_a) - (1 if users_a[0]["role"] == "system" else 0)
        if turns > 1 and multi_turn == "drop":
            b.drop("multi_turn", f"a {turns}-turn battle (multi_turn=\"drop\")")
            return
        reply_a, reply_b = conv_a[-1]["content"], conv_b[-1]["content"]
        if not reply_a.strip() or not reply_b.strip():
            side = "conversation_a" if not reply_a.strip() else "conversation_b"
            b.drop("empty_response", "a final answer is empty", field=side)
            return
        if model_a == model_b and reply_a.strip() == reply_b.strip():
            b.drop("identical", "same model and the same final answer on both sides")
            return
        context = (conv_b if winner == "model_b" else conv_a)[:-1]
        flags = []
        if turns > 1:
            flags.append("multi_turn")
            if conv_a[:-1] != conv_b[:-1]:
                flags.append("context_from_preferred")
        if row.get("anony") is True:
            flags.append("anonymous")
        language = optional_str(row, "language")
        prompt_id = b.add_prompt(
            context,
            field="conversation_a" if winner != "model_b" else "conversation_b",
            tags=[f"lang:{language}"] if language else [],
        )
        id_a = b.add_response(
            prompt_id, reply_a, field="conversation_a", model=model_a, origin="model"
        )
        id_b = b.add_response(
            prompt_id, reply_b, field="conversation_b", model=model_b, origin="model"
        )
        voter = optional_str(row, "judge")
        judge_id = f"arena:{voter}" if voter else "arena"
        b.add_judge(judge_id, "human", name=voter, vendor="lmsys chatbot arena")
        submitted = None
        if row.get("tstamp") is not None:
            # Unix seconds up to the year 9999 (what datetime can hold)
            seconds = get_number(row, "tstamp", lo=0, hi=253_402_300_799)
            submitted = datetime.fromtimestamp(seconds, tz=UTC)
        b.add_judgment(
            prompt_id=prompt_id,
            response_ids=[id_a, id_b],
            kind="pairwise",
            judge_id=judge_id,
            pairwise=vote(winner, id_a, id_b),
            submitted_at=submitted,
            flags=flags,
            id_extra=question_id,
        )

    return parse


def read_arena(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    multi_turn: MultiTurnRule = "preferred_context",
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from a Chatbot Arena battles file (see module doc).

    Args:
        path: the file (JSONL, optionally compressed, or Parquet).
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        multi_turn: ``preferred_context`` or ``drop`` (see module doc).
    """
    check_choice("multi_turn", multi_turn, MULTI_TURN_RULES)
    return read_file(
        path,
        make_parser(multi_turn),
        format="arena",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
