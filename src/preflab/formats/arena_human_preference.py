"""Chatbot Arena human-preference table (lmarena-ai/arena-human-preference-55k on the HF Hub,
formerly lmsys/lmsys-arena-human-preference-55k; the Kaggle competition "LMSYS - Chatbot Arena
Human Preference Predictions"; Chiang et al. 2024, arXiv:2403.04132).

One row per battle, CSV (``train.csv``) or Parquet: ``id``, ``model_a``, ``model_b``,
``prompt``, ``response_a``, ``response_b``, ``winner_model_a``, ``winner_model_b``,
``winner_tie`` (0/1, exactly one of them 1). ``prompt`` and ``response_*`` are JSON-encoded
lists of strings, one per turn (``'["Hi", "And then?"]'``), in which a turn may be ``null``; a
list value (a converted copy) is read the same way.

Each battle gives the judgment a battle log gives (:mod:`preflab.formats.arena`): one
**pairwise judgment** on a 2-point scale, shown order (A, B), preferring ``model_a`` or
``model_b``, or a **tie** for ``winner_tie`` (this table does not tell a tie from a both-bad
vote, so every tie is a tie). The judge is ``arena-human-preference`` (human; the table names
no voter); responses are the final turns of each side, tagged with their model
(``origin="model"``).

**Multi-turn battles** follow the ``multi_turn`` rule of the battle logs:
``"preferred_context"`` (default: the prompt is every user turn with the earlier answers of the
preferred side, side A for ties; flagged ``multi_turn``, plus ``context_from_preferred`` when
the two sides' earlier answers differ) or ``"drop"`` (``dropped_multi_turn``).

**Repeated battles**: a row whose ``id`` was already read earlier in the file gives no
judgment: the first occurrence wins, each later one is counted as ``skipped_repeated_source``
and noted with its line, the id and the first occurrence's line (the rule of
:mod:`preflab.formats.arena`).

Dropped and counted (each noted with file, line and id): ``dropped_empty_response`` (a final
answer is null or empty), ``dropped_missing_turn`` (an earlier turn, or the last user turn, is
null or empty), ``dropped_identical`` (same model and the same final answer on both sides).
A turn holding a lone UTF-16 surrogate (a ``"\\ud83d"`` escape cut from its pair, which JSON text
can hold) is not text: the surrogate becomes U+FFFD and the row is imported and
counted (``replaced_lone_surrogates``). Bad input (an error, or a reported skip with
``skip_invalid``): a field that is not a JSON list
of strings, lists of different lengths, or winner columns that are not exactly one 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.formats.arena import MULTI_TURN_RULES, MultiTurnRule, vote
from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ChunkBuilder
from preflab.formats.driver import check_choice, read_file
from preflab.formats.fields import RowError, describe, get_number, get_str, optional_str

__all__ = ["JUDGE_ID", "make_parser", "read_arena_human_preference"]

JUDGE_ID = "arena-human-preference"
_WINNERS = ("winner_model_a", "winner_model_b", "winner_tie")


def _valid_text(text: str) -> tuple[str, bool]:
    """Return ``text`` with lone surrogates (a JSON ``\\ud83d`` cut from its pair) as U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"), True
    return text, False


def _turns(row: dict[str, Any], key: str) -> list[str | None]:
    value = row.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowError(
                key, f"expected a JSON list of strings, got text that is not JSON ({exc.msg})",
                value,
            ) from None
    if not isinstance(value, list):
        raise RowError(
            key, f"expected a JSON list of strings (one per turn), got {describe(value)}", value
        )
    if not value:
        raise RowError(key, "expected at least one turn, got an empty list")
    for i, turn in enumerate(value):
        if turn is not None and not isinstance(turn, str):
            raise RowError(f"{key}[{i}]", f"expected a string or null, got {describe(turn)}", turn)
    return value


