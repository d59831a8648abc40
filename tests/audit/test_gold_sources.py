"""Gold accuracy (issue 15): a judgment is never scored against a gold answer taken from itself."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from preflab.audit import (
    audit_dataset,
    gold_from_answers,
    gold_from_judgments,
    pairs_from_judgments,
)
from preflab.audit.outcomes import GoldAnswers, judgment_outcomes


def _finding(report: dict[str, Any], fid: str) -> dict[str, Any]:
    return next(f for f in report["findings"] if f["id"] == fid)


def test_labels_scored_against_gold_taken_from_them_are_not_scored(hh_chunk: Any) -> None:
    judgments = pl.from_arrow(hh_chunk.judgments).head(12)
    gold = gold_from_judgments(judgments)  # the demo's situation: gold copied from the labels
    assert len(gold) == 12 and len(gold.derived_from) == 12
    pairs = pairs_from_judgments(judgments, hh_chunk.responses, hh_chunk.prompts)
    report = audit_dataset(pairs, judgments, gold=gold, include_agreement=False)
    g = report["sections"]["gold"]
    assert (g["gold_judgments"], g["accuracy"], g["source_judgments"]) == (0, None, 12)
    f = _finding(report, "gold")
    assert f["severity"] == "note" and "no judgments to score yet" in f["text"]
    assert "100.0%" not in f["text"]


def test_gold_items_naming_their_source_judgment_skip_only_that_one(crowd: dict[str, Any]) -> None:
    j = pl.from_arrow(crowd["judgments"])
    first = j.row(0, named=True)
    other = next(r for r in j.iter_rows(named=True)
                 if r["prompt_id"] == first["prompt_id"] and r["judgment_id"] != first["judgment_id"])
    answers = pl.DataFrame({
        "prompt_id": [first["prompt_id"]], "response_ids": [first["response_ids"]],
        "preferred": [first["pairwise"]["preferred"]], "tie": [False], "both_bad": [False],
        "answer": [json.dumps({"preferred": first["pairwise"]["preferred"],
                               "derived_from": [first["judgment_id"]]})],
    })
    gold = gold_from_answers(answers)
    assert gold.derived_from == {first["judgment_id"]}
    out = judgment_outcomes(j, gold)
    by_id = {r["judgment_id"]: r for r in out.iter_rows(named=True)}
    assert by_id[first["judgment_id"]]["gold_correct"] is None
    assert by_id[first["judgment_id"]]["gold_source_judgment"] is True
    assert by_id[other["judgment_id"]]["gold_correct"] is not None  # another judge: still scored


def test_plain_dict_gold_scores_everything_and_merge_keeps_both_sources() -> None:
    merged = GoldAnswers({"a": 1.0}, derived_from=["j1"]) | GoldAnswers({"a": -1.0, "b": 0.0}, derived_from=["j2"])
    assert dict(merged) == {"a": -1.0, "b": 0.0} and merged.derived_from == {"j1", "j2"}


def test_expert_gold_still_scores_the_other_annotators(crowd: dict[str, Any]) -> None:
    pairs = pairs_from_judgments(crowd["judgments"], crowd["responses"], crowd["prompts"])
    report = audit_dataset(pairs, crowd["judgments"], gold=gold_from_judgments(crowd["gold"]),
                           include_agreement=False)
    g = report["sections"]["gold"]
    assert g["gold_judgments"] > 0 and g["source_judgments"] == 0  # the expert's are not audited here
    assert "Gold accuracy" in _finding(report, "gold")["text"]


def test_demo_report_scores_no_gold_before_anyone_judged(hh_sample: Any, tmp_path: Any) -> None:
    from tests.audit.test_audit_cmd import run_cli

    from preflab.server.demo import setup_demo

    info = setup_demo(tmp_path / "ws", hh_sample)
    proc = run_cli("audit", "--db", info.database_url, "--project", info.project_id, "--json",
                   "--no-agreement")
    assert 0 == proc.returncode, proc.stderr
    data = json.loads(proc.stdout)
    g = data["sections"]["gold"]
    assert (g["gold_items"], g["gold_judgments"], g["source_judgments"]) == (12, 0, 12)
    text = next(f for f in data["findings"] if f["id"] == "gold")["text"]
    assert "no judgments to score yet" in text and "Gold accuracy 100.0%" not in text


def test_a_stored_gold_answer_keeps_the_judgments_it_came_from() -> None:
    import pytest

    from preflab.collect.gold import check_gold_answer
    from preflab.collect.projects import ProjectCreate, build_project
    from preflab.errors import InputError

    project = build_project(ProjectCreate(name="p"))
    stored = check_gold_answer(project, ["r1", "r2"], {"preferred": "r2", "derived_from": ["j_1"]})
    assert stored == {"preferred": "r2", "derived_from": ["j_1"]}
    with pytest.raises(InputError) as err:
        check_gold_answer(project, ["r1", "r2"], {"preferred": "r2", "derived_from": "j_1"})
    assert err.value.field == "answer.derived_from"
