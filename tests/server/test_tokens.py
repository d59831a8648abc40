"""API tokens with scopes, a project and an expiry; revocation; the audit log; the CLI."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from preflab import collect
from preflab.cli.main import app as cli_app
from preflab.collect import ProjectCreate
from preflab.server.auth import hash_token
from preflab.store.engine import make_engine
from preflab.store.migrate import downgrade, upgrade_to_head

from .conftest import PASSWORDS, Seeded, api_token, login, scoped_token, seed_project

FEEDBACK = {"events": [{"event_id": "e-1", "kind": "thumbs",
                        "messages": [{"role": "user", "content": "Hi"}],
                        "response": "Hello.", "label": True}]}


def _token(c: TestClient, username: str, **body: object):  # type: ignore[no-untyped-def]
    return c.post("/api/v1/tokens", json={"username": username,
                                          "password": PASSWORDS[username], **body})


def test_annotator_token_cannot_post_production_feedback(client: TestClient,
                                                        seeded: Seeded) -> None:
    r = _token(client, "bob")
    assert r.status_code == 201
    assert r.json()["listing"]["scopes"] == ["annotate"]  # the default for annotators
    bob = {"Authorization": f"Bearer {r.json()['token']}"}
    url = f"/api/v1/projects/{seeded.project_id}/feedback"
    r = client.post(url, headers=bob, json=FEEDBACK)
    assert r.status_code == 403 and r.json()["error"]["field"] == "authorization"
    # nor can the annotator give their own token the feedback scope
    r = _token(client, "bob", scopes=["feedback"])
    assert r.status_code == 403 and r.json()["error"]["field"] == "scopes"
    # an admin can, for the service that posts feedback
    r = client.post(url, headers=scoped_token(client, "bob", ["feedback"]), json=FEEDBACK)
    assert r.status_code == 200, r.text
    # and a feedback token does not annotate
    r = client.post(f"/api/v1/projects/{seeded.project_id}/tasks/next",
                    headers=scoped_token(client, "bob", ["feedback"]))
    assert r.status_code == 403


def test_scopes_a_role_cannot_hold_are_refused(client: TestClient) -> None:
    admin = api_token(client, "admin")
    r = client.post("/api/v1/users/alice/tokens", headers=admin, json={"scopes": ["admin"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "scopes"
    r = client.post("/api/v1/users/alice/tokens", headers=admin, json={"scopes": ["root"]})
    assert r.status_code == 422 and "scopes" in r.json()["error"]["field"]


def test_export_token_reads_but_does_not_write(client: TestClient, seeded: Seeded) -> None:
    export = scoped_token(client, "admin", ["export"])
    pid = seeded.project_id
    assert client.get(f"/api/v1/projects/{pid}/progress", headers=export).status_code == 200
    assert client.get(f"/admin/projects/{pid}/export/pairs.jsonl",
                      headers=export).status_code == 200
    r = client.post(f"/api/v1/projects/{pid}/guidelines", headers=export, json={"text": "x"})
    assert r.status_code == 403
    assert client.get("/api/v1/users", headers=export).status_code == 403


def test_project_bound_token_stays_in_its_project(client: TestClient, seeded: Seeded) -> None:
    other = seed_project(seeded.db, ProjectCreate(name="Other", scale=5), ["alice"])
    bound = scoped_token(client, "alice", ["annotate"], project_id=seeded.project_id)
    r = client.post(f"/api/v1/projects/{seeded.project_id}/tasks/next", headers=bound)
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/projects/{other}/tasks/next", headers=bound)
    assert r.status_code == 403 and "only" in r.json()["error"]["message"]
    admin = api_token(client, "admin")
    r = client.post("/api/v1/users/alice/tokens", headers=admin,
                    json={"scopes": ["annotate"], "project_id": "no-such-project"})
    assert r.status_code == 404 and r.json()["error"]["field"] == "project_id"


def test_expired_token_is_refused(client: TestClient, seeded: Seeded) -> None:
    r = _token(client, "alice", expires_in_days=1)
    token = r.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert r.json()["listing"]["expires_at"] is not None
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with seeded.db.transaction() as conn:
        conn.execute(text("UPDATE api_tokens SET expires_at = created_at WHERE token_hash = :h"),
                     {"h": hash_token(token)})
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_tokens_are_listed_without_secrets_and_revoked(client: TestClient) -> None:
    r = _token(client, "alice", name="laptop")
    secret, token_id = r.json()["token"], r.json()["listing"]["token_id"]
    headers = {"Authorization": f"Bearer {secret}"}
    listed = client.get("/api/v1/me/tokens", headers=headers)
    assert [t["name"] for t in listed.json()] == ["laptop"]
    assert secret not in listed.text and hash_token(secret) not in listed.text
    bob = api_token(client, "bob")
    assert client.delete(f"/api/v1/me/tokens/{token_id}", headers=bob).status_code == 404
    assert client.delete(f"/api/v1/me/tokens/{token_id}", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    admin = api_token(client, "admin")
    listed = client.get("/api/v1/users/alice/tokens", headers=admin).json()
    assert [(t["token_id"], t["revoked"]) for t in listed] == [(token_id, True)]


def test_account_page_creates_and_revokes_tokens(client: TestClient) -> None:
    from .conftest import csrf_of

    login(client, "alice")
    page = client.get("/account")
    assert 'value="annotate"' in page.text and 'value="feedback"' not in page.text
    r = client.post("/account/tokens", data={"csrf_token": csrf_of(page.text),
                                             "name": "page token", "scopes": "annotate"})
    assert r.status_code == 200 and "shown once" in r.text
    secret = r.text.split("<code>")[1].split("</code>")[0]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}
                      ).status_code == 200
    r = client.post("/account/tokens", data={"csrf_token": csrf_of(page.text),
                                             "scopes": "feedback"})
    assert r.status_code == 403
    token_id = client.get("/api/v1/me/tokens").json()[0]["token_id"]
    r = client.post(f"/account/tokens/{token_id}/revoke",
                    data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}
                      ).status_code == 401


def test_audit_log_names_the_token_of_every_write(client: TestClient, seeded: Seeded) -> None:
    r = _token(client, "alice")
    alice, token_id = {"Authorization": f"Bearer {r.json()['token']}"}, r.json()["listing"][
        "token_id"]
    task = client.post(f"/api/v1/projects/{seeded.project_id}/tasks/next",
                       headers=alice).json()["task"]
    r = client.post(f"/api/v1/tasks/{task['assignment_id']}/judgments", headers=alice,
                    json={"submission_id": "audit-submission-1", "choice": "1"})
    assert r.status_code == 201, r.text
    client.get(f"/api/v1/tasks/{task['assignment_id']}", headers=alice)  # a read: no line
    admin = api_token(client, "admin")
    assert client.post("/api/v1/users/bob/disable", headers=admin).status_code == 200
    assert client.get("/api/v1/audit-log", headers=alice).status_code == 403
    log = client.get("/api/v1/audit-log", headers=admin).json()
    mine = [e for e in log if e["token_id"] == token_id]
    assert [e["action"] for e in reversed(mine)] == [
        "token.create",
        "POST /api/v1/projects/{project_id}/tasks/next",
        "POST /api/v1/tasks/{assignment_id}/judgments",
    ]
    assert mine[0]["target"] == {"assignment_id": task["assignment_id"]}
    assert all(e["actor"] == "human:alice" for e in mine)
    assert log[0]["action"] == "POST /api/v1/users/{username}/disable"
    assert log[0]["actor"] == "human:admin" and log[0]["target"] == {"username": "bob"}
    # the admin page shows the same lines
    login(client, "admin")
    page = client.get("/admin/audit-log")
    assert page.status_code == 200 and token_id in page.text
    # last_used_at moves on use (at most once a minute)
    tokens = client.get("/api/v1/users/alice/tokens", headers=admin).json()
    assert next(t for t in tokens if t["token_id"] == token_id)["last_used_at"] is not None


runner = CliRunner()


def _cli(*args: str) -> str:
    result = runner.invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_creates_lists_and_revokes_tokens(client: TestClient, seeded: Seeded) -> None:
    out = json.loads(_cli("users", "tokens", "create", "bob", "--scope", "feedback",
                          "--scope", "annotate", "--project", seeded.project_id,
                          "--expires-in-days", "30", "--json", "--db", seeded.url))
    assert out["scopes"] == ["annotate", "feedback"] and out["project_id"] == seeded.project_id
    headers = {"Authorization": f"Bearer {out['token']}"}
    r = client.post(f"/api/v1/projects/{seeded.project_id}/feedback", headers=headers,
                    json=FEEDBACK)
    assert r.status_code == 200, r.text
    listed = json.loads(_cli("users", "tokens", "list", "bob", "--json", "--db", seeded.url))
    assert [t["token_id"] for t in listed] == [out["token_id"]]
    assert out["token"] not in json.dumps(listed)
    _cli("users", "tokens", "revoke", out["token_id"], "--db", seeded.url)
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    log = json.loads(_cli("users", "audit-log", "--token", out["token_id"], "--json",
                          "--db", seeded.url))
    assert [e["action"] for e in log] == ["token.revoke",
                                          "POST /api/v1/projects/{project_id}/feedback",
                                          "token.create"]
    assert log[-1]["actor"] == "cli"
    bad = runner.invoke(cli_app, ["users", "tokens", "create", "bob", "--scope", "admin",
                                  "--db", seeded.url])
    assert bad.exit_code == 1 and "cannot hold" in str(bad.exception)


def test_migration_gives_old_tokens_todays_scopes(db_url: str) -> None:
    """Tokens made before scopes existed keep what their owner's role could do."""
    engine = make_engine(db_url)
    upgrade_to_head(engine)
    downgrade(engine, "0003")
    with engine.begin() as conn:
        for name, role in (("old-admin", "admin"), ("old-annotator", "annotator")):
            conn.execute(text(
                "INSERT INTO users (user_id, username, password_hash, role, is_active, "
                "created_at) VALUES (:id, :name, 'x', :role, :yes, CURRENT_TIMESTAMP)"),
                {"id": f"human:{name}", "name": name, "role": role, "yes": True})
            conn.execute(text(
                "INSERT INTO api_tokens (token_hash, user_id, name, created_at, revoked) "
                "VALUES (:h, :id, 'old', CURRENT_TIMESTAMP, :no)"),
                {"h": hash_token(f"pfl_{name}"), "id": f"human:{name}", "no": False})
    upgrade_to_head(engine)
    with engine.connect() as conn:
        got = {u.username: t.scopes for u, t in (
            collect.accounts.get_token(conn, hash_token(f"pfl_{n}"))  # type: ignore[misc]
            for n in ("old-admin", "old-annotator"))}
        token_ids = conn.execute(text("SELECT token_id FROM api_tokens")).scalars().all()
    assert got == {"old-admin": ["admin", "annotate", "export", "feedback"],
                   "old-annotator": ["annotate", "feedback"]}
    assert all(t and len(t) == 16 for t in token_ids)
    downgrade(engine, "0003")  # and back down: the columns and tables go
    assert not {"sessions", "audit_log"} & set(inspect(engine).get_table_names())
    assert "scopes" not in {c["name"] for c in inspect(engine).get_columns("api_tokens")}
    upgrade_to_head(engine)
    engine.dispose()
