"""Arena human-preference reader on the published table, checked against an independent reading.

File (tests/data_catalog.py): ``arena/arena-human-preference-55k-train.csv``, the Hub's
lmarena-ai/arena-human-preference-55k ``train.csv``; not in the shared data folder, so these
tests skip until given through ``PREFLAB_TEST_DATA`` or downloaded. The reading uses the csv and
json modules and the Kaggle columns: winner, ties, repeated ids (first wins), null turns,
multi-turn context from the preferred side.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from typing import Any

import pytest

from tests.formats.real_files import norm_bare_cr, prompt_turns, read_both, response_texts

FILE = "arena/arena-human-preference-55k-train.csv"


def _norm(text: str) -> str:
    return norm_bare_cr(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


def independent(path) -> tuple[int, Counter[str], Counter[Any]]:
    csv.field_size_limit(2**31 - 1)
    rows, counts, judged = 0, Counter[str](), Counter[Any]()
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f):
            rows += 1
            if r["id"] in seen:
                counts["skipped_repeated_source"] += 1
                continue
            seen.add(r["id"])
            p, a, b = (json.loads(r[k]) for k in ("prompt", "response_a", "response_b"))
            blank = [t is None or not t.strip() for t in (a[-1], b[-1])]
            if any(blank):
                counts["dropped_empty_response"] += 1
                continue
            if any(t is None or not t.strip() for t in [*p, *a[:-1], *b[:-1]]):
                counts["dropped_missing_turn"] += 1
                continue
            if r["model_a"] == r["model_b"] and a[-1].strip() == b[-1].strip():
                counts["dropped_identical"] += 1
                continue
            winner = "b" if r["winner_model_b"] == "1" else "tie" if r["winner_tie"] == "1" else "a"
            side = b if winner == "b" else a
            context = []
            for i in range(len(p) - 1):
                context += [("user", _norm(p[i])), ("assistant", _norm(side[i]))]
            context.append(("user", _norm(p[-1])))
            judged[(tuple(context), _norm(a[-1]), _norm(b[-1]), winner)] += 1
    return rows, counts, judged


@pytest.fixture(scope="module")
def arena():
    return read_both(FILE, "arena-human-preference", independent)


def test_rows_skips_and_drops_match_the_file(arena) -> None:
    (rows, counts, _), chunk = arena
    assert chunk.counts["rows"] == rows
    for reason in ("skipped_repeated_source", "dropped_empty_response", "dropped_missing_turn",
                   "dropped_identical"):
        assert chunk.counts.get(reason, 0) == counts[reason], reason


def test_every_judgment_matches_its_battle(arena) -> None:
    (_, _, judged), chunk = arena
    text = response_texts(chunk, _norm)
    prompt = prompt_turns(chunk, _norm)
    got: Counter[Any] = Counter()
    for j in chunk.judgments.to_pylist():
        a, b = j["response_ids"]
        pw = j["pairwise"]
        winner = "tie" if pw["tie"] else "a" if pw["preferred"] == a else "b"
        got[(prompt[j["prompt_id"]], text[a], text[b], winner)] += 1
    assert got == judged
    assert {"a", "b", "tie"} <= {k[3] for k in judged}
