"""Nectar reader on the whole published file, checked against an independent reading.

File (tests/data_catalog.py): ``nectar/rlaif.parquet``, the Hub's ``berkeley-nest/Nectar``
``data/rlaif.parquet`` (not in the shared data folder yet, so these tests skip until it is given
through ``PREFLAB_TEST_DATA`` or can be downloaded). The reading below uses pyarrow and the
published fields only: the prompt transcript, the answers with their GPT-4 rank (1 = best).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.formats.real_files import prompt_turns, read_both, response_texts

FILE = "nectar/rlaif.parquet"
_MARK = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def _prompt(transcript: str) -> tuple[tuple[str, str], ...] | None:
    parts = _MARK.split(transcript)
    head, rest = parts[0], parts[1:]
    if head.strip() or not rest or rest[0] != "Human":
        return None
    turns = [(_ROLE[rest[i]], rest[i + 1].strip()) for i in range(0, len(rest), 2)]
    if turns[-1] == ("assistant", ""):
        turns = turns[:-1]  # the final empty "Assistant:" cue
    if not turns or turns[-1][0] != "user":
        return None
    if any(a[0] == b[0] for a, b in zip(turns, turns[1:])):
        return ("consecutive",)  # type: ignore[return-value]
    if any(not text for _, text in turns):
        return ("empty",)  # type: ignore[return-value]
    return tuple(turns)


def independent(path: Path) -> tuple[int, Counter[str], Counter[Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["prompt", "answers"])
    drops: Counter[str] = Counter()
    rankings: Counter[Any] = Counter()
    for row in table.to_pylist():
        prompt = _prompt(row["prompt"])
        if prompt is None:
            drops["dropped_unparsable"] += 1
            continue
        if prompt == ("consecutive",):
            drops["dropped_consecutive_turns"] += 1
            continue
        if prompt == ("empty",):
            drops["dropped_empty_turn"] += 1
            continue
        seen: set[tuple[str, str]] = set()
        groups: dict[int, list[str]] = defaultdict(list)
        per_answer: Counter[str] = Counter()
        for a in row["answers"]:
            text = a["answer"].strip()
            if not text:
                per_answer["dropped_empty_answer"] += 1
            elif (text, a["model"]) in seen:
                per_answer["dropped_duplicate_answer"] += 1
            elif a["rank"] is None:
                seen.add((text, a["model"]))
                per_answer["unranked_answers"] += 1
            else:
                seen.add((text, a["model"]))
                groups[int(a["rank"])].append(text)
        if sum(len(g) for g in groups.values()) < 2:
            drops["dropped_too_few_answers"] += 1
            continue
        drops.update(per_answer)  # counted for the rows that are kept
        rankings[(prompt, tuple(tuple(sorted(groups[k])) for k in sorted(groups)))] += 1
    return table.num_rows, drops, rankings


@pytest.fixture(scope="module")
def nectar():
    return read_both(FILE, "nectar", independent)


def test_rows_and_drops_match_the_file(nectar) -> None:
    (rows, drops, rankings), chunk = nectar
    assert chunk.counts["rows"] == rows
    assert chunk.judgments.num_rows == sum(rankings.values())
    counted = {k: v for k, v in chunk.counts.items()
               if k.startswith("dropped_") or k == "unranked_answers"}
    assert counted == dict(drops)


def test_rankings_follow_gpt4_ranks_best_first(nectar) -> None:
    (_, _, rankings), chunk = nectar
    text = response_texts(chunk, str.strip)
    prompt = prompt_turns(chunk, str)  # turns as stored
    got: Counter[Any] = Counter()
    for j in chunk.judgments.select(["prompt_id", "ranking"]).to_pylist():
        got[(prompt[j["prompt_id"]], tuple(tuple(sorted(text[r] for r in g)) for g in j["ranking"]))] += 1
    assert got == rankings
    assert any(len(p) > 1 for p, _ in got)  # multi-turn prompts keep their context
