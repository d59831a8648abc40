"""Every route, walked as nobody, as an outsider annotator, as a member annotator and as admin.

The table below classifies each route; a test fails when the app has a route the table does
not list, so a new route cannot ship unclassified.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient

from preflab import collect
from preflab.collect import accounts as store
from preflab.server.db import Database
from preflab.server.scopes import ROUTE_SCOPES

from .conftest import Seeded, api_token, login, make_client, scoped_token

PUBLIC, USER, MEMBER, OWN_TASK, ADMIN = "public", "user", "member", "own_task", "admin"

ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): USER,
    ("GET", "/"): USER,
    ("GET", "/projects/{project_id}"): MEMBER,
    ("GET", "/projects/{project_id}/work"): MEMBER,
    ("GET", "/projects/{project_id}/guidelines"): MEMBER,
    ("GET", "/projects/{project_id}/mine"): MEMBER,
    ("GET", "/tasks/{assignment_id}"): OWN_TASK,
    ("POST", "/tasks/{assignment_id}"): OWN_TASK,
    ("POST", "/tasks/{assignment_id}/skip"): OWN_TASK,
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/projects/new"): ADMIN,
    ("POST", "/admin/projects"): ADMIN,
    ("GET", "/admin/projects/{project_id}"): ADMIN,
    ("POST", "/admin/projects/{project_id}/members"): ADMIN,
    ("GET", "/admin/projects/{project_id}/guidelines"): ADMIN,
    ("POST", "/admin/projects/{project_id}/guidelines"): ADMIN,
    ("GET", "/admin/projects/{project_id}/items"): ADMIN,
    ("GET", "/admin/projects/{project_id}/items/{item_id}"): ADMIN,
    ("GET", "/admin/projects/{project_id}/judgments"): ADMIN,
    ("GET", "/admin/projects/{project_id}/export/judgments.jsonl"): ADMIN,
    ("GET", "/admin/projects/{project_id}/export/{fmt}"): ADMIN,
    ("GET", "/admin/projects/{project_id}/import"): ADMIN,
    ("POST", "/admin/projects/{project_id}/import"): ADMIN,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{username}/disable"): ADMIN,
    ("POST", "/admin/users/{username}/enable"): ADMIN,
    ("POST", "/admin/users/{username}/token"): ADMIN,
    ("POST", "/api/v1/tokens"): PUBLIC,
    ("GET", "/api/v1/me"): USER,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{username}/disable"): ADMIN,
    ("POST", "/api/v1/users/{username}/enable"): ADMIN,
    ("GET", "/api/v1/projects"): USER,
    ("POST", "/api/v1/projects"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}"): MEMBER,
    ("GET", "/api/v1/projects/{project_id}/members"): ADMIN,
    ("POST", "/api/v1/projects/{project_id}/members"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/guidelines"): MEMBER,
    ("POST", "/api/v1/projects/{project_id}/guidelines"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/progress"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/items"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/items/{item_id}/assignments"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/judgments"): MEMBER,
    ("POST", "/api/v1/projects/{project_id}/feedback"): MEMBER,
    ("POST", "/api/v1/projects/{project_id}/tasks/next"): MEMBER,
    ("GET", "/api/v1/tasks/{assignment_id}"): OWN_TASK,
    ("POST", "/api/v1/tasks/{assignment_id}/judgments"): OWN_TASK,
    ("POST", "/api/v1/tasks/{assignment_id}/skip"): OWN_TASK,
    # model endpoints and live config (issue 12)
    ("POST", "/admin/projects/{project_id}/endpoints"): ADMIN,
    ("GET", "/admin/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}/disable"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}/enable"): ADMIN,
    ("POST", "/admin/projects/{project_id}/endpoints/{name}/remove"): ADMIN,
    ("POST", "/admin/projects/{project_id}/live"): ADMIN,
    ("POST", "/api/v1/projects/{project_id}/endpoints"): ADMIN,  # adds it again after /remove
    ("GET", "/api/v1/projects/{project_id}/endpoints"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("PATCH", "/api/v1/projects/{project_id}/endpoints/{name}"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/live"): ADMIN,
    ("PUT", "/api/v1/projects/{project_id}/live"): ADMIN,
    ("DELETE", "/api/v1/projects/{project_id}/endpoints/{name}"): ADMIN,
    # the arena leaderboard: members only when the live config allows it (set in `walk`)
    ("GET", "/projects/{project_id}/leaderboard"): MEMBER,
    ("GET", "/api/v1/projects/{project_id}/leaderboard"): MEMBER,
    ("GET", "/api/v1/projects/{project_id}/battles"): ADMIN,
    # live pages: start (members), and a conversation (its annotator's, like a task; `walk`)
    ("POST", "/api/v1/projects/{project_id}/conversations"): MEMBER,
    ("GET", "/api/v1/projects/{project_id}/conversations"): MEMBER,
    ("GET", "/api/v1/conversations/{conversation_id}"): OWN_TASK,
    ("GET", "/api/v1/conversations/{conversation_id}/events"): OWN_TASK,
    ("POST", "/api/v1/conversations/{conversation_id}/turns/{turn}/submit"): OWN_TASK,
    ("POST", "/api/v1/conversations/{conversation_id}/turns/{turn}/regenerate"): OWN_TASK,
    ("POST", "/api/v1/conversations/{conversation_id}/candidates/{slot}/retry"): OWN_TASK,
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): OWN_TASK,
    ("POST", "/api/v1/conversations/{conversation_id}/vote"): OWN_TASK,
    ("POST", "/api/v1/conversations/{conversation_id}/reveal"): OWN_TASK,
    ("POST", "/api/v1/conversations/{conversation_id}/finish"): OWN_TASK,
    ("GET", "/projects/{project_id}/live"): MEMBER,
    ("POST", "/projects/{project_id}/live"): MEMBER,
    ("GET", "/live/{conversation_id}"): OWN_TASK,
    ("GET", "/live/{conversation_id}/current"): OWN_TASK,
    ("POST", "/live/{conversation_id}/turns/{turn}/submit"): OWN_TASK,
    ("POST", "/live/{conversation_id}/turns/{turn}/regenerate"): OWN_TASK,
    ("POST", "/live/{conversation_id}/candidates/{slot}/retry"): OWN_TASK,
    ("POST", "/live/{conversation_id}/messages"): OWN_TASK,
    ("POST", "/live/{conversation_id}/vote"): OWN_TASK,
    ("POST", "/live/{conversation_id}/finish"): OWN_TASK,
    # sessions, tokens, password, audit log (issue 16); a session or token id is the owner's
    ("GET", "/account"): USER,
    ("POST", "/account/password"): USER,
    ("POST", "/account/sessions/{session_id}/revoke"): OWN_TASK,
    ("POST", "/account/tokens"): USER,
    ("POST", "/account/tokens/{token_id}/revoke"): OWN_TASK,
    ("GET", "/admin/audit-log"): ADMIN,
    ("POST", "/api/v1/me/password"): USER,
    ("GET", "/api/v1/me/sessions"): USER,
    ("DELETE", "/api/v1/me/sessions/{session_id}"): OWN_TASK,
    ("GET", "/api/v1/me/tokens"): USER,
    ("DELETE", "/api/v1/me/tokens/{token_id}"): OWN_TASK,
    ("GET", "/api/v1/users/{username}/tokens"): ADMIN,
    ("POST", "/api/v1/users/{username}/tokens"): ADMIN,
    ("GET", "/api/v1/audit-log"): ADMIN,
    # gold items (issue 13)
    ("GET", "/api/v1/projects/{project_id}/gold"): ADMIN,
    ("POST", "/api/v1/projects/{project_id}/gold"): ADMIN,
    ("POST", "/api/v1/projects/{project_id}/gold/file"): ADMIN,
    ("DELETE", "/api/v1/projects/{project_id}/gold/items/{item_id}"): ADMIN,
    ("GET", "/api/v1/projects/{project_id}/gold/accuracy"): ADMIN,
    ("PUT", "/api/v1/projects/{project_id}/gold/threshold"): ADMIN,
    ("DELETE", "/api/v1/projects/{project_id}/gold/threshold"): ADMIN,
    ("POST", "/admin/projects/{project_id}/items/{item_id}/gold"): ADMIN,
    ("POST", "/admin/projects/{project_id}/items/{item_id}/gold/clear"): ADMIN,
    ("POST", "/admin/projects/{project_id}/gold/upload"): ADMIN,
    ("POST", "/admin/projects/{project_id}/gold/threshold"): ADMIN,
}


def _walk(routes: list, prefix: str = ""):  # type: ignore[no-untyped-def]
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps includes nested
        if inner is not None:
            yield from _walk(inner.routes, prefix + route.include_context.prefix)
        else:
            yield route, prefix + getattr(route, "path", "")


def _app_routes(client: TestClient) -> set[tuple[str, str]]:
    out = set()
    for route, path in _walk(client.app.routes):  # type: ignore[attr-defined]
        if path.startswith(("/static", "/docs", "/api/v1/openapi.json")):
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                out.add((method, path))
    return out


def test_route_table_lists_every_route(client: TestClient) -> None:
    assert _app_routes(client) == set(ROUTES)


# well-formed bodies, so that a refusal comes from access rules and not from validation
BODIES = {
    "/api/v1/tasks/{assignment_id}/judgments": {"submission_id": "walk-submission",
                                                "choice": "1"},
    "/api/v1/tasks/{assignment_id}/skip": {"reason": "walking routes"},
    "/api/v1/projects/{project_id}/members": {"username": "bob"},
    "/api/v1/projects/{project_id}/guidelines": {"text": "new rules"},
    "/api/v1/projects": {"name": "Walked project"},
    "/api/v1/users": {"username": "walker", "password": "walker-pass"},
    "/api/v1/projects/{project_id}/feedback": {"events": [
        {"event_id": "walk", "kind": "thumbs", "messages": [{"role": "user", "content": "Hi"}],
         "response": "Hello.", "label": True}]},
    "/api/v1/projects/{project_id}/conversations": {"mode": "chat",
                                                    "message": "walking the routes"},
    "/api/v1/conversations/{conversation_id}/turns/{turn}/submit": {
        "judgment": {"submission_id": "walk-live-submission", "choice": "1"}, "done": True},
    "/api/v1/conversations/{conversation_id}/messages": {"message": "and then?"},
    "/api/v1/conversations/{conversation_id}/vote": {"submission_id": "walk-vote-0001",
                                                     "outcome": "a"},
    # a wrong current password: refused as a field (422), not as an access rule
    "/api/v1/me/password": {"current_password": "not-the-password",
                            "new_password": "walked-pass-1"},
    "/api/v1/users/{username}/tokens": {"scopes": ["annotate"]},
    "/api/v1/projects/{project_id}/endpoints": {"name": "walked",
                                                "base_url": "http://127.0.0.1:9/v1",
                                                "model": "m"},
}


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(client: TestClient, method: str, template: str, values: dict[str, str],
          csrf: str | None, headers: dict[str, str] | None = None):
    headers = dict(headers or {})
    path = _fill(template, values)
    if method == "GET" and path.endswith("/events"):
        # a live event stream never ends by itself: read its status line, then hang up
        with client.stream("GET", path, headers=headers, follow_redirects=False) as r:
            if r.status_code != 200:
                r.read()  # a refusal is a short JSON body
            return r
    if method == "GET":
        return client.get(path, headers=headers, follow_redirects=False)
    if path.startswith("/api/"):
        if csrf:
            headers["X-CSRF-Token"] = csrf
        return client.request(method, path, json=BODIES.get(template, {}), headers=headers,
                              follow_redirects=False)
    return client.post(path, data={"csrf_token": csrf or ""}, headers=headers,
                       follow_redirects=False)


def _denied(status: int, api: bool) -> str | None:
    if status == 401 or (not api and status == 303):
        return "nobody"
    return {403: "forbidden", 404: "not_found"}.get(status)


@pytest.fixture
def walk(seeded: Seeded):
    # alice holds a task; its id is what OWN_TASK routes get
    with seeded.db.write() as s:
        project = collect.get_project(s, seeded.project_id)
        task = collect.next_task(s, project, "human:alice")
    values = {"project_id": seeded.project_id, "assignment_id": task.assignment.assignment_id,
              "item_id": seeded.item_ids[0], "username": "bob", "fmt": "pairs.jsonl",
              "name": "walked"}
    with seeded.db.transaction() as conn:
        collect.add_endpoint(conn, seeded.project_id, collect.EndpointCreate(
            name="walked", base_url="http://127.0.0.1:9/v1", model="m"))
        collect.set_live_config(conn, seeded.project_id,
                                collect.LiveConfig(leaderboard_for_annotators=True))
        # alice's live chat: its id is what the conversation routes get
        collect.add_endpoint(conn, seeded.project_id, collect.EndpointCreate(
            name="walked-2", base_url="http://127.0.0.1:9/v1", model="m2"))
        alice = collect.get_user_by_username(conn, "alice")
        assert alice is not None
        from preflab.collect import live

        view = live.start_conversation(conn, seeded.project_id, alice, mode="chat",
                                       message="walking the routes")
    values.update(conversation_id=view.conversation.conversation_id, turn="0", slot="0")
    return _FreshIds(seeded.db, values)


class _FreshIds(dict[str, str]):
    """Path values; ``session_id`` and ``token_id`` are a new one of alice's at each use
    (a route that ends one must find one)."""

    def __init__(self, db: Database, values: dict[str, str]) -> None:
        super().__init__(values)
        self.db = db

    def __getitem__(self, key: str) -> str:
        if key not in ("session_id", "token_id"):
            return super().__getitem__(key)
        with self.db.transaction() as conn:
            if key == "session_id":
                return store.create_session(conn, "human:alice", f"walk-{uuid.uuid4()}",
                                            client="walk").session_id
            return store.create_api_token(conn, "human:alice", "walk",
                                          f"walk-{uuid.uuid4()}").token_id


def test_nobody_gets_only_public_routes(seeded: Seeded, walk: dict[str, str]) -> None:
    with make_client(seeded) as c:
        for (method, path), access in ROUTES.items():
            if access == PUBLIC:
                continue
            r = _call(c, method, path, walk, None)
            api = path.startswith("/api/")
            assert _denied(r.status_code, api) == "nobody", (method, path, r.status_code)
            if api:
                assert r.json()["error"]["code"] == "unauthorized"
            else:
                assert r.headers["location"].startswith("/login")


def test_outsider_sees_no_project_no_task_no_admin(seeded: Seeded, walk: dict[str, str]) -> None:
    with make_client(seeded) as c:
        csrf = login(c, "mallory")
        for (method, path), access in ROUTES.items():
            if access in (PUBLIC, USER):
                continue
            r = _call(c, method, path, walk, csrf)
            want = {MEMBER: 404, OWN_TASK: 404, ADMIN: 403}[access]
            assert r.status_code == want, (method, path, r.status_code, r.text[:200])
        assert c.get("/api/v1/projects").json() == []


def test_member_annotator_reaches_own_work_but_no_admin(seeded: Seeded,
                                                        walk: dict[str, str]) -> None:
    with make_client(seeded) as c:
        csrf = login(c, "alice")
        for (method, path), access in ROUTES.items():
            if access == PUBLIC or path == "/logout":
                continue
            r = _call(c, method, path, walk, csrf)
            if access == ADMIN:
                assert r.status_code == 403, (method, path, r.status_code)
            else:
                assert r.status_code not in (401, 403, 404), (method, path, r.status_code,
                                                             r.text[:300])


def test_bob_cannot_open_alices_task(seeded: Seeded, walk: dict[str, str]) -> None:
    with make_client(seeded) as c:
        csrf = login(c, "bob")
        for (method, path), access in ROUTES.items():
            if access == OWN_TASK:
                r = _call(c, method, path, walk, csrf)
                assert r.status_code == 404, (method, path, r.status_code)


def test_admin_reaches_every_admin_route(seeded: Seeded, walk: dict[str, str]) -> None:
    with make_client(seeded) as c:
        csrf = login(c, "admin")
        for (method, path), access in ROUTES.items():
            if access in (PUBLIC, OWN_TASK) or path == "/logout":
                continue
            r = _call(c, method, path, walk, csrf)
            assert r.status_code not in (401, 403, 404), (method, path, r.status_code,
                                                         r.text[:300])


def test_annotator_never_sees_other_judgments(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        alice, bob = api_token(c, "alice"), api_token(c, "bob")
        for headers in (alice, bob):
            task = c.post(f"/api/v1/projects/{seeded.project_id}/tasks/next",
                          headers=headers).json()["task"]
            r = c.post(f"/api/v1/tasks/{task['assignment_id']}/judgments", headers=headers,
                       json={"submission_id": f"sub-{headers['Authorization'][-8:]}",
                             "choice": "1"})
            assert r.status_code == 201, r.text
        page = c.get(f"/api/v1/projects/{seeded.project_id}/judgments",
                     params={"judge_id": "human:bob"}, headers=alice).json()
        assert [j["judge_id"] for j in page["judgments"]] == ["human:alice"]
        assert page["total"] == 1


def test_csrf_is_required_on_cookie_writes(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        csrf = login(c, "alice")
        url = f"/api/v1/projects/{seeded.project_id}/tasks/next"
        assert c.post(url).status_code == 403
        assert c.post(url, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert c.post(url, headers={"X-CSRF-Token": csrf}).status_code == 200
        r = c.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
        assert r.status_code == 403
        assert c.get("/api/v1/me").status_code == 200  # still logged in


def test_scope_table_lists_every_route(client: TestClient) -> None:
    assert _app_routes(client) == set(ROUTE_SCOPES)


def _scope_refused(r) -> bool:  # type: ignore[no-untyped-def]
    return r.status_code == 403 and "needs one of" in r.text


# alice (annotator) can hold annotate and feedback; admin every scope
SCOPED_TOKENS = [("alice", "annotate"), ("alice", "feedback"), ("admin", "export"),
                 ("admin", "admin"), ("admin", "feedback")]


@pytest.mark.parametrize(("owner", "scope"), SCOPED_TOKENS)
def test_token_scopes_on_every_route(seeded: Seeded, walk: dict[str, str], owner: str,
                                     scope: str) -> None:
    """A token reaches a route iff it holds a scope the route accepts (then roles decide)."""
    with make_client(seeded) as c:
        headers = scoped_token(c, owner, [scope])
        wrong = []
        for (method, path), accepted in ROUTE_SCOPES.items():
            if ROUTES.get((method, path)) == PUBLIC or path == "/logout":
                continue
            r = _call(c, method, path, walk, None, headers)
            if _scope_refused(r) != (scope not in accepted):
                wrong.append((method, path, r.status_code, r.text[:160]))
        assert wrong == []
        if scope != "admin":
            # the refusal names the token and what the route needs, in the one error shape
            r = c.get("/api/v1/users", headers=headers)
            err = r.json()["error"]
            assert (r.status_code, err["code"], err["field"]) == (403, "forbidden",
                                                                  "authorization")
            assert "needs one of admin" in err["message"]
