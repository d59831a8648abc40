"""UltraFeedback-binarized reader on a published split, checked against an independent reading.

File (tests/data_catalog.py): ``ultrafeedback/ultrafeedback_binarized-test_prefs.parquet``, the
Hub's HuggingFaceH4/ultrafeedback_binarized test_prefs split; not in the shared data folder, so
these tests skip until given through ``PREFLAB_TEST_DATA``. The reading uses pyarrow and the
card's columns: the prompt is the messages before chosen's answer; both scores are kept.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from preflab.derive import derive
from preflab.formats.registry import read
from tests.data_catalog import data_file
from tests.formats.real_files import norm_bare_cr, norm_turns, prompt_turns, response_texts

FILE = "ultrafeedback/ultrafeedback_binarized-test_prefs.parquet"


@pytest.fixture(scope="module")
def ufb():
    import pyarrow.parquet as pq

    path = data_file(FILE)
    rows = pq.read_table(path, columns=["chosen", "rejected", "score_chosen", "score_rejected"]).to_pylist()
    drops: Counter[str] = Counter()
    expected: Counter[Any] = Counter()
    for r in rows:
        c, j = r["chosen"], r["rejected"]
        if c[:-1] != j[:-1]:
            drops["dropped_divergent"] += 1
        elif not c[-1]["content"].strip() or not j[-1]["content"].strip():
            drops["dropped_empty_response"] += 1
        elif norm_bare_cr(c[-1]["content"]) == norm_bare_cr(j[-1]["content"]):
            drops["dropped_identical"] += 1
        else:
            prompt = norm_turns(c[:-1], norm_bare_cr)
            expected[(prompt, norm_bare_cr(c[-1]["content"]), r["score_chosen"],
                      norm_bare_cr(j[-1]["content"]), r["score_rejected"])] += 1
    return rows, drops, expected, read("ultrafeedback-binarized", path)


def test_rows_and_drops_match_the_file(ufb) -> None:
    rows, drops, _, chunk = ufb
    assert chunk.counts["rows"] == len(rows)
    for reason in ("dropped_divergent", "dropped_empty_response", "dropped_identical"):
        assert chunk.counts.get(reason, 0) == drops[reason], reason


def test_every_score_is_kept_on_its_answer(ufb) -> None:
    _, _, expected, chunk = ufb
    text = response_texts(chunk, norm_bare_cr)
    prompt = prompt_turns(chunk, norm_bare_cr)
    got: Counter[Any] = Counter()
    for j in chunk.judgments.to_pylist():
        (c, sc), (r, sr) = [(s["response_id"], s["score"]) for s in j["rating"]["scores"]]
        got[(prompt[j["prompt_id"]], text[c], sc, text[r], sr)] += 1
    assert got == expected


def test_derive_pairs_prefer_the_higher_score_with_its_margin(ufb) -> None:
    """A prompt in one row gives back its published pair; rows sharing a prompt form one set."""
    _, _, expected, chunk = ufb
    rows_of: dict[Any, list[Any]] = {}
    for (prompt, c, sc, r, sr), n in expected.items():
        rows_of.setdefault(prompt, []).extend([(c, sc, r, sr)] * n)
    result = derive(chunk.prompts, chunk.responses, chunk.judgments)
    prompt = prompt_turns(chunk, norm_bare_cr)
    got: dict[Any, list[Any]] = {}
    for p in result.pairs.select(["prompt_id", "chosen", "rejected", "margin"]).to_pylist():
        got.setdefault(prompt[p["prompt_id"]], []).append((norm_bare_cr(p["chosen"]), norm_bare_cr(p["rejected"]), p["margin"]))
    for key, rows in rows_of.items():
        if len(rows) == 1:
            ((c, sc, r, sr),) = rows
            want = [] if sc == sr else [(c, r, sc - sr) if sc > sr else (r, c, sr - sc)]
            assert got.get(key, []) == want, key
        else:
            scores: dict[str, list[float]] = {}
            for c, sc, r, sr in rows:
                scores.setdefault(c, []).append(sc)
                scores.setdefault(r, []).append(sr)
            mean = {t: sum(v) / len(v) for t, v in scores.items()}
            for chosen, rejected, margin in got.get(key, []):
                assert mean[chosen] == max(mean.values()) and margin == mean[chosen] - mean[rejected] > 0
    assert sum(map(len, got.values())) == result.pairs.num_rows > 0
