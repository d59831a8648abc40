"""HH-RLHF reader on the whole published test files, checked against an independent reading.

The files come from the third-party data catalog (tests/data_catalog.py): the shared 400-row
sample, the four subsets' whole test files (harmless-base, helpful-base, helpful-online,
helpful-rejection-sampled). Each test reads the raw JSON lines with plain ``json`` and a
transcript split written here from the published format ("\\n\\nHuman: …\\n\\nAssistant: …",
Bai et al. 2022), not with the importer, and compares: which side is preferred, the prompt
(multi-turn context), the counts and the drop reasons with their lines.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from preflab.formats.registry import read
from tests.data_catalog import data_file
from tests.cli_process import run_cli
from tests.export_inputs import save_word_level_tokenizer
from tests.formats.real_files import prompt_turns, response_texts

FILES = [
    "hh-rlhf/harmless-base-test-first400.jsonl.gz",
    "hh-rlhf/harmless-base-test.jsonl.gz",
    "hh-rlhf/helpful-base-test.jsonl.gz",
    "hh-rlhf/helpful-online-test.jsonl.gz",
    "hh-rlhf/helpful-rejection-sampled-test.jsonl.gz",
]
_MARK = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}

Turns = list[tuple[str, str]]


def _turns(transcript: str) -> Turns | None:
    """(role, stripped text) per turn, or None when the transcript is not Human-first and
    Assistant-last with nothing before the first marker."""
    parts = _MARK.split(transcript)
    head, rest = parts[0], parts[1:]
    if head.strip() or not rest or rest[0] != "Human" or rest[-2] != "Assistant":
        return None
    return [(_ROLE[rest[i]], rest[i + 1].strip()) for i in range(0, len(rest), 2)]


def _merge_runs(turns: Turns) -> Turns:
    merged: Turns = []
    for role, text in turns:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + "\n\n" + text)
        else:
            merged.append((role, text))
    return merged


def expected_row(row: dict[str, Any], merge: bool = False) -> tuple[str, Any]:
    """Return ("pair", (prompt, chosen, rejected)) or (drop reason, None) for one file row.

    The rules are the documented ones (docs/formats.md, hh-rlhf section), checked in order.
    """
    sides = [_turns(row["chosen"]), _turns(row["rejected"])]
    if sides[0] is None or sides[1] is None:
        return "dropped_unparsable", None
    has_runs = any(a[0] == b[0] for t in sides for a, b in zip(t, t[1:]))
    if has_runs and not merge:
        return "dropped_consecutive_turns", None
    if has_runs:
        sides = [_merge_runs(t) for t in sides]
    chosen, rejected = sides
    if any(not text for t in sides for _, text in t[:-1]):
        return "dropped_empty_turn", None
    if chosen[:-1] != rejected[:-1]:
        return "dropped_divergent", None
    if not chosen[-1][1] or not rejected[-1][1]:
        return "dropped_empty_response", None
    if chosen[-1][1] == rejected[-1][1]:
        return "dropped_identical", None
    return ("merged" if has_runs else "pair"), (tuple(chosen[:-1]), chosen[-1][1], rejected[-1][1])


def independent(path: Path, merge: bool = False) -> tuple[int, Counter[str], dict[int, str], Counter[Any]]:
    """Rows, reasons counted, reason by 1-based line, and the multiset of expected pairs."""
    reasons: Counter[str] = Counter()
    by_line: dict[int, str] = {}
    pairs: Counter[Any] = Counter()
    n = 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            n += 1
            kind, pair = expected_row(json.loads(line), merge)
            if kind in ("pair", "merged"):
                pairs[pair] += 1
                if kind == "merged":
                    reasons["merged_consecutive_turns"] += 1
                    by_line[line_no] = "merged_consecutive_turns"
            else:
                reasons[kind] += 1
                by_line[line_no] = kind
    return n, reasons, by_line, pairs


def imported_pairs(chunk: Any) -> Counter[Any]:
    """The reader's judgments as (prompt turns, preferred text, other text)."""
    text, prompt = response_texts(chunk, str), prompt_turns(chunk, str)  # texts as stored
    out: Counter[Any] = Counter()
    for j in chunk.judgments.select(["prompt_id", "response_ids", "pairwise"]).to_pylist():
        preferred = j["pairwise"]["preferred"]
        (other,) = [r for r in j["response_ids"] if r != preferred]
        assert j["response_ids"][0] == preferred  # (chosen, rejected) as the module says
        assert not j["pairwise"]["tie"] and not j["pairwise"]["both_bad"]
        out[(prompt[j["prompt_id"]], text[preferred], text[other])] += 1
    return out


@pytest.fixture(scope="module", params=FILES, ids=[Path(f).name.split(".")[0] for f in FILES])
def hh_file(request: pytest.FixtureRequest) -> tuple[Path, Any, Any]:
    path = data_file(request.param)
    return path, independent(path), read("hh-rlhf", path)


