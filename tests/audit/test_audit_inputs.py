"""Gold items and vendor batches of a workspace reach the audit (SQLite and PostgreSQL).

The workspace: 20 prompts with a good and a bad answer; items 0–8 are gold with the good
answer expected, item 9 is gold with a tie expected, item 10 is marked gold without an
answer (left out). Two vendor batches with known gold accuracy per annotator:

- batch ``b-zeta`` (vendor acme, delivered 2025-03-03): ann (10/10 gold right), bob (8/10);
- batch ``b-alpha`` (vendor globex, delivered 2025-03-10): cy (6/10), dan (5/10).

Batch ids sort the other way round from delivery, so delivery order is checked. ``expert``
judged items 10–14 correctly (for ``--gold-judge``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, insert, update

from preflab.audit import gold_from_answers
from preflab.errors import InputError
from preflab.formats.base import ImportChunk
from preflab.records import (
    Judge,
    JudgeKind,
    Judgment,
    JudgmentKind,
    Message,
    PairwiseValue,
    Prompt,
    Response,
    records_to_table,
)
from preflab.store.engine import make_engine
from preflab.store.imports import import_chunks
from preflab.store.migrate import upgrade_to_head
from preflab.store.queries.audit_inputs import read_batches, read_gold
from preflab.store.queries.projects import find_project
from preflab.store.tables import BatchRow, Item
from preflab.store.unit_of_work import write_scope

from .test_audit_cmd import run_cli

WRONG = {"ann": set(), "bob": {7, 9}, "cy": {1, 3, 8, 9}, "dan": {0, 2, 4, 6, 8}}
BATCH = {"ann": "b-zeta", "bob": "b-zeta", "cy": "b-alpha", "dan": "b-alpha"}
FIRST_DAY = {"b-zeta": datetime(2025, 3, 1, 9, tzinfo=UTC), "b-alpha": datetime(2025, 3, 8, 9, tzinfo=UTC)}
OTHER_ITEMS = {"b-zeta": range(10, 15), "b-alpha": range(15, 20)}


def _records() -> tuple[list[Prompt], list[Response], list[Judgment], dict[int, tuple[str, str]]]:
    prompts, responses, judgments = [], [], []
    ids: dict[int, tuple[str, str]] = {}
    for i in range(20):
        p = Prompt(messages=(Message(role="user", content=f"Question {i}: how do I do task {i} well?"),))
        good = Response(prompt_id=p.prompt_id, content=f"A careful and correct answer to task {i}.")
        bad = Response(prompt_id=p.prompt_id, content=f"Wrong answer {i}.")
        prompts.append(p)
        responses += [good, bad]
        ids[i] = (good.response_id, bad.response_id)

    def judge(name: str, k: int, value: PairwiseValue, when: datetime, batch: str | None) -> Judgment:
        good, bad = ids[k]
        return Judgment(
            judgment_id=f"{name}-{k}", prompt_id=prompts[k].prompt_id,
            response_ids=(good, bad) if k % 2 == 0 else (bad, good), kind=JudgmentKind.PAIRWISE,
            judge_id=name, pairwise=value, batch_id=batch, started_at=when,
            submitted_at=when + timedelta(seconds=40),
        )

    for name, wrong in WRONG.items():
        batch = BATCH[name]
        day0 = FIRST_DAY[batch]
        for k in [*range(10), *OTHER_ITEMS[batch]]:
            good, bad = ids[k]
            day = day0 + timedelta(days=1 if 5 <= k < 10 else 0, minutes=k)
            if k == 9:  # the gold answer is a tie
                value = (PairwiseValue(preferred=good) if k in wrong
                         else PairwiseValue(preferred=None, tie=True, strength=0))
            else:
                value = PairwiseValue(preferred=bad if k in wrong else good)
            judgments.append(judge(name, k, value, day, batch))
    for k in range(10, 15):
        judgments.append(judge("expert", k, PairwiseValue(preferred=ids[k][0]),
                               datetime(2025, 2, 20, tzinfo=UTC) + timedelta(minutes=k), None))
    return prompts, responses, judgments, ids


def _build_workspace(db_url: str) -> dict[int, tuple[str, str]]:
    prompts, responses, judgments, ids = _records()
    judges = [Judge(judge_id=n, kind=JudgeKind.HUMAN) for n in [*WRONG, "expert"]]
    chunk = ImportChunk(
        prompts=records_to_table(prompts, Prompt), responses=records_to_table(responses, Response),
        judgments=records_to_table(judgments, Judgment), judges=records_to_table(judges, Judge),
    )
    engine = make_engine(db_url)
    try:
        upgrade_to_head(engine)
        import_chunks(engine, [chunk], format="records", path="vendor-deliveries.jsonl", sha256="0" * 64,
                      project_id="vendors", create_project=True)
        with write_scope(engine) as conn:
            pid = find_project(conn, "vendors").project_id
            for k in range(11):
                answer: dict[str, Any] | None = {"preferred": ids[k][0]} if k < 9 else {"tie": True}
                if k == 10:
                    answer = None  # gold without an answer: nothing to score against
                conn.execute(update(Item).where(Item.project_id == pid, Item.prompt_id == prompts[k].prompt_id)
                             .values(is_gold=True, gold_answer=answer))
            conn.execute(insert(BatchRow), [
                {"batch_id": "b-alpha", "project_id": None, "vendor": "globex",  # named by judgments only
                 "delivered_at": datetime(2025, 3, 10, 17, tzinfo=UTC), "guideline_version": 2,
                 "status": "received"},
                {"batch_id": "b-zeta", "project_id": pid, "vendor": "acme",
                 "delivered_at": datetime(2025, 3, 3, 17, tzinfo=UTC), "guideline_version": 1,
                 "status": "accepted"},
                {"batch_id": "b-other", "project_id": None, "vendor": "initech",  # another project's
                 "delivered_at": datetime(2025, 3, 1, tzinfo=UTC), "guideline_version": 1,
                 "status": "received"},
            ])
    finally:
        engine.dispose()
    return ids


@pytest.fixture
def workspace(db_url: str) -> tuple[str, dict[int, tuple[str, str]]]:
    return db_url, _build_workspace(db_url)


@pytest.fixture
def engine(workspace: tuple[str, Any]) -> Iterator[Engine]:
    eng = make_engine(workspace[0])
    yield eng
    eng.dispose()


def test_read_gold_returns_the_answers_of_gold_items(engine: Engine, workspace: tuple[str, Any]) -> None:
    ids = workspace[1]
    with engine.connect() as conn:
        gold = read_gold(conn, find_project(conn, "vendors").project_id).to_pylist()
    assert len(gold) == 10  # item 10 has no answer
    by_good = {g["preferred"]: g for g in gold if g["preferred"]}
    assert set(by_good) == {ids[k][0] for k in range(9)}
    tie = next(g for g in gold if g["preferred"] is None)
    assert tie["tie"] is True and sorted(tie["response_ids"]) == sorted(ids[9])
    assert json.loads(tie["answer"]) == {"tie": True}


def test_read_batches_keeps_the_projects_batches_in_delivery_order(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = read_batches(conn, find_project(conn, "vendors").project_id).to_pylist()
    assert [(r["batch_id"], r["vendor"], r["guideline_version"], r["status"]) for r in rows] == [
        ("b-zeta", "acme", 1, "accepted"), ("b-alpha", "globex", 2, "received")]
    assert rows[0]["delivered_at"] == datetime(2025, 3, 3, 17, tzinfo=UTC)


def test_gold_from_answers_codes_directions_and_rejects_a_stranger() -> None:
    a, b = "r_a", "r_b"
    rows = [{"item_id": "i1", "prompt_id": "p", "response_ids": [b, a], "preferred": b, "tie": False},
            {"item_id": "i2", "prompt_id": "q", "response_ids": [a, b], "preferred": None, "tie": True},
            {"item_id": "i3", "prompt_id": "s", "response_ids": [a, b, "r_c"], "preferred": a, "tie": False}]
    assert gold_from_answers(pl.DataFrame(rows)) == {"p|r_a|r_b": -1.0, "q|r_a|r_b": 0.0}
    with pytest.raises(InputError, match="i9") as err:
        gold_from_answers(pl.DataFrame([{**rows[0], "item_id": "i9", "preferred": "r_x"}]))
    assert err.value.field == "gold_answer.preferred"


def test_project_audit_reports_gold_accuracy_and_vendor_batches(workspace: tuple[str, Any]) -> None:
    proc = run_cli("audit", "--project", "vendors", "--db", workspace[0], "--json", "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    s = json.loads(proc.stdout)["sections"]
    gold = s["gold"]
    assert (gold["gold_items"], gold["judged_gold_items"], gold["gold_judgments"], gold["correct"]) == (10, 10, 40, 29)
    assert gold["accuracy"] == pytest.approx(29 / 40, abs=1e-12)
    assert gold["source"] == "10 gold items of the workspace"
    assert {r["judge_id"]: (r["correct"], r["gold_judgments"]) for r in gold["by_judge"]} == {
        "ann": (10, 10), "bob": (8, 10), "cy": (6, 10), "dan": (5, 10)}
    assert [(r["batch_id"], r["correct"], r["gold_judgments"]) for r in gold["by_batch"]] == [
        ("b-zeta", 18, 20), ("b-alpha", 11, 20)]  # delivery order
    assert [r["accuracy"] for r in gold["by_batch"]] == pytest.approx([0.9, 0.55])
    assert [(p["period"][:10], p["gold_judgments"], p["accuracy"]) for p in gold["over_time"]["periods"]] == [
        ("2025-03-01", 10, 1.0), ("2025-03-02", 10, 0.8), ("2025-03-08", 10, 0.5), ("2025-03-09", 10, 0.6)]
    per_judge_time = {(r["judge_id"], r["period"][:10]): r["accuracy"] for r in s["people"]["gold_over_time"]["periods"]}
    assert per_judge_time[("bob", "2025-03-01")] == 1.0 and per_judge_time[("bob", "2025-03-02")] == 0.6
    judges = {c["judge_id"]: c for c in s["people"]["judges"]}
    assert judges["dan"]["gold_accuracy"] == 0.5 and "low gold accuracy" in judges["dan"]["flags"]
    assert judges["ann"]["gold_accuracy"] == 1.0 and judges["ann"]["flags"] == []
    cards = s["batches"]["cards"]
    assert [(c["batch_id"], c["vendor"], c["delivered_at"][:10], c["guideline_version"], c["status"],
             c["judgments"], c["judges"], c["gold_items"]) for c in cards] == [
        ("b-zeta", "acme", "2025-03-03", 1, "accepted", 30, 2, 20),
        ("b-alpha", "globex", "2025-03-10", 2, "received", 30, 2, 20)]
    assert [c["gold_accuracy"] for c in cards] == pytest.approx([0.9, 0.55])
    trend = s["batches"]["trend"]
    assert trend["batches"] == ["b-zeta", "b-alpha"]
    assert trend["gold_accuracy"]["slope"] == pytest.approx(-0.35)
    assert trend["gold_accuracy"]["worse"] == ["b-alpha"]
    findings = {f["id"]: f for f in json.loads(proc.stdout)["findings"]}
    assert "72.5%" in findings["gold"]["text"] and findings["gold"]["examples"] == ["cy", "dan"]
    assert "acme, delivered 2025-03-03" in findings["batches"]["text"]
    assert "b-alpha" in findings["batches"]["examples"]


def test_gold_judge_adds_to_the_workspace_gold(workspace: tuple[str, Any]) -> None:
    proc = run_cli("audit", "--project", "vendors", "--db", workspace[0], "--gold-judge", "expert",
                   "--json", "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    gold = json.loads(proc.stdout)["sections"]["gold"]
    assert gold["gold_items"] == 15
    assert gold["source"] == "10 gold items of the workspace; 5 items judged by --gold-judge expert"
    by_judge = {r["judge_id"]: (r["correct"], r["gold_judgments"]) for r in gold["by_judge"]}
    # ann and bob judged items 10-14 (all right); expert is the reference, not audited
    assert by_judge == {"ann": (15, 15), "bob": (13, 15), "cy": (6, 10), "dan": (5, 10)}


def test_html_shows_gold_and_batch_sections(workspace: tuple[str, Any], tmp_path: Any) -> None:
    import lxml.html

    out = tmp_path / "r.html"
    proc = run_cli("audit", "--project", "vendors", "--db", workspace[0], "--html", str(out), "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    assert "Gold accuracy per annotator" in proc.stdout
    doc = lxml.html.fromstring(out.read_text(encoding="utf-8"))
    assert doc.cssselect("h2#gold") and doc.cssselect("h2#batches")
    rows = [tr.text_content() for tr in doc.cssselect("tr[id^='batch-']")]
    assert len(rows) == 2 and "acme" in rows[0] and "globex" in rows[1]
    titles = [t.text_content() for t in doc.cssselect("svg.chart title")]
    assert any(t.startswith("Gold accuracy over time") for t in titles)
