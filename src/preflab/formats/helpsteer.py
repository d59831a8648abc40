"""HelpSteer2 (Wang et al. 2024, huggingface.co/datasets/nvidia/HelpSteer2).

Two files, told apart row by row:

- **attribute ratings** (``train.jsonl.gz``/``validation.jsonl.gz``): ``prompt``, ``response``,
  ``helpfulness``, ``correctness``, ``coherence``, ``complexity``, ``verbosity`` (each 0–4). Each
  row becomes one **rating judgment** of its one response, scale 0–4, by the judge
  ``helpsteer2`` (human annotators, scores as published). Rows sharing a prompt share its id, so
  derivations can compare the responses of one prompt.
- **preferences** (``preference/preference.jsonl.gz``): ``prompt``, ``response_1``,
  ``response_2``, ``preference_strength`` in −3..3 (negative: response 1 is better; 0: equal),
  ``preference_statement``, ``preference_elaboration``, ``split``. Each row becomes one
  **pairwise judgment** on a 7-point scale, shown order (response 1, response 2): strength
  ``|preference_strength|``, a tie at 0; the statement is kept as ``comment``.

Multi-turn prompts, written with ``<extra_id_1>User`` / ``<extra_id_1>Assistant`` separators,
are split into messages. Prompts are tagged ``split:<split>`` when the row says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.formats.base import ImportChunk
from preflab.formats.chunk_builder import ChunkBuilder
from preflab.formats.driver import read_file
from preflab.formats.fields import get_number, get_str, optional_str

__all__ = ["ATTRIBUTES", "JUDGE_ID", "read_helpsteer2", "split_turns", "parse_row"]

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
JUDGE_ID = "helpsteer2"
_TURN = re.compile(r"<extra_id_1>(User|Assistant)\n?")


def split_turns(prompt: str) -> list[dict[str, str]]:
    """Return the messages of a HelpSteer2 prompt (multi-turn prompts use ``<extra_id_1>``).

    >>> [m["role"] for m in split_turns("Hi<extra_id_1>Assistant\\nHello<extra_id_1>User\\nBye")]
    ['user', 'assistant', 'user']
    """
    parts = _TURN.split(prompt)
    messages = [{"role": "user", "content": parts[0].strip()}]
    for i in range(1, len(parts), 2):
        messages.append(
            {"role": "user" if parts[i] == "User" else "assistant", "content": parts[i + 1].strip()}
        )
    return messages


def _prompt(b: ChunkBuilder, row: dict[str, Any]) -> str:
    text = get_str(row, "prompt")
    split = optional_str(row, "split")
    return b.add_prompt(split_turns(text), field="prompt", tags=[f"split:{split}"] if split else [])


def _parse_rating(b: ChunkBuilder, row: dict[str, Any]) -> None:
    prompt_id = _prompt(b, row)
    response_id = b.add_response(prompt_id, get_str(row, "response"), field="response")
    scores = [
        {
            "response_id": response_id,
            "attribute": a,
            "score": float(get_number(row, a, lo=0, hi=4, integer=True)),
        }
        for a in ATTRIBUTES
    ]
    b.add_judge(JUDGE_ID, "imported", name="HelpSteer2 annotators")
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[response_id],
        kind="rating",
        judge_id=JUDGE_ID,
        rating={"scores": scores, "scale_min": 0.0, "scale_max": 4.0},
    )


def _parse_preference(b: ChunkBuilder, row: dict[str, Any]) -> None:
    strength = int(get_number(row, "preference_strength", lo=-3, hi=3, integer=True))
    r1 = get_str(row, "response_1")
    r2 = get_str(row, "response_2")
    if r1.strip() == r2.strip():
        b.drop("identical", "response_1 and response_2 are the same text", field="response_2")
        return
    prompt_id = _prompt(b, row)
    id1 = b.add_response(prompt_id, r1, field="response_1")
    id2 = b.add_response(prompt_id, r2, field="response_2")
    preferred = None if strength == 0 else (id1 if strength < 0 else id2)
    b.add_judge(JUDGE_ID, "imported", name="HelpSteer2 annotators")
    b.add_judgment(
        prompt_id=prompt_id,
        response_ids=[id1, id2],
        kind="pairwise",
        judge_id=JUDGE_ID,
        pairwise={
            "scale": 7,
            "preferred": preferred,
            "strength": abs(strength),
            "tie": strength == 0,
            "both_bad": False,
        },
        comment=optional_str(row, "preference_statement"),
    )


def parse_row(b: ChunkBuilder, row: dict[str, Any]) -> None:
    """Check one input row and add its records to ``b`` (rules in the module docstring)."""
    if "preference_strength" in row or "response_1" in row:
        _parse_preference(b, row)
    else:
        _parse_rating(b, row)


def read_helpsteer2(
    path: str | Path,
    *,
    chunk_size: int = 10_000,
    skip_invalid: bool = False,
    max_problems: int = 100,
) -> Iterator[ImportChunk]:
    """Yield chunks of records read from a HelpSteer2 ratings or preference file.

    Args:
        path: the file (JSONL, optionally compressed, or Parquet).
        chunk_size: input rows per chunk.
        skip_invalid: report and leave out bad rows instead of stopping.
        max_problems: problems collected before giving up.
    """
    return read_file(
        path,
        parse_row,
        format="helpsteer2",
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
    )
