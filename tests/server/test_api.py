"""The JSON API: submissions of every kind, idempotency, guidelines, progress, errors, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from preflab.collect import ProjectCreate
from preflab.store.tables import JudgmentRow

from .conftest import Seeded, add_prompt_items, api_token, make_client, seed_project


@pytest.fixture
def api(seeded: Seeded):
    with make_client(seeded) as c:
        yield c, api_token(c, "alice"), api_token(c, "admin")


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


@pytest.mark.parametrize(("choice", "left_wins", "strength", "tie"), [
    ("1", True, 2, False), ("2", True, 1, False), ("3", None, 0, True), ("4", False, 1, False),
    ("5", False, 2, False), ("tie", None, 0, True)])
def test_pairwise_scale_points_map_to_response_ids(api, seeded: Seeded, choice: str,
                                                   left_wins: bool | None, strength: int,
                                                   tie: bool) -> None:
    c, alice, _ = api
    task = _next(c, alice, seeded.project_id)
    left, right = (r["response_id"] for r in task["responses"])
    r = _submit(c, alice, task, choice=choice)
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["response_ids"] == [left, right]  # the order shown is stored
    want = None if left_wins is None else (left if left_wins else right)
    assert (j["value"]["preferred"], j["value"]["strength"], j["value"]["tie"]) == (
        want, strength, tie)


def test_both_bad_has_no_winner(api, seeded: Seeded) -> None:
    c, alice, _ = api
    j = _submit(c, alice, _next(c, alice, seeded.project_id), choice="both_bad").json()
    assert j["value"]["both_bad"] is True and j["value"]["preferred"] is None


def test_repeated_submission_returns_the_first(api, seeded: Seeded) -> None:
    c, alice, _ = api
    task = _next(c, alice, seeded.project_id)
    first = _submit(c, alice, task, choice="1", submission_id="same-submission")
    again = _submit(c, alice, task, choice="5", submission_id="same-submission")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    with seeded.db.read() as s:
        assert s.query(JudgmentRow).count() == 1


def test_bad_choice_names_the_field_and_writes_nothing(api, seeded: Seeded) -> None:
    c, alice, _ = api
    task = _next(c, alice, seeded.project_id)
    r = _submit(c, alice, task, choice="9")
    assert r.status_code == 422
    err = _error(r)
    assert err["field"] == "choice" and "1..5" in err["message"]
    with seeded.db.read() as s:
        assert s.query(JudgmentRow).count() == 0
    assert _submit(c, alice, task, choice="2").status_code == 201  # the task is still open


def test_missing_body_field_has_the_error_shape(api, seeded: Seeded) -> None:
    c, alice, _ = api
    task = _next(c, alice, seeded.project_id)
    r = c.post(f"/api/v1/tasks/{task['assignment_id']}/judgments", json={"choice": "1"},
               headers=alice)
    assert r.status_code == 422
    assert _error(r)["field"] == "body.submission_id"


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/api/v1/projects/nope", 404, "not_found"),
    ("/api/v1/tasks/a_missing", 404, "not_found"),
    ("/api/v1/nothing-here", 404, "not_found"),
    ("/api/v1/users", 403, "forbidden"),
])
def test_errors_share_one_shape(api, path: str, status: int, code: str) -> None:
    c, alice, _ = api
    r = c.get(path, headers=alice)
    assert r.status_code == status
    assert _error(r)["code"] == code


def test_ranking_with_ties_and_all_bad(api, seeded: Seeded) -> None:
    c, alice, _ = api
    pid = seed_project(seeded.db, ProjectCreate(name="Rank", kind="ranking"), ["alice"])
    add_prompt_items(seeded.db, pid, [("Rank these?", ["one", "two", "three"]),
                                      ("And these?", ["four", "five", "six"])])
    task = _next(c, alice, pid)
    ids = [r["response_id"] for r in task["responses"]]
    j = _submit(c, alice, task, ranks={ids[0]: 2, ids[1]: 1, ids[2]: 2}).json()
    assert j["value"] == {"groups": [[ids[1]], [ids[0], ids[2]]]}
    task = _next(c, alice, pid)
    j = _submit(c, alice, task, all_bad=True).json()
    assert j["value"] == {"groups": []} and "all_bad" in j["flags"]


def test_rating_needs_every_attribute_in_range(api, seeded: Seeded) -> None:
    c, alice, _ = api
    pid = seed_project(seeded.db, ProjectCreate(name="Rate", kind="rating",
                                                attributes=["helpfulness", "verbosity"]),
                       ["alice"])
    add_prompt_items(seeded.db, pid, [("Rate?", ["r1", "r2"])])
    task = _next(c, alice, pid)
    a, b = (r["response_id"] for r in task["responses"])
    r = _submit(c, alice, task, scores={a: {"helpfulness": 3, "verbosity": 9},
                                        b: {"helpfulness": 1, "verbosity": 2}})
    assert r.status_code == 422 and _error(r)["field"] == f"scores.{a}.verbosity"
    j = _submit(c, alice, task, scores={a: {"helpfulness": 3, "verbosity": 4},
                                        b: {"helpfulness": 1, "verbosity": 2}}).json()
    assert j["value"]["scores"][b] == {"helpfulness": 1.0, "verbosity": 2.0}


def test_binary_thumbs_with_reasons(api, seeded: Seeded) -> None:
    c, alice, _ = api
    pid = seed_project(seeded.db, ProjectCreate(name="Thumbs", kind="binary",
                                                reason_tags=["rude", "wrong"]), ["alice"])
    add_prompt_items(seeded.db, pid, [("Thumb?", ["only answer"])])
    task = _next(c, alice, pid)
    r = _submit(c, alice, task, label=False, reasons=["slow"])
    assert r.status_code == 422 and _error(r)["field"] == "reasons"
    j = _submit(c, alice, task, label=False, reasons=["rude"]).json()
    assert j["value"] == {"response_id": task["responses"][0]["response_id"], "label": False,
                          "reasons": ["rude"]}


def test_judgments_record_the_guideline_version_and_changes_are_shown(api,
                                                                      seeded: Seeded) -> None:
    c, alice, admin = api
    task = _next(c, alice, seeded.project_id)
    assert task["guideline_version"] == 1
    assert _submit(c, alice, task, choice="1").json()["guideline_version"] == 1
    r = c.post(f"/api/v1/projects/{seeded.project_id}/guidelines", headers=admin,
               json={"text": "# Rules\n\nBe kind.\n\nPrefer short answers."})
    assert r.json()["version"] == 2
    task = _next(c, alice, seeded.project_id)
    assert task["guideline_version"] == 2
    assert "+Prefer short answers." in task["guideline_changes"]
    assert _submit(c, alice, task, choice="1").json()["guideline_version"] == 2
    old = c.get(f"/api/v1/projects/{seeded.project_id}/guidelines?version=1", headers=alice)
    assert old.json()["text"] == "# Rules\n\nBe kind."


def test_progress_and_why_served(api, seeded: Seeded) -> None:
    c, alice, admin = api
    task = _next(c, alice, seeded.project_id)
    _submit(c, alice, task, choice="2")
    p = c.get(f"/api/v1/projects/{seeded.project_id}/progress", headers=admin).json()
    assert (p["judgments"], p["items"]) == (1, 6)
    assert p["per_annotator"][0]["judge_id"] == "human:alice"
    why = c.get(f"/api/v1/projects/{seeded.project_id}/items/{task['item_id']}/assignments",
                headers=admin).json()
    assert why[0]["status"] == "submitted" and "priority" in why[0]["reason"]


def test_skip_then_next_gives_another_item(api, seeded: Seeded) -> None:
    c, alice, _ = api
    task = _next(c, alice, seeded.project_id)
    r = c.post(f"/api/v1/tasks/{task['assignment_id']}/skip", json={"reason": "unreadable"},
               headers=alice)
    assert r.status_code == 204
    assert _next(c, alice, seeded.project_id)["item_id"] != task["item_id"]


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/tasks/{assignment_id}/judgments" in spec["paths"]
    assert not any(p.startswith("/admin") for p in spec["paths"])  # pages are not API
    assert client.get("/docs").status_code == 200


def test_every_api_route_declares_its_response_schema(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    missing = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            if not ok:
                missing.append(f"{method.upper()} {path}: no success response")
                continue
            for code, r in ok.items():
                if code == "204":
                    continue
                # JSON, the live events' text/event-stream, or a JSONL download
                content = r.get("content", {})
                body = (content.get("application/json") or content.get("text/event-stream")
                        or content.get("application/x-ndjson") or {})
                schema = body.get("schema", {})
                if not schema or schema == {} or schema.get("additionalProperties") is True:
                    missing.append(f"{method.upper()} {path} {code}: {schema}")
    assert [] == missing


def test_task_bodies_follow_their_openapi_schemas(api, seeded: Seeded) -> None:
    from preflab.server.api.v1.schemas import TaskNext, TaskPublic

    c, alice, _ = api
    spec = c.get("/api/v1/openapi.json").json()
    ref = spec["paths"]["/api/v1/projects/{project_id}/tasks/next"]["post"]["responses"]["200"]
    assert ref["content"]["application/json"]["schema"]["$ref"].endswith("/TaskNext")
    nxt = c.post(f"/api/v1/projects/{seeded.project_id}/tasks/next", headers=alice).json()
    task = TaskNext.model_validate(nxt).task
    assert task is not None and set(nxt["task"]) == set(TaskPublic.model_fields)
    read = c.get(f"/api/v1/tasks/{task.assignment_id}", headers=alice).json()
    assert TaskPublic.model_validate(read) == task


def test_admin_creates_projects_and_members(api, seeded: Seeded) -> None:
    c, alice, admin = api
    r = c.post("/api/v1/projects", headers=admin, json={"name": "Seven", "scale": 7})
    assert r.status_code == 201 and r.json()["project_id"] == "seven"
    bad = c.post("/api/v1/projects", headers=admin, json={"name": "Six", "scale": 6})
    assert bad.status_code == 422 and "scale must be one of" in _error(bad)["message"]
    assert c.get("/api/v1/projects/seven", headers=alice).status_code == 404
    c.post("/api/v1/projects/seven/members", headers=admin, json={"username": "alice"})
    assert c.get("/api/v1/projects/seven", headers=alice).status_code == 200
    dup = c.post("/api/v1/projects", headers=admin, json={"name": "Seven"})
    assert dup.status_code == 409
