"""Exact duplicates (issue 15): repeated pairs and repeated prompts, each with its count."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl

from preflab.audit import audit_dataset, pairs_from_judgments
from preflab.audit.duplicates import exact_duplicates, prompt_text
from preflab.formats.registry import read


def _finding(report: dict, fid: str) -> dict:
    return next(f for f in report["findings"] if f["id"] == fid)


def test_thirty_copied_hh_lines_are_reported_with_their_counts(hh_sample: Path, tmp_path: Path) -> None:
    with gzip.open(hh_sample, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    copied = tmp_path / "hh-copied.jsonl"
    copied.write_text("\n".join(lines + lines[:30]) + "\n", encoding="utf-8")
    chunk = read("hh-rlhf", copied)
    pairs = pairs_from_judgments(chunk.judgments, chunk.responses, chunk.prompts)
    report = audit_dataset(pairs, chunk.judgments, include_agreement=False)
    d = report["sections"]["exact_duplicates"]
    assert (d["repeated_pairs"], d["extra_pair_copies"]) == (30, 30)
    assert d["pair_examples"][0]["count"] == 2
    assert d["pair_examples"][0]["source_line"] == [1, len(lines) + 1]  # the line and its copy
    assert (d["repeated_prompts"], d["extra_prompt_rows"]) == (30, 30)
    f = _finding(report, "exact_duplicates")
    assert f["severity"] == "warn" and f["text"].startswith("30 pairs are repeated exactly")
    assert "30 extra copies" in f["text"] and len(f["examples"]) == 20


def test_the_hh_sample_itself_has_no_repeated_pair(hh_pairs: pl.DataFrame) -> None:
    d = exact_duplicates(hh_pairs)
    assert (d["repeated_pairs"], d["extra_pair_copies"], d["repeated_prompts"]) == (0, 0, 0)


def test_prompts_judged_several_times_are_repeated_prompts_not_pairs() -> None:
    df = pl.DataFrame({
        "prompt": ["q1", "q1", "q1", "q2", "q2", "q3"],
        "chosen": ["a", "b", "a", "x", "x", "z"],
        "rejected": ["b", "c", "b", "y", "y", "w"],
    })
    d = exact_duplicates(df)
    assert (d["repeated_pairs"], d["extra_pair_copies"]) == (2, 2)
    assert [(e["rows"], e["count"]) for e in d["pair_examples"]] == [([0, 2], 2), ([3, 4], 2)]
    assert (d["repeated_prompts"], d["extra_prompt_rows"], d["distinct_prompts"]) == (2, 3, 3)
    assert [(e["prompt"], e["count"]) for e in d["prompt_examples"]] == [("q1", 3), ("q2", 2)]


def test_prompt_text_can_leave_out_the_roles(hh_pairs: pl.DataFrame) -> None:
    with_roles = prompt_text(hh_pairs.head(3))
    plain = prompt_text(hh_pairs.head(3), roles=False)
    assert all(t.startswith("user: ") for t in with_roles)
    assert plain[0] == "\n".join(m["content"] for m in hh_pairs["prompt"][0])
