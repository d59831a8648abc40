"""HH-RLHF red-team reader on the published file, checked against an independent reading.

File (tests/data_catalog.py): ``hh-rlhf/red_team_attempts.jsonl.gz`` (anthropics/hh-rlhf,
``red-team-attempts/``; one JSON array); not in the shared data folder, so these tests skip until
given through ``PREFLAB_TEST_DATA`` or downloaded. The reading loads the whole array with
``json`` and splits transcripts on their ``Human:``/``Assistant:`` markers itself.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from typing import Any

import pytest

from preflab.formats.registry import read
from tests.data_catalog import data_file
from tests.formats.real_files import norm_bare_cr, prompt_turns, response_texts

FILE = "hh-rlhf/red_team_attempts.jsonl.gz"
_SPLIT = re.compile(r"\n\n(Human|Assistant):")


def _turns(text: str) -> list[tuple[str, str]] | str:
    parts = _SPLIT.split(text)
    if parts[0].strip() or len(parts) < 3:
        return "dropped_unparsable"
    turns = [("user" if parts[i] == "Human" else "assistant", parts[i + 1].strip())
             for i in range(1, len(parts), 2)]
    if turns[-1][0] == "user":
        turns = turns[:-1]
    if not turns or turns[0][0] != "user" or turns[-1][0] != "assistant":
        return "dropped_unparsable"
    if any(x[0] == y[0] for x, y in zip(turns, turns[1:])):
        return "dropped_consecutive_turns"
    if any(not t for _, t in turns[:-1]):
        return "dropped_empty_turn"
    if not turns[-1][1]:
        return "dropped_empty_response"
    return turns


@pytest.fixture(scope="module")
def red_team():
    path = data_file(FILE)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        attempts = json.load(f)
    drops: Counter[str] = Counter()
    expected: Counter[Any] = Counter()
    for a in attempts:
        turns = _turns(a["transcript"])
        if isinstance(turns, str):
            drops[turns] += 1
            continue
        prompt = tuple((r, norm_bare_cr(t)) for r, t in turns[:-1])
        expected[(prompt, norm_bare_cr(turns[-1][1]), a.get("rating"),
                  a.get("min_harmlessness_score_transcript"))] += 1
    return attempts, drops, expected, read("hh-red-team", path)


def test_attempts_and_drops_match_the_file(red_team) -> None:
    attempts, drops, _, chunk = red_team
    assert chunk.counts["rows"] == len(attempts)
    for reason in ("dropped_unparsable", "dropped_consecutive_turns", "dropped_empty_turn",
                   "dropped_empty_response"):
        assert chunk.counts.get(reason, 0) == drops[reason], reason


def test_every_answer_keeps_its_two_scores(red_team) -> None:
    _, _, expected, chunk = red_team
    text = response_texts(chunk, norm_bare_cr)
    prompt = prompt_turns(chunk, norm_bare_cr)
    per_line: dict[int, dict[str, Any]] = {}
    for j in chunk.judgments.to_pylist():
        (s,) = j["rating"]["scores"]
        row = per_line.setdefault(j["source_line"], {"key": (prompt[j["prompt_id"]], text[s["response_id"]])})
        row[s["attribute"]] = s["score"]
    got = Counter((*r["key"], r.get("attack_success"), r.get("harmlessness")) for r in per_line.values())
    assert got == expected