def _repair(turns: list[str | None]) -> tuple[list[str | None], bool]:
    out: list[str | None] = []
    repaired = False
    for turn in turns:
        if turn is not None:
            turn, bad = _valid_text(turn)
            repaired |= bad
        out.append(turn)
    return out, repaired


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def make_parser(multi_turn: MultiTurnRule) -> Any:
    """Return a row parser following the ``multi_turn`` rule (see the module docstring)."""

    def parse(b: ChunkBuilder, row: dict[str, Any]) -> None:
        model_a = get_str(row, "model_a")
        model_b = get_str(row, "model_b")
        votes = [int(get_number(row, key, lo=0, hi=1, integer=True)) for key in _WINNERS]
        if sum(votes) != 1:
            raise RowError(
                "winner_model_a",
                "expected exactly one of winner_model_a, winner_model_b, winner_tie to be 1, got "
                + ", ".join(f"{k}={v}" for k, v in zip(_WINNERS, votes, strict=True)),
            )
        prompts = _turns(row, "prompt")
        sides = [_turns(row, "response_a"), _turns(row, "response_b")]
        for key, turns in zip(("response_a", "response_b"), sides, strict=True):
            if len(turns) != len(prompts):
                raise RowError(
                    key, f"expected {len(prompts)} turns (as many as prompt), got {len(turns)}"
                )
        repaired = False
        for k, turns in enumerate((prompts, *sides)):
            fixed, bad = _repair(turns)
            if bad:
                repaired = True
                if k == 0:
                    prompts = fixed
                else:
                    sides[k - 1] = fixed
        battle_id = optional_str(row, "id")
        if battle_id is not None and b.skip_repeated_source(
            "arena-battle", battle_id, seen=f"battle {battle_id!r} was already read", field="id"
        ):
            return
        where = f"battle {battle_id!r}: " if battle_id is not None else ""
        for key, turns in zip(("response_a", "response_b"), sides, strict=True):
            if _blank(turns[-1]):
                b.drop("empty_response", f"{where}the final answer of {key} is null or empty",
                       field=f"{key}[{len(turns) - 1}]")
                return
        earlier = (("prompt", prompts), ("response_a", sides[0][:-1]), ("response_b", sides[1][:-1]))
        for key, turns in earlier:
            for i, text in enumerate(turns):
                if _blank(text):
                    b.drop("missing_turn", f"{where}turn {i + 1} of {key} is null or empty",
                           field=f"{key}[{i}]")
                    return
        turns = len(prompts)
        if turns > 1 and multi_turn == "drop":
            b.drop("multi_turn", f"{where}a {turns}-turn battle (multi_turn=\"drop\")")
            return
        reply_a, reply_b = str(sides[0][-1]), str(sides[1][-1])
        if model_a == model_b and reply_a.strip() == reply_b.strip():
            b.drop("identical", f"{where}same model and the same final answer on both sides")
            return
        winner = ("model_a", "model_b", "tie")[votes.index(1)]
        preferred_side = sides[1] if winner == "model_b" else sides[0]
        context: list[dict[str, str]] = []
        for i in range(turns - 1):
            context.append({"role": "user", "content": str(prompts[i])})
            context.append({"role": "assistant", "content": str(preferred_side[i])})
        context.append({"role": "user", "content": str(prompts[-1])})
        flags = []
        if turns > 1:
            flags.append("multi_turn")
            if sides[0][:-1] != sides[1][:-1]:
                flags.append("context_from_preferred")
        prompt_id = b.add_prompt(context, field="prompt")
        id_a = b.add_response(prompt_id, reply_a, field="response_a", model=model_a, origin="model")
        id_b = b.add_response(prompt_id, reply_b, field="response_b", model=model_b, origin="model")
        if id_a == id_b:  # same model, same text once normalized
            b.rollback_row()
            b.drop("identical", f"{where}same model and the same final answer once normalized")
            return
        if repaired:
            b.note("replaced_lone_surrogates",
                   f"{where}lone UTF-16 surrogates in the JSON text replaced by U+FFFD")
        b.add_judge(JUDGE_ID, "human", name="Chatbot Arena voters", vendor="lmsys chatbot arena")
        b.add_judgment(
            prompt_id=prompt_id,
            response_ids=[id_a, id_b],
            kind="pairwise",
            judge_id=JUDGE_ID,
            pairwise=vote(winner, id_a, id_b),
            flags=flags,
            id_extra=battle_id,
        )

    return parse


def read_arena_human_preference(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
    multi_turn: MultiTurnRule = "preferred_context",
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from an arena human-preference table (see the module doc).

    Args:
        path: the file (``train.csv`` as published, optionally compressed; or Parquet/JSONL).
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
        multi_turn: ``preferred_context`` or ``drop`` (see the module doc).

    Raises:
        UsageError: an unknown ``multi_turn`` rule.
    """
    check_choice("multi_turn", multi_turn, MULTI_TURN_RULES)
    return read_file(
        path,
        make_parser(multi_turn),
        format="arena-human-preference",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
