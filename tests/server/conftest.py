"""Fixtures of the web app tests: a seeded database, an in-process client, a real server.

``seeded`` fills a fresh database (SQLite or PostgreSQL, from ``db_url``) with one pairwise
project of small items, an admin, two member annotators and one outsider. ``live_server``
runs uvicorn in a subprocess on a free loopback port against that database.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.records import make_prompt_id, make_response_id
from preflab.server.app import create_app
from preflab.server.auth import hash_password
from preflab.server.db import Database
from preflab.settings import Settings
from preflab.store.tables import PromptRow, ResponseRow

PASSWORDS = {"admin": "admin-pass-1", "alice": "alice-pass-1", "bob": "bob-pass-12",
             "mallory": "mallory-pass"}


@functools.cache
def password_hash(name: str) -> str:
    """argon2 hash of a test user's password, computed once per run (hashing is slow on purpose)."""
    return hash_password(PASSWORDS[name])


@dataclass
class Seeded:
    db: Database
    url: str
    project_id: str
    item_ids: list[str]
    workspace: Path


def add_prompt_items(
    db: Database, project_id: str, texts: list[tuple[str, list[str]]], **item_opts: Any
) -> list[str]:
    """Store prompts with their responses and make one item of each; return the item ids."""
    specs = []
    with db.write() as s:
        for prompt, answers in texts:
            messages = [{"role": "user", "content": prompt}]
            pid = make_prompt_id(messages)
            s.merge(PromptRow(prompt_id=pid, messages=messages, source="test", tags=[]))
            rids = []
            for a in answers:
                rid = make_response_id(pid, a, "m")
                s.merge(ResponseRow(response_id=rid, prompt_id=pid, content=a, model="m",
                                    params={}, origin="model"))
                rids.append(rid)
            specs.append({"prompt_id": pid, "response_ids": rids, **item_opts})
        s.flush()
        collect.add_items(s, project_id, specs)
        from preflab.store.items import make_item_id

        return [make_item_id(project_id, sp["prompt_id"], sp["response_ids"]) for sp in specs]


def seed_project(db: Database, spec: ProjectCreate, members: list[str]) -> str:
    with db.write() as s:
        row = collect.create_project(s, spec)
        pid = row.project_id
        for name in members:
            user = collect.get_user_by_username(s, name)
            assert user is not None
            collect.add_member(s, pid, user.user_id)
    return pid


@pytest.fixture
def seeded(db_url: str, tmp_path: Path) -> Iterator[Seeded]:
    db = Database(db_url)
    with db.write() as s:
        for name in PASSWORDS:
            collect.create_user(s, name, password_hash(name),
                                role="admin" if name == "admin" else "annotator")
    pid = seed_project(db, ProjectCreate(name="Pairs", scale=5, overlap=2), ["alice", "bob"])
    items = add_prompt_items(
        db, pid, [(f"Question {i}?", [f"Answer A{i}", f"Answer B{i}"]) for i in range(6)],
        target=2,
    )
    with db.write() as s:
        collect.add_guideline_version(s, pid, "# Rules\n\nBe kind.", "admin")
    yield Seeded(db, db_url, pid, items, tmp_path)
    db.dispose()


def make_client(seeded: Seeded) -> TestClient:
    settings = Settings(workspace=seeded.workspace, database_url=seeded.url)
    return TestClient(create_app(settings, db=seeded.db))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token field on the page"
    return m.group(1)


def login(client: TestClient | httpx.Client, username: str) -> str:
    """Log in through the page form; return the session's CSRF token."""
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORDS[username],
                                    "csrf_token": csrf_of(page.text), "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/").text)


def api_token(client: TestClient | httpx.Client, username: str) -> dict[str, str]:
    r = client.post("/api/v1/tokens", json={"username": username,
                                            "password": PASSWORDS[username]})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def scoped_token(client: TestClient | httpx.Client, username: str, scopes: list[str],
                 **options: Any) -> dict[str, str]:
    """An API token for ``username`` with these scopes, issued by the admin (any grantable
    scope, e.g. ``feedback`` for an annotator); return its Authorization header."""
    admin = api_token(client, "admin")
    r = client.post(f"/api/v1/users/{username}/tokens", headers=admin,
                    json={"scopes": scopes, **options})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def client(seeded: Seeded) -> Iterator[TestClient]:
    with make_client(seeded) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    handle: Any = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_server(database_url: str, workspace: Path, extra_env: dict[str, str] | None = None
                 ) -> LiveServer:
    """Run ``uvicorn --factory preflab.server.app:create_app`` on a free loopback port."""
    port = free_port()
    env = dict(os.environ, PREFLAB_DATABASE_URL=database_url, PREFLAB_WORKSPACE=str(workspace),
               **(extra_env or {}))
    log = workspace / f"server-{port}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "preflab.server.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        env=env, stdout=handle, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            handle.close()
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url + "/login", timeout=1).status_code == 200:
                return LiveServer(url, proc, log, handle)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    handle.close()
    raise RuntimeError(f"server did not start:\n{log.read_text(errors='replace')}")


def stop_server(server: LiveServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
    if server.handle is not None:
        server.handle.close()


@pytest.fixture
def live_server(seeded: Seeded) -> Iterator[LiveServer]:
    server = start_server(seeded.url, seeded.workspace)
    yield server
    stop_server(server)
    print("---- server output (shown by pytest when the test failed) ----\n" + server.output())
