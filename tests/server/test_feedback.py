"""Production feedback API: thumbs, edits and regenerations become judgments, idempotently."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from preflab.derive import derive
from preflab.records import Judgment, table_to_records
from preflab.server.projects import ProjectCreate
from preflab.store.queries import count_rows, read_judgments, read_prompts, read_responses

from .conftest import LiveServer, Seeded, api_token, make_client, seed_project

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
    r = _post(client, api_token(client, "bob"), feedback_project, _events())
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
    headers = api_token(client, "bob")
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
    r = _post(client, api_token(client, "bob"), feedback_project, events)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].removeprefix("body.").startswith(field), r.text
    assert before == count_rows(seeded.db.engine)


def test_two_events_with_one_id_in_a_batch_are_refused(
    client: TestClient, feedback_project: str
) -> None:
    r = _post(client, api_token(client, "bob"), feedback_project, [_events()[0]] * 2)
    assert r.status_code == 422
    assert "events[1].event_id" == r.json()["error"]["field"]


def test_only_members_may_report(client: TestClient, feedback_project: str) -> None:
    r = _post(client, api_token(client, "alice"), feedback_project, _events())
    assert r.status_code == 404  # alice is not a member of it: the project does not exist for her
    r = client.post(f"/api/v1/projects/{feedback_project}/feedback", json={"events": _events()})
    assert r.status_code == 401


def test_concurrent_replays_store_each_event_once(
    live_server: LiveServer, seeded: Seeded, feedback_project: str
) -> None:
    with httpx.Client(base_url=live_server.url) as c:
        headers = api_token(c, "bob")
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
