"""TRL preference and unpaired readers on published TRL-layout files, read independently.

Files (tests/data_catalog.py): ``trl/ultrafeedback_binarized-test.parquet`` (the Hub's
``trl-lib/ultrafeedback_binarized``: conversational rows with an implicit prompt) and
``trl/kto-mix-14k-test.parquet`` (``trl-lib/kto-mix-14k``: prompt, completion, label); not in
the shared data folder, so these tests skip until given through ``PREFLAB_TEST_DATA``. The
reading uses pyarrow and TRL's documented layouts ("Dataset formats"): the prompt of an
implicit row is the messages chosen and rejected share.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from preflab.formats.registry import read
from tests.data_catalog import data_file
from tests.formats.real_files import norm, norm_turns, prompt_turns, response_texts


def test_preference_rows_keep_the_chosen_side_and_the_shared_prompt() -> None:
    import pyarrow.parquet as pq

    path = data_file("trl/ultrafeedback_binarized-test.parquet")
    rows = pq.read_table(path, columns=["chosen", "rejected"]).to_pylist()
    expected: Counter[Any] = Counter()
    identical = 0
    for r in rows:
        c, j = r["chosen"], r["rejected"]
        i = 0
        while i < min(len(c), len(j)) and c[i] == j[i]:
            i += 1
        if i == len(c) == len(j) or c[i]["content"].strip() == j[i]["content"].strip():
            identical += 1  # the documented rule: chosen equals rejected is dropped and counted
            continue
        expected[(norm_turns(c[:i]), norm(c[i]["content"]), norm(j[i]["content"]))] += 1
    chunk = read("trl-preference", path)
    assert chunk.counts["rows"] == len(rows)
    assert chunk.counts.get("dropped_identical", 0) == identical
    text, prompt = response_texts(chunk), prompt_turns(chunk)
    got: Counter[Any] = Counter()
    for jd in chunk.judgments.select(["prompt_id", "response_ids", "pairwise"]).to_pylist():
        chosen, rejected = jd["response_ids"]
        assert jd["pairwise"]["preferred"] == chosen
        got[(prompt[jd["prompt_id"]], text[chosen], text[rejected])] += 1
    assert got == expected


def test_unpaired_rows_keep_their_label() -> None:
    import pyarrow.parquet as pq

    path = data_file("trl/kto-mix-14k-test.parquet")
    rows = pq.read_table(path, columns=["prompt", "completion", "label"]).to_pylist()
    expected = Counter((norm_turns(r["prompt"]), norm(r["completion"][0]["content"]), r["label"]) for r in rows)
    chunk = read("trl-unpaired", path)
    assert chunk.counts["rows"] == len(rows)
    text, prompt = response_texts(chunk), prompt_turns(chunk)
    got = Counter((prompt[j["prompt_id"]], text[j["binary"]["response_id"]], j["binary"]["label"])
                  for j in chunk.judgments.select(["prompt_id", "binary"]).to_pylist())
    assert got == expected
    assert {True, False} <= {k[2] for k in expected}
