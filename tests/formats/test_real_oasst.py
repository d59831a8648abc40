"""OpenAssistant reader on 100 real published trees, checked against an independent reading.

Files (tests/data_catalog.py): ``oasst/en_100_tree.jsonl`` (the oasst export's trees layout) and
``oasst/en_100_message.jsonl`` (the same trees as nested root messages), sampled from the
OpenAssistant export and published in LAION-AI/Open-Assistant. The walk below is written from
the published layout (Köpf et al. 2023; ``rank`` 0 = best among siblings), not with the importer.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from preflab.formats.registry import read
from tests.data_catalog import data_file
from tests.formats.real_files import prompt_turns, response_texts

_ROLE = {"prompter": "user", "assistant": "assistant"}
FILES = ["oasst/en_100_tree.jsonl", "oasst/en_100_message.jsonl"]


def _walk(node: dict[str, Any], path: list[tuple[str, str]], out: Counter[Any], counts: Counter[str],
          models: dict[str, str | None]) -> None:
    if node.get("deleted"):
        counts["skipped_deleted"] += 1
        return
    here = [*path, (_ROLE[node["role"]], node["text"])]
    replies = node.get("replies") or []
    if node["role"] == "prompter":
        answers = [r for r in replies if r["role"] == "assistant" and not r.get("deleted")]
        ranked = [r for r in answers if r.get("rank") is not None]
        if len(ranked) >= 2:
            groups: dict[int, list[str]] = defaultdict(list)
            for r in ranked:
                groups[r["rank"]].append(r["text"])
                models[r["text"]] = r.get("model_name") if r.get("synthetic") else None
            out[(tuple(here), tuple(tuple(sorted(groups[k])) for k in sorted(groups)))] += 1
        elif answers:
            counts["skipped_unranked"] += 1
    for reply in replies:
        _walk(reply, here, out, counts, models)


def independent(path: Path) -> tuple[int, Counter[Any], Counter[str], dict[str, str | None]]:
    out: Counter[Any] = Counter()
    counts: Counter[str] = Counter()
    models: dict[str, str | None] = {}
    trees = 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            tree = json.loads(line)
            trees += 1
            _walk(tree.get("prompt", tree), [], out, counts, models)
    return trees, out, counts, models


def imported(chunk: Any) -> Counter[Any]:
    text, prompt = response_texts(chunk, str), prompt_turns(chunk, str)  # texts as stored
    out: Counter[Any] = Counter()
    for j in chunk.judgments.select(["prompt_id", "kind", "ranking"]).to_pylist():
        assert j["kind"] == "ranking"
        groups = tuple(tuple(sorted(text[r] for r in g)) for g in j["ranking"])
        out[(prompt[j["prompt_id"]], groups)] += 1
    return out


@pytest.fixture(scope="module", params=FILES, ids=["trees", "messages"])
def oasst_file(request: pytest.FixtureRequest):
    path = data_file(request.param)
    return path, independent(path), read("oasst", path)


def test_counts_match_the_file(oasst_file) -> None:
    _, (trees, rankings, counts, _), chunk = oasst_file
    assert chunk.counts["rows"] == trees == 100
    assert chunk.judgments.num_rows == sum(rankings.values()) == chunk.counts["ranked_nodes"]
    for reason in ("skipped_deleted", "skipped_unranked"):
        assert chunk.counts.get(reason, 0) == counts[reason]


def test_rankings_keep_the_crowd_order_and_the_conversation_path(oasst_file) -> None:
    _, (_, rankings, _, _), chunk = oasst_file
    got = imported(chunk)
    assert got == rankings
    assert any(len(prompt) > 1 for prompt, _ in got)  # replies deeper in the trees
    assert any(len(groups) >= 3 for _, groups in got)  # rankings of three or more replies


def test_synthetic_replies_name_their_model(oasst_file) -> None:
    _, (_, _, _, models), chunk = oasst_file
    rows = chunk.responses.select(["content", "model"]).to_pylist()
    synthetic = {r["content"]: r["model"] for r in rows if models.get(r["content"])}
    assert synthetic and all(synthetic[t] == models[t] for t in synthetic)


def test_both_layouts_give_the_same_judgments() -> None:
    trees = read("oasst", data_file(FILES[0]))
    messages = read("oasst", data_file(FILES[1]))
    assert sorted(trees.judgments.column("judgment_id").to_pylist()) == sorted(
        messages.judgments.column("judgment_id").to_pylist())
