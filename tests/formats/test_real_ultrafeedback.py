"""UltraFeedback reader on a whole published file, checked against an independent reading.

File (tests/data_catalog.py): ``ultrafeedback/false_qa.jsonl``, raw rows of the Hub's
``openbmb/UltraFeedback``; not in the shared data folder yet, so these tests skip until given
through ``PREFLAB_TEST_DATA`` or downloaded. The reading uses plain ``json`` and the card's
fields: per completion the four GPT-4 aspect ratings (``"N/A"`` left out), ``fine-grained_score``
and ``overall_score``; empty and repeated completions dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.formats.real_files import last_user_texts, norm, read_both

FILE = "ultrafeedback/false_qa.jsonl"
ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def _rating(value: Any) -> float | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    rating = value.get("Rating")
    if rating is None or str(rating).strip().upper() in ("N/A", "NA", ""):
        return None
    return float(rating)


def independent(path: Path) -> tuple[int, Counter[str], dict[Any, dict[str, float]]]:
    rows, counts = 0, Counter[str]()
    scores: dict[Any, dict[str, float]] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rows += 1
            r = json.loads(line)
            prompt = norm(r["instruction"])
            seen: set[tuple[str, Any]] = set()
            kept: dict[Any, dict[str, float]] = {}
            row_counts: Counter[str] = Counter()
            for c in r["completions"]:
                text = c.get("response")
                if not text or not text.strip():
                    row_counts["dropped_empty_response"] += 1
                    continue
                key = (norm(text), c.get("model"))
                if key in seen:
                    row_counts["dropped_duplicate_completion"] += 1
                    continue
                seen.add(key)
                got: dict[str, float] = {}
                for aspect in ASPECTS:
                    value = _rating((c.get("annotations") or {}).get(aspect))
                    if value is None:
                        row_counts["na_ratings"] += 1
                    else:
                        got[aspect] = value
                if c.get("fine-grained_score") is not None:
                    got["fine_grained_score"] = float(c["fine-grained_score"])
                if c.get("overall_score") is not None:
                    got["overall_score"] = float(c["overall_score"])
                kept[(prompt, *key)] = got
            if not kept:
                counts["dropped_no_completions"] += 1
                continue
            counts.update(row_counts)
            scores.update(kept)
    return rows, counts, scores


@pytest.fixture(scope="module")
def uf():
    return read_both(FILE, "ultrafeedback", independent)


def test_rows_and_drops_match_the_file(uf) -> None:
    (rows, counts, _), chunk = uf
    assert chunk.counts["rows"] == rows
    for reason in ("dropped_empty_response", "dropped_duplicate_completion", "dropped_no_completions",
                   "na_ratings"):
        assert chunk.counts.get(reason, 0) == counts[reason], reason


def test_every_score_of_every_completion_matches_the_file(uf) -> None:
    (_, _, scores), chunk = uf
    resp = {r["response_id"]: r for r in chunk.responses.select(["response_id", "content", "model"]).to_pylist()}
    prompt = last_user_texts(chunk)
    got: dict[Any, dict[str, float]] = {}
    for j in chunk.judgments.select(["prompt_id", "judge_id", "rating"]).to_pylist():
        for s in j["rating"]["scores"]:
            r = resp[s["response_id"]]
            got.setdefault((prompt[j["prompt_id"]], norm(r["content"]), r["model"]), {})[s["attribute"]] = s["score"]
    assert got == {k: v for k, v in scores.items() if v}
