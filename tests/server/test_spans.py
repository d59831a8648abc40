"""Span flags and written critiques: config, server checks, API and form submits, export.

Submitted feedback comes back as the ``spans`` and ``critique`` of ``Judgment`` records and
``JUDGMENT_SCHEMA`` tables, through snapshots, re-imports and Parquet files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from preflab.collect import DEFAULT_SPAN_LABELS, ProjectCreate, build_project
from preflab.formats.base import ImportChunk
from preflab.records import Judgment, Span, table_to_records
from preflab.store.engine import open_workspace
from preflab.store.imports import import_chunks
from preflab.store.queries.records import read_judgments
from preflab.store.queries.snapshot import write_parquet_snapshot
from preflab.store.tables import JudgmentRow

from .conftest import (
    Seeded,
    add_prompt_items,
    api_token,
    csrf_of,
    login,
    make_client,
    seed_project,
)

LEFT = "Paris is the capital of **Germany**.\r\nIt has 2 million people 👋 and café"
RIGHT = "Berlin is the capital of Germany."


@pytest.fixture
def api(seeded: Seeded):
    with make_client(seeded) as c:
        yield c, api_token(c, "alice"), api_token(c, "admin")


def _project(seeded: Seeded, **opts: Any) -> str:
    spec = ProjectCreate(name=opts.pop("name", "Spans"), **opts)
    pid = seed_project(seeded.db, spec, ["alice"])
    add_prompt_items(seeded.db, pid, [("Capital?", [LEFT, RIGHT]), ("Again?", [RIGHT, LEFT])])
    return pid


def _next(c: TestClient, headers: dict[str, str], project_id: str) -> dict[str, Any]:
    r = c.post(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["task"]


def _submit(c: TestClient, headers: dict[str, str], task: dict[str, Any], **body: Any):
    body.setdefault("submission_id", f"sub-{task['assignment_id']}")
    return c.post(f"/api/v1/tasks/{task['assignment_id']}/judgments", json=body,
                  headers=headers)


def _error(r) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    return body["error"]


def _span(rid: str, text: str, quote: str, label: str = "factual error",
          nth: int = 0) -> dict[str, Any]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(quote, start + 1)
    return {"response_id": rid, "start": start, "end": start + len(quote), "label": label,
            "text": quote}


def _texts(task: dict[str, Any]) -> dict[str, str]:
    return {r["response_id"]: r["content"] for r in task["responses"]}


def _count(seeded: Seeded) -> int:
    with seeded.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(JudgmentRow)) or 0)


def test_project_config_defaults_and_checks() -> None:
    spec = ProjectCreate(name="x", span_flags=True, critique="required")
    assert spec.span_labels == list(DEFAULT_SPAN_LABELS)
    config = build_project(spec).config
    assert config["span_flags"] is True and config["critique"] == "required"
    assert build_project(ProjectCreate(name="y")).config["critique"] == "off"
    assert build_project(ProjectCreate(name="z", critique=True)).config["critique"] == (
        "optional")
    with pytest.raises(ValidationError, match="distinct"):
        ProjectCreate(name="x", span_flags=True, span_labels=["unsafe", "unsafe"])
    with pytest.raises(ValidationError):
        ProjectCreate(name="x", critique="sometimes")  # type: ignore[arg-type]


def _span_task(api, seeded: Seeded) -> tuple[str, dict[str, Any], dict[str, str], str, str]:
    """Return a span project's id, alice's task, its texts by id, and the left/right ids."""
    c, alice, _ = api
    pid = _project(seeded, span_flags=True, critique="required")
    task = _next(c, alice, pid)
    texts = _texts(task)
    left_id = next(rid for rid, t in texts.items() if t == LEFT)
    right_id = next(rid for rid, t in texts.items() if t == RIGHT)
    return pid, task, texts, left_id, right_id


def test_spans_and_critique_are_stored_by_response_id(api, seeded: Seeded) -> None:
    c, alice, _ = api
    pid, task, texts, left_id, right_id = _span_task(api, seeded)
    spans = [
        _span(right_id, RIGHT, "Germany", "irrelevant"),
        _span(left_id, LEFT, "café", "unsafe"),
        _span(left_id, LEFT, "Germany"),
    ]
    # code points, not UTF-16 units: the emoji before "café" counts as one character
    start = spans[1]["start"]
    assert LEFT[start - 6:start] == "👋 and " and start == len(LEFT) - len("café")
    r = _submit(c, alice, task, choice="5", spans=spans, critique="  Paris is in France.  ")
    assert r.status_code == 201, r.text
    value = r.json()["value"]
    assert value["critique"] == "Paris is in France."
    shown = [x["response_id"] for x in task["responses"]]
    assert value["spans"] == spans  # in the order sent, so error fields name the sent index
    assert value["scale"] == 5 and value["strength"] == 2  # the kind's value is untouched
    for sp in value["spans"]:
        assert texts[sp["response_id"]][sp["start"]:sp["end"]] == sp["text"]

    # the stored value still reads back as a valid Judgment record
    records = table_to_records(read_judgments(seeded.db.engine, pid), Judgment)
    assert len(records) == 1 and records[0].pairwise is not None
    assert records[0].pairwise.preferred == shown[1]


def _submit_with_feedback(api, seeded: Seeded) -> tuple[str, list[dict[str, Any]]]:
    c, alice, _ = api
    pid, task, _texts_by_id, left_id, right_id = _span_task(api, seeded)
    spans = [_span(left_id, LEFT, "café", "unsafe"), _span(right_id, RIGHT, "Germany")]
    r = _submit(c, alice, task, choice="2", spans=spans, critique="Paris is in France.")
    assert r.status_code == 201, r.text
    return pid, spans


def test_submitted_spans_and_critique_come_back_as_record_fields(api, seeded: Seeded) -> None:
    pid, spans = _submit_with_feedback(api, seeded)
    table = read_judgments(seeded.db.engine, pid)
    assert spans == table.column("spans").to_pylist()[0]
    (record,) = table_to_records(table, Judgment)
    assert (tuple(Span(**sp) for sp in spans), "Paris is in France.") == (
        record.spans, record.critique)
    assert record.pairwise is not None and record.pairwise.strength == 1


def test_submitted_spans_survive_a_workspace_export_and_reimport(
    api, seeded: Seeded, other_db_url: str, tmp_path: Path
) -> None:
    pid, spans = _submit_with_feedback(api, seeded)
    paths = write_parquet_snapshot(seeded.db.engine, tmp_path / "snap", pid)
    chunk = ImportChunk(**{name: pq.read_table(path) for name, path in paths.items()})
    fresh = open_workspace(other_db_url)
    try:
        import_chunks(fresh, [chunk], format="snapshot", path=tmp_path / "snap")
        (record,) = table_to_records(read_judgments(fresh), Judgment)
    finally:
        fresh.dispose()
    assert ([Span(**sp) for sp in spans], "Paris is in France.") == (
        list(record.spans), record.critique)
    assert record.source == "app"


def test_admin_judgments_export_keeps_spans_and_critique_in_the_value(api, seeded: Seeded
                                                                      ) -> None:
    pid, spans = _submit_with_feedback(api, seeded)
    c = api[0]
    login(c, "admin")
    r = c.get(f"/admin/projects/{pid}/export/judgments.jsonl")
    assert r.status_code == 200, r.text
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert [(spans, "Paris is in France.")] == [
        (row["value"]["spans"], row["value"]["critique"]) for row in rows]


def test_submitted_spans_survive_a_parquet_round_trip(api, seeded: Seeded, tmp_path: Path
                                                      ) -> None:
    pid, spans = _submit_with_feedback(api, seeded)
    table = read_judgments(seeded.db.engine, pid)
    pq.write_table(table, tmp_path / "judgments.parquet")
    back = pq.read_table(tmp_path / "judgments.parquet")
    assert back.equals(table)
    (record,) = table_to_records(back, Judgment)
    assert [sp["text"] for sp in spans] == [sp.text for sp in record.spans]
    assert "Paris is in France." == record.critique


@pytest.mark.parametrize(("change", "field"), [
    ({"start": -1}, "spans[0].start"),
    ({"start": 10_000, "end": 10_001}, "spans[0].start"),
    ({"end": 10_000}, "spans[0].end"),
    ({"end": 0}, "spans[0].end"),
    ({"text": "Berlin"}, "spans[0].text"),
    ({"label": "rude"}, "spans[0].label"),
    ({"response_id": "r_not_shown"}, "spans[0].response_id"),
])
def test_bad_spans_name_the_field_and_write_nothing(api, seeded: Seeded,
                                                    change: dict[str, Any], field: str) -> None:
    c, alice, _ = api
    pid = _project(seeded, span_flags=True)
    task = _next(c, alice, pid)
    left_id = next(rid for rid, t in _texts(task).items() if t == LEFT)
    sp = {**_span(left_id, LEFT, "Paris"), **change}
    r = _submit(c, alice, task, choice="1", spans=[sp])
    assert r.status_code == 422, r.text
    err = _error(r)
    assert err["field"] == field and err["code"] == "invalid_field"
    assert _count(seeded) == 0
    # the same task still takes a good submission afterwards
    good = _submit(c, alice, task, choice="1", spans=[_span(left_id, LEFT, "Paris")],
                   submission_id=f"ok-{task['assignment_id']}")
    assert good.status_code == 201, good.text


def test_repeated_span_and_malformed_span_are_refused(api, seeded: Seeded) -> None:
    c, alice, _ = api
    pid = _project(seeded, span_flags=True)
    task = _next(c, alice, pid)
    left_id = next(rid for rid, t in _texts(task).items() if t == LEFT)
    sp = _span(left_id, LEFT, "Paris")
    r = _submit(c, alice, task, choice="1", spans=[sp, sp])
    assert r.status_code == 422 and _error(r)["field"] == "spans[1]"
    r = _submit(c, alice, task, choice="1", spans=[{"response_id": left_id, "start": 0}])
    assert r.status_code == 422 and _error(r)["field"].startswith("body.spans[0]")
    assert _count(seeded) == 0


def test_projects_without_the_option_refuse_spans_and_critique(api, seeded: Seeded) -> None:
    c, alice, _ = api
    task = _next(c, alice, seeded.project_id)  # the seeded project has neither option
    rid = task["responses"][0]["response_id"]
    text = task["responses"][0]["content"]
    r = _submit(c, alice, task, choice="1", spans=[_span(rid, text, text[:3])])
    assert r.status_code == 422 and _error(r)["field"] == "spans"
    r = _submit(c, alice, task, choice="1", critique="fine")
    assert r.status_code == 422 and _error(r)["field"] == "critique"
    assert _count(seeded) == 0


def test_required_critique_and_optional_critique(api, seeded: Seeded) -> None:
    c, alice, _ = api
    pid = _project(seeded, name="Crit", critique="required")
    task = _next(c, alice, pid)
    r = _submit(c, alice, task, choice="2", critique="   ")
    assert r.status_code == 422 and _error(r)["field"] == "critique"
    assert _submit(c, alice, task, choice="2", critique="Too short.").json()["value"][
        "critique"] == "Too short."
    pid = _project(seeded, name="Optional", critique=True)
    j = _submit(c, alice, _next(c, alice, pid), choice="2").json()
    assert "critique" not in j["value"] and "spans" not in j["value"]


@pytest.mark.parametrize("kind", ["ranking", "rating", "binary"])
def test_spans_ride_along_every_kind(api, seeded: Seeded, kind: str) -> None:
    c, alice, _ = api
    pid = _project(seeded, name=f"K {kind}", kind=kind, span_flags=True,
                   span_labels=["wrong", "unsafe"], critique=True)
    task = _next(c, alice, pid)
    texts = _texts(task)
    shown = [r["response_id"] for r in task["responses"]]
    body: dict[str, Any] = {
        "ranking": {"ranks": {rid: i + 1 for i, rid in enumerate(shown)}},
        "rating": {"scores": {rid: dict.fromkeys(
            ("helpfulness", "correctness", "coherence", "complexity", "verbosity"), 2)
            for rid in shown}},
        "binary": {"label": False, "reasons": ["incorrect"]},
    }[kind]
    rid = shown[0]
    sp = _span(rid, texts[rid], "capital", "wrong")
    r = _submit(c, alice, task, spans=[sp], critique="Wrong city.", **body)
    assert r.status_code == 201, r.text
    assert r.json()["value"]["spans"] == [sp]
    records = table_to_records(read_judgments(seeded.db.engine, pid), Judgment)
    assert [j.kind.value for j in records] == [kind]


def test_form_submit_carries_spans_and_critique(seeded: Seeded) -> None:
    pid = _project(seeded, span_flags=True, critique="required")
    with make_client(seeded) as c:
        login(c, "alice")
        r = c.get(f"/projects/{pid}/work")
        assert r.status_code == 200 and 'id="span-config"' in r.text
        aid = str(r.url).rsplit("/", 1)[1]
        # the original text reaches the page intact (CR LF included), not only the HTML
        assert "\\r\\n" in r.text and "Flag selected text" in r.text
        api_task = c.get(f"/api/v1/tasks/{aid}", headers=api_token(c, "alice")).json()
        left_id = next(rid for rid, t in _texts(api_task).items() if t == LEFT)
        form = {"csrf_token": csrf_of(r.text), "submission_id": f"form-{aid}", "choice": "1",
                "critique": "Not Germany."}
        bad = c.post(f"/tasks/{aid}", data={**form, "spans": "[{"}, follow_redirects=False)
        assert bad.status_code == 422 and "not valid JSON" in bad.text
        wrong = [{**_span(left_id, LEFT, "Paris"), "text": "Rome"}]
        bad = c.post(f"/tasks/{aid}", data={**form, "spans": json.dumps(wrong)},
                     follow_redirects=False)
        assert bad.status_code == 422 and "does not match" in bad.text
        ok = c.post(f"/tasks/{aid}", data={**form, "spans": json.dumps([_span(
            left_id, LEFT, "Germany")])}, follow_redirects=False)
        assert ok.status_code == 303, ok.text
    with seeded.db.read() as s:
        row = s.scalars(select(JudgmentRow).where(JudgmentRow.project_id == pid)).one()
    assert row.value["critique"] == "Not Germany."
    assert row.value["spans"][0]["text"] == "Germany"


def test_admin_creates_a_span_project_over_the_api(api, seeded: Seeded) -> None:
    c, _, admin = api
    r = c.post("/api/v1/projects", headers=admin, json={
        "name": "Fine", "span_flags": True, "span_labels": ["wrong", "unsafe"],
        "critique": "required"})
    assert r.status_code == 201, r.text
    config = r.json()["config"]
    assert (config["span_flags"], config["span_labels"], config["critique"]) == (
        True, ["wrong", "unsafe"], "required")
    bad = c.post("/api/v1/projects", headers=admin, json={
        "name": "Dup", "span_flags": True, "span_labels": ["a", "a"]})
    assert bad.status_code == 422 and "distinct" in _error(bad)["message"]
