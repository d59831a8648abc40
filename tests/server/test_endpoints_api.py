"""The endpoints and live-config API: admin only, validated, and never a key in a body."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from preflab.collect.core_tables import PROJECT_ENDPOINTS, PROJECTS
from preflab.collect.endpoints import NO_KEYS_MESSAGE

from .conftest import Seeded, api_token, make_client

BODY = {"name": "small", "base_url": "http://127.0.0.1:8000/v1", "model": "tiny"}


@pytest.fixture
def api(seeded: Seeded):
    with make_client(seeded) as c:
        yield c, api_token(c, "admin"), api_token(c, "alice")


def _url(seeded: Seeded, rest: str = "") -> str:
    return f"/api/v1/projects/{seeded.project_id}/endpoints{rest}"


def _error(r) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    return body["error"]


def _stored(seeded: Seeded) -> list[tuple]:
    with seeded.db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(PROJECT_ENDPOINTS))]


def _project_config(seeded: Seeded) -> Any:
    with seeded.db.connect() as conn:
        return conn.execute(select(PROJECTS.c.config).where(
            PROJECTS.c.project_id == seeded.project_id)).scalar()


def test_add_then_read_and_list(api, seeded: Seeded) -> None:
    c, admin, _ = api
    r = c.post(_url(seeded), json={**BODY, "revision": "r7", "params": {"temperature": 0.4},
                                   "api_key_env": "NOT_SET_ANYWHERE_1"}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["name"], body["model"], body["revision"], body["params"], body["concurrency"],
            body["timeout"], body["api_key_env"], body["api_key_status"], body["enabled"]) == (
        "small", "tiny", "r7", {"temperature": 0.4}, 4, 60.0, "NOT_SET_ANYWHERE_1", "not set",
        True)
    assert body == c.get(_url(seeded, "/small"), headers=admin).json()
    assert [body] == c.get(_url(seeded), headers=admin).json()


def test_keyless_endpoint_has_key_status_none(api, seeded: Seeded) -> None:
    c, admin, _ = api
    assert "none" == c.post(_url(seeded), json=BODY, headers=admin).json()["api_key_status"]


def test_duplicate_name_is_409(api, seeded: Seeded) -> None:
    c, admin, _ = api
    c.post(_url(seeded), json=BODY, headers=admin)
    before = _stored(seeded)
    r = c.post(_url(seeded), json={**BODY, "model": "other"}, headers=admin)
    assert (409, "body.name") == (r.status_code, _error(r)["field"])
    assert before == _stored(seeded)


@pytest.mark.parametrize(("change", "field"), [
    ({"base_url": "localhost:8000"}, "body.base_url"),
    ({"concurrency": -3}, "body.concurrency"),
    ({"api_key_env": "sk-live-abc"}, "body.api_key_env"),
    ({"params": {"temperature": -1}}, "body.params.temperature"),
    ({"name": "a b"}, "body.name"),
    ({"extra": 1}, "body.extra"),
])
def test_bad_body_is_422_naming_the_field_and_writes_nothing(api, seeded: Seeded,
                                                             change: dict, field: str) -> None:
    c, admin, _ = api
    r = c.post(_url(seeded), json={**BODY, **change}, headers=admin)
    assert (422, field) == (r.status_code, _error(r)["field"])
    assert [] == _stored(seeded)


@pytest.mark.parametrize("name", ["api_key", "key", "token", "secret"])
def test_a_key_in_the_body_is_refused_and_not_echoed(api, seeded: Seeded, name: str) -> None:
    c, admin, _ = api
    r = c.post(_url(seeded), json={**BODY, name: "sk-SENTINEL-77"}, headers=admin)
    err = _error(r)
    assert (422, f"body.{name}") == (r.status_code, err["field"])
    assert NO_KEYS_MESSAGE in err["message"]
    assert "sk-SENTINEL-77" not in r.text
    assert [] == _stored(seeded)


def test_patch_disables_and_clears_revision(api, seeded: Seeded) -> None:
    c, admin, _ = api
    c.post(_url(seeded), json={**BODY, "revision": "r1"}, headers=admin)
    r = c.patch(_url(seeded, "/small"), json={"enabled": False, "revision": None}, headers=admin)
    assert r.status_code == 200, r.text
    assert (False, None, "tiny") == (r.json()["enabled"], r.json()["revision"], r.json()["model"])
    assert r.json() == c.get(_url(seeded, "/small"), headers=admin).json()


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "renamed"}, "body.name"),
    ({"token": "sk-SENTINEL-77"}, "body.token"),
    ({"timeout": -1}, "body.timeout"),
    ({"model": None}, "body.model"),
])
def test_bad_patch_is_422_and_changes_nothing(api, seeded: Seeded, body: dict,
                                              field: str) -> None:
    c, admin, _ = api
    c.post(_url(seeded), json=BODY, headers=admin)
    before = _stored(seeded)
    r = c.patch(_url(seeded, "/small"), json=body, headers=admin)
    assert (422, field) == (r.status_code, _error(r)["field"])
    assert "sk-SENTINEL-77" not in r.text
    assert before == _stored(seeded)


def test_delete_then_missing_is_404(api, seeded: Seeded) -> None:
    c, admin, _ = api
    c.post(_url(seeded), json=BODY, headers=admin)
    assert 204 == c.delete(_url(seeded, "/small"), headers=admin).status_code
    assert [] == _stored(seeded)
    for r in (c.delete(_url(seeded, "/small"), headers=admin),
              c.get(_url(seeded, "/small"), headers=admin),
              c.patch(_url(seeded, "/small"), json={"enabled": True}, headers=admin)):
        assert (404, "not_found") == (r.status_code, _error(r)["code"])


def test_unknown_project_is_404(api) -> None:
    c, admin, _ = api
    r = c.post("/api/v1/projects/nope/endpoints", json=BODY, headers=admin)
    assert 404 == r.status_code


def test_annotator_gets_403_everywhere_and_nothing_changes(api, seeded: Seeded) -> None:
    c, admin, alice = api
    c.post(_url(seeded), json=BODY, headers=admin)
    before, config = _stored(seeded), _project_config(seeded)
    calls = [
        c.get(_url(seeded), headers=alice),
        c.post(_url(seeded), json={**BODY, "name": "mine"}, headers=alice),
        c.get(_url(seeded, "/small"), headers=alice),
        c.patch(_url(seeded, "/small"), json={"enabled": False}, headers=alice),
        c.delete(_url(seeded, "/small"), headers=alice),
        c.get(f"/api/v1/projects/{seeded.project_id}/live", headers=alice),
        c.put(f"/api/v1/projects/{seeded.project_id}/live", json={"k": 3}, headers=alice),
    ]
    assert [403] * len(calls) == [r.status_code for r in calls]
    assert (before, config) == (_stored(seeded), _project_config(seeded))


def test_live_config_defaults_then_put_replaces(api, seeded: Seeded) -> None:
    c, admin, _ = api
    url = f"/api/v1/projects/{seeded.project_id}/live"
    first = c.get(url, headers=admin).json()
    assert (["chat"], 2, "models", 5, "uniform", False, True) == (
        first["modes"], first["k"], first["sampling"], first["turn_limit"],
        first["arena_policy"], first["leaderboard_for_annotators"], first["prompt_pool"])
    r = c.put(url, json={"modes": ["arena"], "k": 3, "turn_limit": 2}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == c.get(url, headers=admin).json()
    assert (["arena"], 3, 2) == (r.json()["modes"], r.json()["k"], r.json()["turn_limit"])
    assert {"modes": ["arena"], "k": 3}.items() <= _project_config(seeded)["live"].items()


@pytest.mark.parametrize(("body", "field"), [
    ({"k": 9}, "body.k"),
    ({"modes": ["battle"]}, "body.modes[0]"),
    ({"turn_limit": 0}, "body.turn_limit"),
    ({"surprise": 1}, "body.surprise"),
])
def test_bad_live_config_is_422_and_changes_nothing(api, seeded: Seeded, body: dict,
                                                    field: str) -> None:
    c, admin, _ = api
    before = _project_config(seeded)
    r = c.put(f"/api/v1/projects/{seeded.project_id}/live", json=body, headers=admin)
    assert (422, field) == (r.status_code, _error(r)["field"])
    assert before == _project_config(seeded)


def test_openapi_documents_the_bodies(api) -> None:
    c: TestClient = api[0]
    spec = c.get("/api/v1/openapi.json").json()
    post = spec["paths"]["/api/v1/projects/{project_id}/endpoints"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert {"name", "base_url", "model", "api_key_env"} <= set(schema["properties"])
    assert "api_key" not in schema["properties"]
