"""Every route of the JSON API answers a clean 4xx, never a 5xx, for any input its schema allows
or forbids, on SQLite and PostgreSQL alike.

Schemathesis reads the app's own OpenAPI document from a real uvicorn on loopback and, for every
operation, generates requests from the schema (positive: valid by the schema; negative: broken
on purpose) with an admin token: in the seeded project (its real id) for the project's routes,
with the ids it invents elsewhere. Checked for each answer: no 5xx; every 4xx carries the one error shape
``{"error": {"code", "message", "field"}}``; a 400/413/415/422 names the field or ``body``.
The example count is kept modest (``EXAMPLES`` per operation and mode) so each database takes
about a minute on a shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
# loaded at collection, not lazily by from_url() inside the test: pytest rewrites schemathesis
# (a pytest plugin) on import, and CPython 3.11.7's parser can fail that at the test's stack
# depth ("AST constructor recursion depth mismatch")
import schemathesis.specs.openapi.schemas  # noqa: F401
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from tests.conftest import _fresh_database
from tests.server.conftest import (
    PASSWORDS,
    LiveServer,
    add_prompt_items,
    password_hash,
    seed_project,
    start_server,
    stop_server,
)

from preflab import collect
from preflab.collect import ProjectCreate
from preflab.server.db import Database

EXAMPLES = 6
# a 4xx of these statuses is about the request's content: it must say which field (or body)
NAMES_A_FIELD = {400, 413, 415, 422}


@dataclass
class Target:
    server: LiveServer
    project_id: str

    def token(self) -> dict[str, str]:
        r = httpx.post(self.server.url + "/api/v1/tokens",
                       json={"username": "admin", "password": PASSWORDS["admin"]}, timeout=30)
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture(scope="module", params=[
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Target]:
    workspace = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    for url in _fresh_database(request.param == "sqlite", workspace / "preflab.sqlite"):
        db = Database(url)
        with db.write() as s:
            for name in PASSWORDS:
                collect.create_user(s, name, password_hash(name),
                                    role="admin" if name == "admin" else "annotator")
        pid = seed_project(db, ProjectCreate(name="Pairs", scale=5, overlap=2), ["alice", "bob"])
        add_prompt_items(db, pid, [(f"Question {i}?", [f"A{i}", f"B{i}"]) for i in range(4)],
                         target=2)
        db.dispose()
        server = start_server(url, Path(workspace))
        try:
            yield Target(server, pid)
        finally:
            stop_server(server)
            print("---- server output ----\n" + server.output())


def _problem(response: Any) -> str | None:
    """Return what is wrong with one answer, or None when it is clean."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if status < 400:
        return None
    try:
        error = response.json()["error"]
        code, message, field = error["code"], error["message"], error["field"]
    except (ValueError, KeyError, TypeError):
        return f"{status} without the error shape: {response.text[:300]}"
    if not (isinstance(code, str) and code and isinstance(message, str) and message):
        return f"{status} with an empty code or message: {error}"
    if status in NAMES_A_FIELD and not (isinstance(field, str) and field):
        return f"{status} naming no field: {error}"
    return None


def _fuzz(operation: Any, auth: dict[str, str], mode: GenerationMode,
          path_parameters: dict[str, str] | None) -> list[str] | None:
    """Return the unclean answers to one operation's generated requests (None: no request can
    be generated in this mode, e.g. negative data for a route without parameters)."""
    found: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        response = case.call(headers=auth, timeout=30)
        if (problem := _problem(response)) is not None and len(found) < 3:
            found.append(f"{case.method} {case.formatted_path} {problem}\n  "
                         f"query={case.query} body={str(case.body)[:200]}")

    try:
        run()
    except Unsatisfiable:
        return None
    return found


@pytest.mark.slow
def test_every_route_answers_a_clean_4xx(target: Target) -> None:
    schema = schemathesis.openapi.from_url(target.server.url + "/api/v1/openapi.json")
    auth = target.token()
    failures: list[str] = []
    operations = runs = 0
    seconds: dict[str, float] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        if httpx.get(target.server.url + "/api/v1/me", headers=auth).status_code == 401:
            auth = target.token()  # an operation revoked the token (logout, disable): a new one
        names = {p.name for p in operation.path_parameters}
        real = {"project_id": target.project_id} if "project_id" in names else None
        started = time.perf_counter()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for params in (real,) if real else (None,):
                found = _fuzz(operation, auth, mode, params)
                runs += found is not None
                failures += found or []
        seconds[operation.label] = time.perf_counter() - started
    assert operations >= 30, f"only {operations} operations in the OpenAPI document"
    assert runs >= operations, f"{runs} runs over {operations} operations"
    slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:5]
    print(f"{operations} operations, {runs} runs of up to {EXAMPLES} requests; slowest: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in slowest))
    assert not failures, f"{len(failures)} unclean answers:\n" + "\n".join(failures)