def test_rows_and_drop_reasons_match_the_file(hh_file) -> None:
    _, (rows, reasons, _, pairs), chunk = hh_file
    assert chunk.counts["rows"] == rows
    assert {k: v for k, v in chunk.counts.items() if k.startswith("dropped_")} == dict(reasons)
    assert chunk.judgments.num_rows == sum(pairs.values()) == rows - sum(reasons.values())


def test_every_drop_names_its_line_and_reason(hh_file) -> None:
    path, (_, _, by_line, _), chunk = hh_file
    noted = {(n.line, n.reason) for n in chunk.notes if n.reason.startswith("dropped_")}
    assert noted == set(by_line.items())
    assert {n.path for n in chunk.notes} <= {str(path)}


def test_every_pair_keeps_the_preferred_side_and_the_whole_context(hh_file) -> None:
    _, (_, _, _, pairs), chunk = hh_file
    assert imported_pairs(chunk) == pairs
    multi_turn = sum(n for (prompt, _, _), n in pairs.items() if len(prompt) > 1)
    assert multi_turn > 0  # every subset has real multi-turn conversations


def test_judgments_point_back_to_their_input_line(hh_file) -> None:
    path, (_, _, by_line, _), chunk = hh_file
    lines = chunk.judgments.column("source_line").to_pylist()
    assert len(set(lines)) == len(lines) and not set(lines) & set(by_line)
    assert set(chunk.judgments.column("source").to_pylist()) == {str(path)}


def test_helpful_base_merge_rule_imports_the_15_split_answers() -> None:
    """15 of 2,354 helpful-base rows have two Assistant turns in a row (issue 18)."""
    path = data_file("hh-rlhf/helpful-base-test.jsonl.gz")
    _, kept_reasons, _, kept = independent(path)
    rows, reasons, _, pairs = independent(path, merge=True)
    assert kept_reasons["dropped_consecutive_turns"] == 15 and rows == 2354
    chunk = read("hh-rlhf", path, consecutive_turns="merge")
    assert chunk.counts.get("merged_consecutive_turns") == reasons["merged_consecutive_turns"] == 15
    assert imported_pairs(chunk) == pairs
    assert sum(pairs.values()) == sum(kept.values()) + 15


# --- whole files through every export (issue 18: one real row must not stop an export) -------

EXPORTS = [
    ("trl-preference", "standard", "explicit"),
    ("trl-preference", "standard", "implicit"),
    ("trl-preference", "conversational", "explicit"),
    ("trl-preference", "conversational", "implicit"),
    ("trl-unpaired", "standard", "explicit"),
    ("trl-unpaired", "conversational", "explicit"),
    ("tokenized", "standard", "explicit"),
    ("tokenized", "conversational", "explicit"),
    ("jsonl", None, None),
    ("parquet", None, None),
    ("hf", None, None),
]
EXPORTED_FILES = ["hh-rlhf/harmless-base-test-first400.jsonl.gz", "hh-rlhf/harmless-base-test.jsonl.gz",
                  "hh-rlhf/helpful-base-test.jsonl.gz"]


def _cli(*args: str) -> Any:
    return run_cli(*args, timeout=600)


@pytest.fixture(scope="module", params=EXPORTED_FILES, ids=["sample", "harmless-base", "helpful-base"])
def hh_workspace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(workspace holding the imported file, its pair count, a word-level tokenizer folder)."""
    path = data_file(request.param)
    ws = tmp_path_factory.mktemp("ws")
    proc = _cli("import", "hh-rlhf", str(path), "--workspace", str(ws), "--json")
    assert proc.returncode == 0, proc.stderr
    (_, _, _, pairs) = independent(path)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        save_word_level_tokenizer(f, ws / "tokenizer", vocab_size=4000)
    return ws, sum(pairs.values()), ws / "tokenizer"


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "style", "prompt"), EXPORTS,
                         ids=["-".join(x for x in e if x) for e in EXPORTS])
def test_whole_file_exports_run_to_the_end(hh_workspace, fmt, style, prompt, tmp_path) -> None:
    ws, n_pairs, tokenizer = hh_workspace
    args = ["export", "--workspace", str(ws), "--format", fmt, "--out", str(tmp_path / "out"), "--json"]
    if style:
        args += ["--style", style, "--prompt", prompt]
    if fmt == "trl-unpaired":
        args += ["--from-pairs", "unpair"]  # HH has pairwise judgments only
    if fmt == "tokenized":
        args += ["--tokenizer", str(tokenizer)]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    exported = sum(summary["splits"].values())
    if fmt == "trl-unpaired":
        assert exported == 2 * n_pairs  # chosen → True, rejected → False
    elif fmt == "trl-preference" and prompt == "explicit" and style == "standard":
        assert 0 < exported <= n_pairs  # rows a text prompt cannot hold are counted, not fatal
    else:
        assert exported == n_pairs
