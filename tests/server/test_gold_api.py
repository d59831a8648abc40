"""Gold items over HTTP and the CLI (issue 13): set and upload all or nothing, the accuracy
figures, the threshold that stops an annotator (a clear JSON error), the admin pages' forms
and plot, and `preflab projects gold`; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lxml.html
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from preflab import collect
from preflab.cli.main import app
from preflab.collect import ProjectCreate

from .conftest import Seeded, add_prompt_items, api_token, login, make_client, seed_project

runner = CliRunner()


@pytest.fixture
def api(seeded: Seeded):
    with make_client(seeded) as c:
        yield c, api_token(c, "alice"), api_token(c, "admin")


def _rids(seeded: Seeded, item_id: str) -> list[str]:
    with seeded.db.connect() as conn:
        item = collect.get_item(conn, item_id)
    assert item is not None
    return list(item.response_ids)


def _gold(c: TestClient, admin: dict[str, str], pid: str) -> list[dict[str, Any]]:
    r = c.get(f"/api/v1/projects/{pid}/gold", headers=admin)
    assert r.status_code == 200, r.text
    return r.json()


def test_set_gold_is_all_or_nothing_and_names_the_field(api, seeded: Seeded) -> None:
    c, _, admin = api
    a, b = seeded.item_ids[:2]
    body = {"answers": [{"item_id": a, "answer": {"tie": True}},
                        {"item_id": b, "answer": {"preferred": "r_elsewhere"}}]}
    r = c.post(f"/api/v1/projects/{seeded.project_id}/gold", json=body, headers=admin)
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("invalid_field", "answer.preferred")
    assert f"of item {b}" in err["message"] and "nothing was stored" in err["message"]
    assert [] == _gold(c, admin, seeded.project_id)
    body["answers"][1]["answer"] = {"preferred": _rids(seeded, b)[0]}
    r = c.post(f"/api/v1/projects/{seeded.project_id}/gold", json=body, headers=admin)
    assert (r.status_code, r.json()) == (200, {"set": 2})
    assert {a, b} == {g["item_id"] for g in _gold(c, admin, seeded.project_id)}
    r = c.delete(f"/api/v1/projects/{seeded.project_id}/gold/items/{a}", headers=admin)
    assert r.json() == {"cleared": 1}
    assert [b] == [g["item_id"] for g in _gold(c, admin, seeded.project_id)]


def test_file_upload_with_a_bad_line_stores_nothing(api, seeded: Seeded) -> None:
    c, _, admin = api
    a, b = seeded.item_ids[:2]
    text = f"item_id,preferred,tie\n{a},,true\n{b},,maybe\n"
    r = c.post(f"/api/v1/projects/{seeded.project_id}/gold/file",
               params={"filename": "gold.csv"}, content=text.encode(), headers=admin)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "answer.tie"
    assert err["message"].startswith('gold.csv, line 3, field "answer.tie": expected true or')
    assert [] == _gold(c, admin, seeded.project_id)


def test_annotators_may_not_touch_gold(api, seeded: Seeded) -> None:
    c, alice, _ = api
    r = c.get(f"/api/v1/projects/{seeded.project_id}/gold", headers=alice)
    assert r.status_code == 403
    r = c.put(f"/api/v1/projects/{seeded.project_id}/gold/threshold", headers=alice,
              json={"min_accuracy": 0, "after": 1, "stop_serving": True})
    assert r.status_code == 403
    with seeded.db.connect() as conn:
        assert collect.gold_threshold(collect.get_project(conn, seeded.project_id)) is None


def _stopped_project(seeded: Seeded) -> tuple[str, list[str]]:
    pid = seed_project(seeded.db, ProjectCreate(name="Gate", gold_share=0.5), ["alice", "bob"])
    gold = add_prompt_items(seeded.db, pid, [(f"GQ{i}?", [f"a{i}", f"b{i}"]) for i in range(8)])
    add_prompt_items(seeded.db, pid, [(f"NQ{i}?", [f"c{i}", f"d{i}"]) for i in range(20)])
    with seeded.db.transaction() as conn:
        collect.set_gold(conn, pid, [collect.GoldLine(0, g, {"both_bad": True}) for g in gold])
    return pid, gold


def _work_until_gold(c: TestClient, headers: dict[str, str], pid: str, n_gold: int) -> None:
    seen = 0
    for i in range(40):
        if seen >= n_gold:
            return
        task = c.post(f"/api/v1/projects/{pid}/tasks/next", headers=headers).json()["task"]
        with c.app.state.db.connect() as conn:  # type: ignore[attr-defined]
            seen += collect.get_item(conn, task["item_id"]).is_gold
        r = c.post(f"/api/v1/tasks/{task['assignment_id']}/judgments", headers=headers,
                   json={"submission_id": f"{pid}-{i}-{headers['Authorization'][-6:]}",
                         "choice": "tie"})
        assert r.status_code == 201, r.text
    raise AssertionError("not enough gold tasks came")


def test_threshold_stops_serving_with_a_clear_error(api, seeded: Seeded) -> None:
    c, alice, admin = api
    pid, _ = _stopped_project(seeded)
    r = c.put(f"/api/v1/projects/{pid}/gold/threshold", headers=admin,
              json={"min_accuracy": 0.5, "after": 2, "stop_serving": True})
    assert r.status_code == 200 and r.json()["config"]["gold_threshold"]["after"] == 2
    _work_until_gold(c, alice, pid, 2)  # alice answers "tie" where "both bad" is expected
    r = c.post(f"/api/v1/projects/{pid}/tasks/next", headers=alice)
    assert r.status_code == 403
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("forbidden", "gold_accuracy")
    assert "gold accuracy 0% (0 of 2) is below the minimum 50% after 2 gold items" in (
        err["message"])
    acc = c.get(f"/api/v1/projects/{pid}/gold/accuracy", headers=admin).json()
    (row,) = acc["annotators"]
    assert (row["judge_id"], row["right"], row["answered"], row["flagged"]) == (
        "human:alice", 0, 2, True)
    assert [p["accuracy"] for p in row["points"]] == [0.0, 0.0]
    r = c.delete(f"/api/v1/projects/{pid}/gold/threshold", headers=admin)
    assert r.status_code == 200 and "gold_threshold" not in r.json()["config"]
    assert c.post(f"/api/v1/projects/{pid}/tasks/next", headers=alice).status_code == 200


def test_admin_pages_mark_gold_and_plot_accuracy(seeded: Seeded) -> None:
    pid, _ = _stopped_project(seeded)
    with make_client(seeded) as c:
        _work_until_gold(c, api_token(c, "bob"), pid, 2)
        (item_id,) = add_prompt_items(seeded.db, pid, [("Fresh?", ["yes", "no"])])
        csrf = login(c, "admin")
        page = c.get(f"/admin/projects/{pid}/items/{item_id}")
        radios = lxml.html.fromstring(page.text).cssselect("#gold-form input[name=choice]")
        rid = _rids(seeded, item_id)[1]
        assert f"preferred:{rid}" in [r.get("value") for r in radios]
        r = c.post(f"/admin/projects/{pid}/items/{item_id}/gold",
                   data={"csrf_token": csrf, "choice": "preferred:r_wrong"})
        assert r.status_code == 422
        assert lxml.html.fromstring(r.text).cssselect("#gold-error")[0].text_content().startswith(
            'field "answer.preferred"')
        r = c.post(f"/admin/projects/{pid}/items/{item_id}/gold",
                   data={"csrf_token": csrf, "choice": f"preferred:{rid}"})
        assert r.status_code == 200  # followed the redirect to the item page
        assert lxml.html.fromstring(r.text).cssselect("#gold-answer")[0].text_content() == (
            f'{{"preferred": "{rid}"}}')
        r = c.post(f"/admin/projects/{pid}/gold/threshold",
                   data={"csrf_token": csrf, "min_accuracy": "80", "after": "2"})
        doc = lxml.html.fromstring(r.text)
        assert doc.cssselect("#gold-plot svg polyline")  # bob's running accuracy
        flagged = doc.cssselect("#gold-annotators tr.flagged td")
        assert flagged and flagged[0].text_content() == "human:bob"
        r = c.post(f"/admin/projects/{pid}/gold/upload", data={"csrf_token": csrf},
                   files={"file": ("g.jsonl", b'{"item_id": "i_nope", "answer": {"tie": true}}\n',
                                   "application/x-ndjson")})
        assert r.status_code == 422
        err = lxml.html.fromstring(r.text).cssselect("#gold-error")[0].text_content()
        assert err.startswith('g.jsonl, line 1, field "item_id": no item')


def test_cli_sets_uploads_lists_and_clears_gold(seeded: Seeded, tmp_path: Path) -> None:
    a, b = seeded.item_ids[:2]
    rb = _rids(seeded, b)
    base = ["--db", seeded.url]

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["projects", "gold", *args, *base])
        assert result.exit_code == code, result.output
        # a library error reaches cli.main's handler (which prints it) as the exception
        return result.output if result.exception is None else str(result.exception)

    assert "is gold" in run("set", seeded.project_id, a, "--tie")
    bad = tmp_path / "gold.csv"
    bad.write_text(f"item_id,preferred\n{b},r_elsewhere\n")
    out = run("upload", seeded.project_id, str(bad), code=1)
    assert out.startswith('gold.csv, line 2, field "answer.preferred": expected one of')
    good = tmp_path / "gold.jsonl"
    good.write_text(f'{{"item_id": "{b}", "answer": {{"preferred": "{rb[0]}"}}}}\n')
    assert "1 gold answers stored" in run("upload", seeded.project_id, str(good))
    import json

    listed = json.loads(run("list", seeded.project_id, "--json"))
    assert {(a, '{"tie": true}'), (b, json.dumps({"preferred": rb[0]}))} == {
        (g["item_id"], json.dumps(g["answer"])) for g in listed}
    assert "1 of 1 items were gold" in run("clear", seeded.project_id, a)
    out = run("threshold", seeded.project_id, "--min-accuracy", "0.7", "--after", "5",
              "--stop-serving")
    assert "at least 70% right after 5 gold items; stop serving" in out
    assert "give exactly one of" in run("set", seeded.project_id, a, "--tie", "--both-bad",
                                        code=1)
