"""The admin project page's "Models (live collection)" section: list, add, edit, disable,
remove endpoints and edit the live config; a key is never shown, stored or logged."""

from __future__ import annotations

import json

import httpx
import lxml.html
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from preflab import collect
from preflab.collect import EndpointCreate

from .conftest import Seeded, csrf_of, login, make_client, start_server, stop_server

SENTINEL = "sk-SENTINEL-c0ffee-never-shown"
FORM = {"name": "small", "base_url": "http://127.0.0.1:8000/v1", "model": "tiny",
        "revision": "step-10", "params": '{"temperature": 0.7}', "concurrency": "3",
        "timeout": "20", "api_key_env": "", "enabled": "on"}


@pytest.fixture
def admin_client(seeded: Seeded):
    with make_client(seeded) as c:
        yield c, login(c, "admin")


def _page(c: TestClient, seeded: Seeded) -> lxml.html.HtmlElement:
    r = c.get(f"/admin/projects/{seeded.project_id}")
    assert r.status_code == 200, r.text[:500]
    return lxml.html.fromstring(r.text)


def _endpoint_rows(doc: lxml.html.HtmlElement) -> dict[str, list[str]]:
    return {tr.get("data-endpoint"): [td.text_content().strip() for td in tr.cssselect("td")]
            for tr in doc.cssselect("#endpoints tbody tr")}


def _stored(seeded: Seeded) -> list[collect.ProjectEndpoint]:
    with seeded.db.connect() as conn:
        return collect.list_endpoints(conn, seeded.project_id)


def _post(c: TestClient, path: str, csrf: str, data: dict[str, str] | None = None):
    return c.post(path, data={"csrf_token": csrf, **(data or {})}, follow_redirects=False)


def test_the_models_section_is_in_the_page_body_once(admin_client, seeded: Seeded) -> None:
    c, _ = admin_client
    doc = _page(c, seeded)
    assert doc.findtext(".//title").strip().endswith("· admin · preflab")
    assert "Models" not in doc.findtext(".//title")
    assert len(doc.cssselect("section#models")) == 1
    assert len(doc.cssselect("main section#models, body section#models")) == 1
    assert doc.cssselect("#progress") and doc.cssselect("form#endpoint-add")


def test_empty_section_offers_the_add_form(admin_client, seeded: Seeded) -> None:
    c, _ = admin_client
    doc = _page(c, seeded)
    assert doc.cssselect("section#models #no-endpoints")
    names = {i.get("name") for i in doc.cssselect("form#endpoint-add input")}
    assert {"name", "base_url", "model", "revision", "params", "concurrency", "timeout",
            "api_key_env", "enabled"} <= names
    assert not names & {"api_key", "key", "token", "secret"}


def test_add_from_the_page_lists_the_endpoint(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    r = _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf, FORM)
    assert (303, f"/admin/projects/{seeded.project_id}#models") == (
        r.status_code, r.headers["location"])
    [ep] = _stored(seeded)
    assert ("tiny", "step-10", {"temperature": 0.7}, 3, 20.0, None, True) == (
        ep.model, ep.revision, ep.params, ep.concurrency, ep.timeout, ep.api_key_env, ep.enabled)
    row = _endpoint_rows(_page(c, seeded))["small"]
    assert ["small", "tiny", "step-10", "http://127.0.0.1:8000/v1"] == row[:4]
    assert "none (keyless server)" == row[7]
    assert "enabled" == row[8]


def test_bad_form_shows_the_error_keeps_the_values_and_writes_nothing(admin_client,
                                                                      seeded: Seeded) -> None:
    c, csrf = admin_client
    r = _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf,
              {**FORM, "concurrency": "-2"})
    assert 422 == r.status_code
    doc = lxml.html.fromstring(r.text)
    assert "concurrency" in doc.cssselect("#endpoint-error")[0].text_content()
    assert "http://127.0.0.1:8000/v1" == doc.cssselect(
        "form#endpoint-add input[name=base_url]")[0].get("value")
    assert [] == _stored(seeded)


