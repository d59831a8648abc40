"""Production feedback API: thumbs, edits and regenerations become judgments, idempotently."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from preflab.collect import ProjectCreate
from preflab.derive import derive
from preflab.records import Judgment, table_to_records
from preflab.store.queries import count_rows, read_judgments, read_prompts, read_responses
from preflab.store.tables import Item

from .conftest import LiveServer, Seeded, api_token, make_client, scoped_token, seed_project

CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"}]


def _events() -> list[dict[str, Any]]:
    return [
        {"event_id": "ev-1", "kind": "thumbs", "messages": CHAT, "response": "5.",
         "model": "chat-7b", "model_revision": "ckpt-0420", "label": False,
         "reasons": ["wrong"], "occurred_at": "2026-11-20T10:00:00Z"},
        {"event_id": "ev-2", "kind": "edit", "messages": CHAT, "response": "5.",
         "model": "chat-7b", "model_revision": "ckpt-0420", "edited": "4."},
        {"event_id": "ev-3", "kind": "regenerate", "messages": CHAT, "response": "5.",
         "model": "chat-7b", "model_revision": "ckpt-0420", "alternatives": ["Four.", "4"],
         "kept": 2, "comment": "third try"},
        {"event_id": "ev-4", "kind": "edit", "messages": CHAT, "response": "5.",
         "edited": "  5. "},
    ]


@pytest.fixture
def feedback_project(seeded: Seeded) -> str:
    return seed_project(seeded.db, ProjectCreate(name="Production"), ["bob"])


@pytest.fixture
def client(seeded: Seeded) -> Any:
    with make_client(seeded) as c:
        yield c


def _post(c: TestClient, headers: dict[str, str], pid: str, events: list[dict[str, Any]],
          source: str = "chat-web") -> httpx.Response:
    return c.post(f"/api/v1/projects/{pid}/feedback", json={"source": source, "events": events},
                  headers=headers)


def test_events_become_judgments_that_derive_into_training_data(
    client: TestClient, seeded: Seeded, feedback_project: str
) -> None:
    r = _post(client, scoped_token(client, "bob", ["feedback"]), feedback_project, _events())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (3, 0, 1) == (body["stored"], body["duplicates"], body["no_preference"])
    assert ["stored", "stored", "stored", "no_preference"] == [e["status"] for e in body["events"]]

    engine = seeded.db.engine
    judgments = {j.judgment_id: j for j in table_to_records(read_judgments(engine), Judgment)
                 if j.project_id == feedback_project}
    assert {e["judgment_id"] for e in body["events"][:3]} == set(judgments)
    responses = {r["response_id"]: r for r in read_responses(engine).to_pylist()}
    thumbs, edit, regen = (judgments[e["judgment_id"]] for e in body["events"][:3])

    assert thumbs.binary is not None and not thumbs.binary.label
    assert ("wrong",) == thumbs.binary.reasons
    shown = responses[thumbs.binary.response_id]
    assert ("5.", "chat-7b", "ckpt-0420", "model") == (
        shown["content"], shown["model"], shown["model_revision"], shown["origin"])
    assert "feedback:chat-web" == thumbs.judge_id
    assert thumbs.submitted_at is not None and thumbs.submitted_at.day == 20

    assert edit.edit is not None
    assert ("4.", "edit") == (responses[edit.edit.edited_id]["content"],
                              responses[edit.edit.edited_id]["origin"])

    assert regen.ranking is not None and ("implicit",) == regen.flags
    assert ["4"] == [responses[r]["content"] for r in regen.ranking[0]]
    assert {"5.", "Four."} == {responses[r]["content"] for r in regen.ranking[1]}
    assert "third try" == regen.comment

    derivation = derive(read_prompts(engine), read_responses(engine), read_judgments(engine))
    pairs = [p for p in derivation.pairs.to_pylist() if set(p["judgment_ids"]) <= set(judgments)]
    assert {("4.", "5."), ("4", "5."), ("4", "Four.")} == {
        (p["chosen"], p["rejected"]) for p in pairs}
    unpaired = [u for u in derivation.unpaired.to_pylist()
                if set(u["judgment_ids"]) <= set(judgments)]
    assert [("5.", False)] == [(u["completion"], u["label"]) for u in unpaired]


def test_sending_a_batch_again_stores_nothing_new(
    client: TestClient, seeded: Seeded, feedback_project: str
) -> None:
    headers = scoped_token(client, "bob", ["feedback"])
    first = _post(client, headers, feedback_project, _events()).json()
    before = count_rows(seeded.db.engine)
    again = _post(client, headers, feedback_project, _events()).json()
    assert (0, 3, 1) == (again["stored"], again["duplicates"], again["no_preference"])
    assert [e["judgment_id"] for e in first["events"]] == [
        e["judgment_id"] for e in again["events"]]
    assert before == count_rows(seeded.db.engine)
    # the same event id from another app is another event
    other = _post(client, headers, feedback_project, _events()[:1], source="mobile").json()
    assert 1 == other["stored"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kept": 3}, "events[1]"),
        ({"alternatives": ["Four.", "  "]}, "events[1].alternatives[1]"),
        ({"messages": [{"role": "assistant", "content": "Hi"}]}, "events[1].messages"),
        ({"kind": "like"}, "events[1].kind"),
    ],
)
def test_a_bad_event_names_its_field_and_nothing_is_stored(
    client: TestClient, seeded: Seeded, feedback_project: str, change: dict[str, Any],
    field: str
) -> None:
    events = [_events()[0], {**_events()[2], **change}]
    before = count_rows(seeded.db.engine)
    r = _post(client, scoped_token(client, "bob", ["feedback"]), feedback_project, events)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].removeprefix("body.").startswith(field), r.text
    assert before == count_rows(seeded.db.engine)


def test_two_events_with_one_id_in_a_batch_are_refused(
    client: TestClient, feedback_project: str
) -> None:
    r = _post(client, scoped_token(client, "bob", ["feedback"]), feedback_project, [_events()[0]] * 2)
    assert r.status_code == 422
    assert "events[1].event_id" == r.json()["error"]["field"]


def test_only_members_may_report(client: TestClient, feedback_project: str) -> None:
    r = _post(client, scoped_token(client, "alice", ["feedback"]), feedback_project, _events())
    assert r.status_code == 404  # alice is not a member of it: the project does not exist for her
    r = client.post(f"/api/v1/projects/{feedback_project}/feedback", json={"events": _events()})
    assert r.status_code == 401


def test_concurrent_replays_store_each_event_once(
    live_server: LiveServer, seeded: Seeded, feedback_project: str
) -> None:
    with httpx.Client(base_url=live_server.url) as c:
        headers = scoped_token(c, "bob", ["feedback"])
    results: list[dict[str, Any]] = []

    def send() -> None:
        with httpx.Client(base_url=live_server.url, timeout=30) as c:
            r = c.post(f"/api/v1/projects/{feedback_project}/feedback",
                       json={"source": "chat-web", "events": _events()}, headers=headers)
            assert r.status_code == 200, r.text
            results.append(r.json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 4 == len(results)
    assert 3 == sum(r["stored"] for r in results)
    assert 9 == sum(r["duplicates"] for r in results)
    stored = [j for j in read_judgments(seeded.db.engine).to_pylist()
              if j["project_id"] == feedback_project]
    assert 3 == len(stored)


def test_hard_cases_are_queued_first_for_annotators(
    client: TestClient, seeded: Seeded, feedback_project: str
) -> None:
    from preflab.loop.hard_cases import queue_hard_cases

    bob = scoped_token(client, "bob", ["feedback"])
    events = _events() + [
        {"event_id": "ev-5", "kind": "thumbs", "messages": CHAT, "response": "It is 4.",
         "label": True, "occurred_at": "2026-11-21T10:00:00Z"},
        {"event_id": "ev-6", "kind": "thumbs", "messages": [{"role": "user", "content": "Hi"}],
         "response": "Go away.", "label": False, "occurred_at": "2026-11-22T10:00:00Z"},
    ]
    assert _post(client, bob, feedback_project, events).status_code == 200
    engine = seeded.db.engine
    result = queue_hard_cases(engine, feedback_project, seeded.project_id, limit=10)
    # the edit, the regeneration and the thumbs down of ev-1 (against ev-5's thumbs up);
    # ev-6 has no other answer to its prompt
    assert ({"edit": 1, "regenerate": 1, "thumbs_down": 1, "no_second_response": 1}, 3) == (
        result.counts, result.queued)
    responses = {r["response_id"]: r["content"] for r in read_responses(engine).to_pylist()}
    with engine.connect() as conn:
        rows = conn.execute(
            select(Item.item_id, Item.response_ids, Item.priority, Item.source)
            .where(Item.source.like("hard-case:%"))).all()
    pairs = {
        r.source.split(":")[1]: {responses[x] for x in r.response_ids} for r in rows
    }
    assert {"edit": {"5.", "4."}, "regenerate": {"5.", "4"},
            "thumbs_down": {"5.", "It is 4."}} == pairs
    assert {1} == {r.priority for r in rows}

    again = queue_hard_cases(engine, feedback_project, seeded.project_id, limit=10)
    assert (0, 3) == (again.queued, again.counts["already_queued"])
    only = queue_hard_cases(engine, feedback_project, seeded.project_id, kinds=["edit"],
                            since=datetime(2030, 1, 1))
    assert 0 == only.queued

    alice = api_token(client, "alice")  # a member of the annotation project
    r = client.post(f"/api/v1/projects/{seeded.project_id}/tasks/next", headers=alice)
    assert r.status_code == 200, r.text
    shown = {resp["content"] for resp in r.json()["task"]["responses"]}
    assert shown in list(pairs.values())  # a hard case is served before the other items


def test_hard_cases_need_existing_projects_and_known_kinds(
    seeded: Seeded, feedback_project: str
) -> None:
    from preflab.errors import NotFoundError, UsageError
    from preflab.loop.hard_cases import queue_hard_cases

    with pytest.raises(NotFoundError) as err:
        queue_hard_cases(seeded.db.engine, feedback_project, "nope")
    assert "target" == err.value.field
    with pytest.raises(UsageError) as err2:
        queue_hard_cases(seeded.db.engine, feedback_project, seeded.project_id, kinds=["likes"])
    assert "kinds" == err2.value.field


def test_hard_cases_command(client: TestClient, seeded: Seeded, feedback_project: str) -> None:
    import subprocess
    import sys

    assert _post(client, scoped_token(client, "bob", ["feedback"]), feedback_project, _events()).status_code == 200
    args = [sys.executable, "-m", "preflab.cli.main", "projects", "hard-cases", feedback_project,
            "--into", seeded.project_id, "--kind", "edit", "--db", seeded.url]
    proc = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert 0 == proc.returncode, proc.stderr
    assert {"edit": 1} == json.loads(proc.stdout)["counts"]
    proc = subprocess.run([*args, "--since", "last week"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert 2 == proc.returncode
    assert "--since takes an ISO 8601 time" in proc.stderr
