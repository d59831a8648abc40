"""Contamination: 13-gram overlap with a user-given eval set."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from preflab.audit.contamination import contamination, read_eval_texts
from preflab.errors import InputError


def test_an_eval_item_copied_into_a_response_is_found(hh_pairs: pl.DataFrame) -> None:
    leaked = " ".join(hh_pairs["chosen"][5].split()[:20])
    evals = ["What is the boiling point of water at sea level in degrees Celsius?", "Unrelated " + leaked + " tail"]
    res = contamination(hh_pairs, evals)
    assert res["contaminated_rows"] >= 1
    assert {"row": 5, "eval_item": 1} in res["examples"]
    assert res["by_column"]["chosen"] >= 1 and res["eval_items_hit"] == 1


def test_twelve_shared_words_are_not_contamination() -> None:
    words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
    df = pl.DataFrame({"prompt": ["x " + " ".join(words) + " y"], "chosen": ["c"], "rejected": ["r"]})
    assert contamination(df, ["z " + " ".join(words) + " w"])["contaminated_rows"] == 0
    assert contamination(df, ["x " + " ".join(words)])["contaminated_rows"] == 1


def test_prompt_messages_are_checked(hh_pairs: pl.DataFrame) -> None:
    first = next(m[0]["content"] for m in hh_pairs["prompt"] if len(m[0]["content"].split()) >= 13)
    res = contamination(hh_pairs, [first])
    assert res["by_column"]["prompt"] >= 1


def test_read_eval_texts_reads_lines_jsonl_and_names_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_text("q1\n\nq2\n")
    assert read_eval_texts(tmp_path / "e.txt") == ["q1", "q2"]
    with gzip.open(tmp_path / "e.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"question": "q1", "answer": "a"}) + "\n")
    assert read_eval_texts(tmp_path / "e.jsonl.gz") == ["q1"]
    (tmp_path / "bad.jsonl").write_text('{"question": "ok"}\n{"answer": 1}\n')
    with pytest.raises(InputError) as err:
        read_eval_texts(tmp_path / "bad.jsonl")
    assert err.value.line == 2 and "bad.jsonl" in str(err.value)