def test_bad_params_json_names_params(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    r = _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf,
              {**FORM, "params": "{temperature: 1"})
    assert 422 == r.status_code
    assert 'field "params"' in lxml.html.fromstring(r.text).cssselect(
        "#endpoint-error")[0].text_content()


def test_a_key_pasted_as_the_variable_name_is_refused_and_not_shown(admin_client,
                                                                    seeded: Seeded) -> None:
    c, csrf = admin_client
    r = _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf,
              {**FORM, "api_key_env": SENTINEL})
    assert 422 == r.status_code
    doc = lxml.html.fromstring(r.text)
    assert "api_key_env" in doc.cssselect("#endpoint-error")[0].text_content()
    assert [] == _stored(seeded)
    assert "" == doc.cssselect("form#endpoint-add input[name=api_key_env]")[0].get("value")
    assert "tiny" == doc.cssselect("form#endpoint-add input[name=model]")[0].get("value")
    assert SENTINEL not in r.text


def test_duplicate_name_is_refused_on_the_page(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf, FORM)
    r = _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf, {**FORM, "model": "x"})
    assert 409 == r.status_code
    assert "already has an endpoint" in r.text
    assert ["tiny"] == [e.model for e in _stored(seeded)]


def test_key_variable_shows_its_name_and_whether_it_is_set(admin_client, seeded: Seeded,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    c, _ = admin_client
    monkeypatch.setenv("PREFLAB_TEST_KEY_SET", SENTINEL)
    monkeypatch.delenv("PREFLAB_TEST_KEY_UNSET", raising=False)
    with seeded.db.transaction() as conn:
        for name, env in (("a", "PREFLAB_TEST_KEY_SET"), ("b", "PREFLAB_TEST_KEY_UNSET")):
            collect.add_endpoint(conn, seeded.project_id, EndpointCreate(
                name=name, base_url="http://127.0.0.1:1/v1", model=name, api_key_env=env))
    r = c.get(f"/admin/projects/{seeded.project_id}")
    doc = lxml.html.fromstring(r.text)
    keys = {tr.get("data-endpoint"): tr.cssselect("td.key")[0] for tr in
            doc.cssselect("#endpoints tbody tr")}
    assert "PREFLAB_TEST_KEY_SET" == keys["a"].cssselect("code")[0].text
    assert keys["a"].cssselect(".key-set") and not keys["a"].cssselect(".key-missing")
    assert "not set in the server's environment" == keys["b"].cssselect(
        ".key-missing")[0].text_content()
    assert SENTINEL not in r.text
    edit = c.get(f"/admin/projects/{seeded.project_id}/endpoints/a")
    assert lxml.html.fromstring(edit.text).cssselect("#key-status .key-set")
    assert SENTINEL not in edit.text


def test_edit_page_saves_changes_and_clears_revision(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf, FORM)
    edit = c.get(f"/admin/projects/{seeded.project_id}/endpoints/small")
    doc = lxml.html.fromstring(edit.text)
    form = {i.get("name"): i.get("value") or "" for i in doc.cssselect("form#endpoint-edit input")
            if i.get("type") != "checkbox"}
    assert ("tiny", "step-10", '{"temperature": 0.7}') == (
        form["model"], form["revision"], form["params"])
    form.update(model="tiny-2", revision="", concurrency="9", enabled="on")
    r = c.post(f"/admin/projects/{seeded.project_id}/endpoints/small", data=form,
               follow_redirects=False)
    assert 303 == r.status_code, r.text[:500]
    [ep] = _stored(seeded)
    assert ("tiny-2", None, 9, {"temperature": 0.7}, True) == (
        ep.model, ep.revision, ep.concurrency, ep.params, ep.enabled)


def test_bad_edit_shows_the_error_and_changes_nothing(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf, FORM)
    before = _stored(seeded)
    data = {k: v for k, v in FORM.items() if k != "name"}
    r = _post(c, f"/admin/projects/{seeded.project_id}/endpoints/small", csrf,
              {**data, "base_url": "gopher://x"})
    assert 422 == r.status_code
    doc = lxml.html.fromstring(r.text)
    assert "base_url" in doc.cssselect("#endpoint-error")[0].text_content()
    assert "gopher://x" == doc.cssselect("form#endpoint-edit input[name=base_url]")[0].get("value")
    assert before == _stored(seeded)


def test_a_key_pasted_on_the_edit_page_is_not_shown_back(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    _post(c, f"/admin/projects/{seeded.project_id}/endpoints", csrf, FORM)
    before = _stored(seeded)
    data = {k: v for k, v in FORM.items() if k != "name"}
    r = _post(c, f"/admin/projects/{seeded.project_id}/endpoints/small", csrf,
              {**data, "api_key_env": SENTINEL})
    assert 422 == r.status_code
    assert SENTINEL not in r.text
    assert before == _stored(seeded)


def test_disable_enable_and_remove_from_the_page(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    base = f"/admin/projects/{seeded.project_id}/endpoints"
    _post(c, base, csrf, FORM)
    doc = _page(c, seeded)
    actions = [f.get("action") for f in doc.cssselect("#endpoints tbody tr form")]
    assert [f"{base}/small/disable", f"{base}/small/remove"] == actions
    assert 303 == _post(c, f"{base}/small/disable", csrf).status_code
    assert [False] == [e.enabled for e in _stored(seeded)]
    assert "disabled" == _endpoint_rows(_page(c, seeded))["small"][8]
    with seeded.db.connect() as conn:
        assert [] == collect.list_endpoints(conn, seeded.project_id, enabled_only=True)
    assert 303 == _post(c, f"{base}/small/enable", csrf).status_code
    assert [True] == [e.enabled for e in _stored(seeded)]
    assert 303 == _post(c, f"{base}/small/remove", csrf).status_code
    assert [] == _stored(seeded)
    assert 404 == _post(c, f"{base}/small/remove", csrf).status_code


def test_forms_need_the_csrf_token(admin_client, seeded: Seeded) -> None:
    c, _ = admin_client
    r = c.post(f"/admin/projects/{seeded.project_id}/endpoints", data=FORM,
               follow_redirects=False)
    assert 403 == r.status_code
    assert [] == _stored(seeded)


def test_live_config_form_saves_and_shows_the_config(admin_client, seeded: Seeded) -> None:
    c, csrf = admin_client
    doc = _page(c, seeded)
    assert doc.cssselect("#live-form input[name=mode_chat][checked]")
    assert not doc.cssselect("#live-form input[name=mode_arena][checked]")
    r = _post(c, f"/admin/projects/{seeded.project_id}/live", csrf, {
        "mode_arena": "on", "k": "3", "sampling": "temperatures",
        "temperatures": "0.2, 0.8, 1.4", "turn_limit": "7", "arena_policy": "widest_interval",
        "leaderboard_for_annotators": "on"})
    assert 303 == r.status_code, r.text[:500]
    with seeded.db.connect() as conn:
        cfg = collect.get_live_config(collect.get_project(conn, seeded.project_id))
    assert (["arena"], 3, "temperatures", [0.2, 0.8, 1.4], 7, "widest_interval", True,
            False) == (cfg.modes, cfg.k, cfg.sampling, cfg.temperatures, cfg.turn_limit,
                       cfg.arena_policy, cfg.leaderboard_for_annotators, cfg.prompt_pool)
    doc = _page(c, seeded)
    assert doc.cssselect("#live-form input[name=mode_arena][checked]")
    assert "3" == doc.cssselect("#live-form input[name=k]")[0].get("value")
    assert doc.cssselect("#live-form select[name=arena_policy] option[value=widest_interval]"
                         "[selected]")


def test_bad_live_config_form_shows_the_error_and_changes_nothing(admin_client,
                                                                  seeded: Seeded) -> None:
    c, csrf = admin_client
    r = _post(c, f"/admin/projects/{seeded.project_id}/live", csrf, {
        "mode_chat": "on", "k": "4", "sampling": "temperatures", "temperatures": "0.5",
        "turn_limit": "5"})
    assert 422 == r.status_code
    assert "temperatures" in lxml.html.fromstring(r.text).cssselect(
        "#live-error")[0].text_content()
    with seeded.db.connect() as conn:
        assert "live" not in collect.get_project(conn, seeded.project_id).config


def test_annotator_cannot_reach_the_section_or_its_forms(seeded: Seeded) -> None:
    with seeded.db.transaction() as conn:
        collect.add_endpoint(conn, seeded.project_id, EndpointCreate(
            name="small", base_url="http://127.0.0.1:8000/v1", model="tiny"))
    with make_client(seeded) as c:
        csrf = login(c, "alice")
        base = f"/admin/projects/{seeded.project_id}"
        statuses = [
            c.get(base).status_code,
            c.get(f"{base}/endpoints/small").status_code,
            _post(c, f"{base}/endpoints", csrf, {**FORM, "name": "mine"}).status_code,
            _post(c, f"{base}/endpoints/small", csrf, FORM).status_code,
            _post(c, f"{base}/endpoints/small/disable", csrf).status_code,
            _post(c, f"{base}/endpoints/small/remove", csrf).status_code,
            _post(c, f"{base}/live", csrf, {"k": "3"}).status_code,
        ]
    assert [403] * 7 == statuses
    [ep] = _stored(seeded)
    assert (True, "tiny") == (ep.enabled, ep.model)


def test_a_key_in_the_servers_environment_is_in_no_row_page_body_or_log(seeded: Seeded) -> None:
    """A real server started with MY_KEY set: add, list, edit, disable, configure through the
    API and the pages; the key's value appears nowhere."""
    server = start_server(seeded.url, seeded.workspace, {"MY_KEY": SENTINEL})
    seen: list[str] = []
    try:
        with httpx.Client(base_url=server.url) as c:
            token = c.post("/api/v1/tokens", json={"username": "admin",
                                                   "password": "admin-pass-1"}).json()["token"]
            h = {"Authorization": f"Bearer {token}"}
            pid = seeded.project_id
            for r in (
                c.post(f"/api/v1/projects/{pid}/endpoints", headers=h, json={
                    "name": "keyed", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                    "api_key_env": "MY_KEY"}),
                c.post(f"/api/v1/projects/{pid}/endpoints", headers=h, json={
                    "name": "bad", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                    "api_key": SENTINEL}),
                c.patch(f"/api/v1/projects/{pid}/endpoints/keyed", headers=h,
                        json={"timeout": 5, "token": SENTINEL}),
                c.patch(f"/api/v1/projects/{pid}/endpoints/keyed", headers=h,
                        json={"timeout": 5}),
                c.get(f"/api/v1/projects/{pid}/endpoints", headers=h),
                c.get(f"/api/v1/projects/{pid}/endpoints/keyed", headers=h),
                c.put(f"/api/v1/projects/{pid}/live", headers=h, json={"modes": ["arena"]}),
                c.get(f"/api/v1/projects/{pid}/live", headers=h),
            ):
                seen.append(r.text)
            listed = json.loads(seen[4])
            assert [("keyed", "MY_KEY", "set")] == [
                (e["name"], e["api_key_env"], e["api_key_status"]) for e in listed]
            csrf = login(c, "admin")
            for path in (f"/admin/projects/{pid}", f"/admin/projects/{pid}/endpoints/keyed"):
                page = c.get(path)
                assert 200 == page.status_code
                seen.append(page.text)
            page = lxml.html.fromstring(seen[-2])
            assert "MY_KEY" == page.cssselect("#endpoints td.key code")[0].text
            assert page.cssselect("#endpoints td.key .key-set")
            seen.append(c.post(f"/admin/projects/{pid}/endpoints/keyed/disable",
                               data={"csrf_token": csrf}).text)
            assert csrf == csrf_of(seen[-2])
    finally:
        stop_server(server)
    log = server.output()
    assert all(SENTINEL not in text for text in seen)
    assert SENTINEL not in log
    meta = MetaData()
    meta.reflect(seeded.db.engine)
    with seeded.db.connect() as conn:
        dump = json.dumps({name: [list(r) for r in conn.execute(select(table))]
                           for name, table in meta.tables.items()}, default=str)
    assert "MY_KEY" in dump  # the variable's name is stored …
    assert SENTINEL not in dump  # … never its value
