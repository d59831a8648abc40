"""Chatbot Arena reader on the whole published battle log, checked against an independent reading.

File (tests/data_catalog.py): ``arena/chatbot_arena_conversations.parquet``, the Hub's gated
``lmsys/chatbot_arena_conversations`` (33,000 battles); not in the shared data folder, so these
tests skip until it is given through ``PREFLAB_TEST_DATA``. The reading uses pyarrow and the
card's fields: ``winner`` (model_a, model_b, tie, tie (bothbad)), both conversations, repeated
``question_id``s, and the documented context rule for multi-turn battles (the preferred side's
earlier turns; side A for ties).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.formats.real_files import norm, norm_turns, prompt_turns, read_both, reason_counts

FILE = "arena/chatbot_arena_conversations.parquet"
_OUTCOME = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}


def independent(path: Path) -> tuple[int, Counter[str], Counter[Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["question_id", "model_a", "model_b", "winner",
                                         "conversation_a", "conversation_b"])
    reasons: Counter[str] = Counter()
    battles: Counter[Any] = Counter()
    seen: set[str] = set()
    for r in table.to_pylist():
        if r["question_id"] in seen:
            reasons["skipped_repeated_source"] += 1
            continue
        seen.add(r["question_id"])
        a, b = r["conversation_a"], r["conversation_b"]
        if [m for m in a if m["role"] != "assistant"] != [m for m in b if m["role"] != "assistant"]:
            reasons["dropped_divergent"] += 1
            continue
        if not a[-1]["content"].strip() or not b[-1]["content"].strip():
            reasons["dropped_empty_response"] += 1
            continue
        if r["model_a"] == r["model_b"] and a[-1]["content"].strip() == b[-1]["content"].strip():
            reasons["dropped_identical"] += 1
            continue
        context = (b if r["winner"] == "model_b" else a)[:-1]
        battles[(norm_turns(context), norm(a[-1]["content"]), r["model_a"], norm(b[-1]["content"]),
                 r["model_b"], _OUTCOME[r["winner"]])] += 1
    return table.num_rows, reasons, battles


@pytest.fixture(scope="module")
def arena():
    return read_both(FILE, "arena", independent)


def test_rows_and_reasons_match_the_file(arena) -> None:
    (rows, reasons, battles), chunk = arena
    assert chunk.counts["rows"] == rows
    assert reason_counts(chunk) == dict(reasons)
    assert chunk.judgments.num_rows == sum(battles.values())


def test_winner_ties_both_bad_and_context_match_the_file(arena) -> None:
    (_, _, battles), chunk = arena
    resp = {r["response_id"]: (norm(r["content"]), r["model"])
            for r in chunk.responses.select(["response_id", "content", "model"]).to_pylist()}
    prompt = prompt_turns(chunk)
    got: Counter[Any] = Counter()
    for j in chunk.judgments.select(["prompt_id", "response_ids", "pairwise"]).to_pylist():
        id_a, id_b = j["response_ids"]
        pw = j["pairwise"]
        outcome = ("tie" if pw["tie"] else "both_bad" if pw["both_bad"]
                   else "a" if pw["preferred"] == id_a else "b")
        got[(prompt[j["prompt_id"]], *resp[id_a], *resp[id_b], outcome)] += 1
    assert got == battles
    assert {k[-1] for k in battles} == {"a", "b", "tie", "both_bad"}  # all four outcomes occur
