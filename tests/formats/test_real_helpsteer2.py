"""HelpSteer2 reader on whole published files, checked against an independent reading.

Files (tests/data_catalog.py): ``helpsteer2/validation.jsonl.gz`` (attribute ratings) and
``helpsteer2/preference.jsonl.gz`` (the preference file), from the Hub's ``nvidia/HelpSteer2``;
not in the shared data folder yet, so these tests skip until given through
``PREFLAB_TEST_DATA`` or downloaded. The reading uses plain ``json`` and the card's fields:
five ratings 0–4 per response; ``preference_strength`` −3..3 (negative: response 1 better, 0:
equal); multi-turn prompts split at ``<extra_id_1>User`` / ``<extra_id_1>Assistant``.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from preflab.formats.registry import read
from tests.data_catalog import data_file
from tests.formats.real_files import norm, prompt_turns, response_texts

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
_TURN = re.compile(r"<extra_id_1>(User|Assistant)\n?")


def _messages(prompt: str) -> tuple[tuple[str, str], ...]:
    parts = _TURN.split(prompt)
    out = [("user", norm(parts[0]))]
    out += [("user" if parts[i] == "User" else "assistant", norm(parts[i + 1]))
            for i in range(1, len(parts), 2)]
    return tuple(out)


def _rows(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _lookups(chunk: Any) -> tuple[dict[str, str], dict[str, Any]]:
    return response_texts(chunk), prompt_turns(chunk, str)  # prompt turns as stored


def test_ratings_file_scores_match_the_file() -> None:
    path = data_file("helpsteer2/validation.jsonl.gz")
    rows = _rows(path)
    expected = Counter((_messages(r["prompt"]), norm(r["response"]),
                        tuple(float(r[a]) for a in ATTRIBUTES)) for r in rows)
    chunk = read("helpsteer2", path)
    assert chunk.counts["rows"] == len(rows) == chunk.judgments.num_rows
    text, prompt = _lookups(chunk)
    got: Counter[Any] = Counter()
    for j in chunk.judgments.select(["prompt_id", "response_ids", "rating"]).to_pylist():
        scores = {s["attribute"]: s["score"] for s in j["rating"]["scores"]}
        got[(prompt[j["prompt_id"]], text[j["response_ids"][0]], tuple(scores[a] for a in ATTRIBUTES))] += 1
    assert got == expected
    assert any(len(p) > 1 for p, _, _ in expected)  # real multi-turn prompts


def test_preference_file_sides_strengths_and_ties_match_the_file() -> None:
    path = data_file("helpsteer2/preference.jsonl.gz")
    rows = _rows(path)
    identical = sum(r["response_1"].strip() == r["response_2"].strip() for r in rows)
    expected: Counter[Any] = Counter()
    for r in rows:
        if r["response_1"].strip() == r["response_2"].strip():
            continue
        s = int(r["preference_strength"])
        side = None if s == 0 else (1 if s < 0 else 2)
        expected[(_messages(r["prompt"]), norm(r["response_1"]), norm(r["response_2"]), side, abs(s))] += 1
    chunk = read("helpsteer2", path)
    assert chunk.counts["rows"] == len(rows)
    assert chunk.counts.get("dropped_identical", 0) == identical
    text, prompt = _lookups(chunk)
    got: Counter[Any] = Counter()
    for j in chunk.judgments.select(["prompt_id", "response_ids", "pairwise"]).to_pylist():
        one, two = j["response_ids"]
        pw = j["pairwise"]
        side = None if pw["tie"] else (1 if pw["preferred"] == one else 2)
        assert pw["scale"] == 7 and (pw["preferred"] is None) == pw["tie"]
        got[(prompt[j["prompt_id"]], text[one], text[two], side, pw["strength"])] += 1
    assert got == expected
    assert any(k[3] is None for k in expected)  # the file has real ties (strength 0)
