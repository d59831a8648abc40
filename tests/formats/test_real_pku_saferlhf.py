"""PKU-SafeRLHF reader on a whole published file, checked against an independent reading.

File (tests/data_catalog.py): ``pku-saferlhf/Alpaca-7B-test.jsonl``, the Hub's
``PKU-Alignment/PKU-SafeRLHF`` ``data/Alpaca-7B/test.jsonl`` (not in the shared data folder yet,
so these tests skip until it is given through ``PREFLAB_TEST_DATA`` or can be downloaded). The
reading below follows the dataset card's fields with plain ``json``: the helpfulness preference
(``better_response_id``), the harmlessness preference (``safer_response_id``), the safety label
of each answer with its harm categories and severity, and the drops.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.formats.real_files import last_user_texts, norm, read_both, reason_counts, response_texts

FILE = "pku-saferlhf/Alpaca-7B-test.jsonl"


def independent(path: Path) -> dict[str, Any]:
    """Counts, drops and the expected judgments of every row, from the raw JSON lines."""
    rows = 0
    drops: Counter[str] = Counter()
    helpful: Counter[Any] = Counter()
    harmless: Counter[Any] = Counter()
    safety: Counter[Any] = Counter()
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rows += 1
            row = json.loads(line)
            texts = [row["response_0"], row["response_1"]]
            if any(not t.strip() for t in texts):
                drops["dropped_empty_response"] += 1
                continue
            if norm(texts[0]) == norm(texts[1]):
                drops["dropped_identical"] += 1
                continue
            prompt = norm(row["prompt"])
            b, s = row["better_response_id"], row["safer_response_id"]
            helpful[(prompt, norm(texts[b]), norm(texts[1 - b]))] += 1
            harmless[(prompt, norm(texts[s]), norm(texts[1 - s]))] += 1
            for i in (0, 1):
                reasons = [f"harm:{k}" for k, v in (row.get(f"response_{i}_harm_category") or {}).items() if v]
                if row.get(f"response_{i}_severity_level") is not None:
                    reasons.append(f"severity:{row[f'response_{i}_severity_level']}")
                safety[(prompt, norm(texts[i]), row[f"is_response_{i}_safe"], tuple(sorted(reasons)))] += 1
    return {"rows": rows, "drops": drops, "helpful": helpful, "harmless": harmless, "safety": safety}


def imported(chunk: Any) -> dict[str, Counter[Any]]:
    text = response_texts(chunk)
    prompt = last_user_texts(chunk)
    out: dict[str, Counter[Any]] = {"helpful": Counter(), "harmless": Counter(), "safety": Counter()}
    for j in chunk.judgments.select(["prompt_id", "judge_id", "response_ids", "pairwise", "binary"]).to_pylist():
        p = prompt[j["prompt_id"]]
        if j["judge_id"] == "pku-saferlhf/safety":
            b = j["binary"]
            out["safety"][(p, text[b["response_id"]], b["label"], tuple(sorted(b["reasons"])))] += 1
            continue
        preferred = j["pairwise"]["preferred"]
        (other,) = [r for r in j["response_ids"] if r != preferred]
        key = {"pku-saferlhf/helpfulness": "helpful", "pku-saferlhf/harmlessness": "harmless"}[j["judge_id"]]
        out[key][(p, text[preferred], text[other])] += 1
    return out


@pytest.fixture(scope="module")
def pku():
    return read_both(FILE, "pku-saferlhf", independent)


def test_rows_and_drops_match_the_file(pku) -> None:
    expected, chunk = pku
    assert chunk.counts["rows"] == expected["rows"]
    assert reason_counts(chunk, ("dropped_",)) == dict(expected["drops"])


def test_both_preferences_and_the_safety_labels_match_the_file(pku) -> None:
    expected, chunk = pku
    got = imported(chunk)
    assert got["helpful"] == expected["helpful"]
    assert got["harmless"] == expected["harmless"]
    assert got["safety"] == expected["safety"]
    # the two preferences really disagree on part of the published rows
    assert expected["helpful"] != expected["harmless"]
