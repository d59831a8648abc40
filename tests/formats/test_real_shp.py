"""SHP reader on a whole published file, checked against an independent reading.

File (tests/data_catalog.py): ``shp/askacademia-test.json`` (the Hub's ``stanfordnlp/SHP``;
not in the shared data folder yet, so these tests skip until it is given through
``PREFLAB_TEST_DATA`` or can be downloaded). The reading uses plain ``json`` and the dataset
card's fields: ``labels`` 1 = comment A preferred, the score ratio, repeated comparisons.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.formats.real_files import last_user_texts, norm, read_both, reason_counts, response_texts

FILE = "shp/askacademia-test.json"


def independent(path: Path) -> tuple[int, Counter[str], Counter[Any]]:
    rows, reasons, pairs = 0, Counter[str](), Counter[Any]()
    seen: set[tuple[str, ...]] = set()
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rows += 1
            r = json.loads(line)
            key = (r["post_id"], *sorted((r["c_root_id_A"], r["c_root_id_B"])))
            if key in seen:
                reasons["skipped_repeated_source"] += 1
                continue
            seen.add(key)
            a, b = r["human_ref_A"], r["human_ref_B"]
            if a.strip() == b.strip():
                reasons["dropped_identical"] += 1
                continue
            won, lost = (a, b) if r["labels"] == 1 else (b, a)
            pairs[(norm(r["history"]), norm(won), norm(lost), f"score_ratio={r['score_ratio']:g}")] += 1
    return rows, reasons, pairs


@pytest.fixture(scope="module")
def shp():
    return read_both(FILE, "shp", independent)


def test_rows_and_reasons_match_the_file(shp) -> None:
    (rows, reasons, pairs), chunk = shp
    assert chunk.counts["rows"] == rows
    assert reason_counts(chunk) == dict(reasons)
    assert chunk.judgments.num_rows == sum(pairs.values())


def test_preferred_comment_and_score_ratio_match_the_file(shp) -> None:
    (_, _, pairs), chunk = shp
    text = response_texts(chunk)
    prompt = last_user_texts(chunk)
    got: Counter[Any] = Counter()
    for j in chunk.judgments.select(["prompt_id", "response_ids", "pairwise", "comment"]).to_pylist():
        preferred = j["pairwise"]["preferred"]
        (other,) = [r for r in j["response_ids"] if r != preferred]
        got[(prompt[j["prompt_id"]], text[preferred], text[other], j["comment"])] += 1
    assert got == pairs
