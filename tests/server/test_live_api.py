"""The live API end to end: a real uvicorn app, the real fake OpenAI server, real SSE streams.

Each test starts the app as a subprocess (``start_server``) on a seeded database, attaches two
endpoints pointing at a loopback fake server (``tests/generate/fakeserver.py``) and talks to the
app over HTTP as a browser's EventSource would. Most tests run on SQLite; the main flow runs on
PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.generate.fakeserver import FakeServer, start_fake_server, stop_fake_server
from tests.server.conftest import (
    LiveServer,
    Seeded,
    api_token,
    free_port,
    start_server,
    stop_server,
)

from preflab.collect import EndpointCreate, LiveConfig, add_endpoint, set_live_config
from preflab.server.api.v1.schemas import ConversationPublic

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SENTINEL_KEY = "sk-live-SENTINEL-5b1e0c7d9a"

Event = tuple[str, dict[str, Any]]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_fake() -> Iterator[FakeServer]:
    """A fake server answering at once (echo replies naming the model and the last message)."""
    server = start_fake_server()
    yield server
    stop_fake_server(server)


@pytest.fixture(scope="module")
def paced_fake() -> Iterator[FakeServer]:
    """A fake server streaming 60 words at 30 words per second (two seconds per answer)."""
    server = start_fake_server(stream_tokens=60, token_rate=30)
    yield server
    stop_fake_server(server)


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[FakeServer]:
    """A fake server streaming 400 words at 40 words per second (ten seconds per answer)."""
    server = start_fake_server(stream_tokens=400, token_rate=40)
    yield server
    stop_fake_server(server)


@pytest.fixture
def slow(slow_fake: FakeServer) -> FakeServer:
    slow_fake.reset()
    return slow_fake


@pytest.fixture
def fake(fast_fake: FakeServer) -> FakeServer:
    fast_fake.reset()
    return fast_fake


@pytest.fixture
def paced(paced_fake: FakeServer) -> FakeServer:
    paced_fake.reset()
    return paced_fake


def setup_live(seeded: Seeded, base_url: str, *, concurrency: int = 4, timeout: float = 10.0,
               api_key_env: str | None = None, modes: tuple[str, ...] = ("chat", "arena")
               ) -> None:
    """Attach two endpoints of distinct models and a live config (k=2) to the project."""
    with seeded.db.transaction() as conn:
        for name, model in (("one", "model-one"), ("two", "model-two")):
            add_endpoint(conn, seeded.project_id, EndpointCreate(
                name=name, base_url=base_url, model=model, revision=f"{name}-r1",
                params={"temperature": 0.7}, concurrency=concurrency, timeout=timeout,
                api_key_env=api_key_env))
        set_live_config(conn, seeded.project_id, LiveConfig(modes=list(modes), k=2))


@pytest.fixture
def app_server(seeded: Seeded) -> Iterator[Callable[..., LiveServer]]:
    """Start the app (with extra environment) on demand; stop every one started."""
    started: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        server = start_server(seeded.url, seeded.workspace, env)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)
        print("---- server output ----\n" + server.output())


# -- an SSE client -----------------------------------------------------------------------------


class EventStream:
    """The events of one ``GET …/events`` connection, read as a browser's EventSource does."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str]) -> None:
        self._cm = client.stream("GET", url, headers=headers,
                                 timeout=httpx.Timeout(30.0, connect=5.0))
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()
        self.seen: list[Event] = []
        self.raw: list[str] = []

    def next(self, deadline: float | None = None) -> Event | None:
        """Return the next event (None when ``deadline`` passed first)."""
        name, data = "message", []
        for line in self._lines:
            self.raw.append(line)
            if deadline is not None and time.monotonic() > deadline:
                return None
            if line == "":
                if data:
                    event = (name, json.loads("\n".join(data)))
                    self.seen.append(event)
                    return event
                name = "message"
                continue
            if line.startswith(":"):
                continue  # keep-alive comment
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        raise EOFError(f"stream ended; events so far: {self.seen}")

    def until(self, done: Callable[[Event], bool], limit: int = 5000,
              seconds: float = 60.0) -> list[Event]:
        """Read events until ``done`` is true for one; return the events read (it included).

        Gives up after ``limit`` events or (checked at each event or keep-alive comment, which
        come every 15 s) ``seconds``.
        """
        out: list[Event] = []
        deadline = time.monotonic() + seconds
        while len(out) < limit and time.monotonic() < deadline:
            event = self.next(deadline)
            if event is None:
                break
            out.append(event)
            if done(event):
                return out
        raise AssertionError(f"no matching event: {out[-20:]}")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def is_ready(turn: int, rnd: int = 0) -> Callable[[Event], bool]:
    return lambda e: e[0] == "ready" and e[1]["turn"] == turn and e[1]["round"] == rnd


class Api:
    """An httpx client on the live app with one user's token."""

    def __init__(self, server: LiveServer, username: str) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.url, timeout=30)
        self.headers = api_token(self.client, username)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.headers)

    def start(self, project_id: str, message: str, mode: str = "chat") -> dict[str, Any]:
        r = self.post(f"/api/v1/projects/{project_id}/conversations",
                      {"mode": mode, "message": message})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def events(self, cid: str) -> EventStream:
        return EventStream(self.client, f"{self.server.url}/api/v1/conversations/{cid}/events",
                           self.headers)

    def close(self) -> None:
        self.client.close()


def wait_for(check: Callable[[], Any], what: str, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def candidate_rows(seeded: Seeded, cid: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from preflab.collect.core_tables import LIVE_CANDIDATES as C

    with seeded.db.connect() as conn:
        rows = conn.execute(select(C).where(C.c.conversation_id == cid)
                            .order_by(C.c.turn, C.c.round, C.c.slot, C.c.created_at))
        return [dict(r._mapping) for r in rows]


def sub_id() -> str:
    return f"sub-{uuid.uuid4().hex}"


# -- the main flow -----------------------------------------------------------------------------


def test_two_turn_chat_streams_judges_and_continues(seeded, app_server, paced) -> None:
    setup_live(seeded, paced.base_url)
    api = Api(app_server(), "alice")
    conv = api.start(seeded.project_id, "Tell me about owls")
    ConversationPublic.model_validate(conv)
    cid = conv["conversation_id"]
    assert [c["slot"] for c in conv["turns"][0]["candidates"]] == [0, 1]
    assert all("model" not in c for c in conv["turns"][0]["candidates"])  # chat hides models

    stream = api.events(cid)
    first = stream.next()
    assert first[0] == "snapshot"
    assert first[1]["conversation"]["conversation_id"] == cid
    events = stream.until(is_ready(0))
    deltas = [e for e in events if e[0] == "delta"]
    completes = {e[1]["slot"]: e[1] for e in events if e[0] == "complete"}
    assert {d[1]["slot"] for d in deltas} == {0, 1}, "both candidates streamed"
    assert set(completes) == {0, 1}
    assert all(c["html"].startswith("<p>") and c["tokens"] == 60 for c in completes.values())
    # replace-not-append: each delta of a slot holds the html so far, growing
    slot0 = [d[1]["tokens"] for d in deltas if d[1]["slot"] == 0]
    assert slot0 == sorted(slot0) and slot0[-1] <= 60
    ready = events[-1][1]
    assert ready["assignment_id"]

    view = api.get(f"/api/v1/conversations/{cid}").json()
    ConversationPublic.model_validate(view)
    chosen = next(c for c in view["turns"][0]["candidates"] if c["slot"] == 0)
    assert chosen["status"] == "complete" and chosen["html"]
    submit = {"judgment": {"submission_id": sub_id(), "choice": "1"},
              "next_message": "And about their eyes?"}
    r = api.post(f"/api/v1/conversations/{cid}/turns/0/submit", submit)
    assert r.status_code == 201, r.text
    again = api.post(f"/api/v1/conversations/{cid}/turns/0/submit", submit)
    assert again.status_code == 200, again.text
    assert again.json()["turns"][0]["judgment_id"] == r.json()["turns"][0]["judgment_id"]

    # the same event stream carries turn 2 (turn index 1)
    events = stream.until(is_ready(1))
    assert {e[1]["slot"] for e in events if e[0] == "complete" and e[1]["turn"] == 1} == {0, 1}
    stream.close()
    view = api.get(f"/api/v1/conversations/{cid}").json()
    messages = view["turns"][1]["messages"]
    assert messages[-1] == {"role": "user", "content": "And about their eyes?"}
    assert messages[-2] == {"role": "assistant", "content": chosen["text"]}
    assert paced.total_calls() == 4  # two candidates per turn, none paid for twice
    api.close()


# -- reload, grace, shutdown --------------------------------------------------------------------


@SQLITE_ONLY
def test_reconnect_mid_stream_resumes_without_a_second_call(seeded, app_server, paced) -> None:
    setup_live(seeded, paced.base_url)
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "Count some sheep")["conversation_id"]
    stream = api.events(cid)
    assert stream.next()[0] == "snapshot"
    seen = stream.until(lambda e: e[0] == "delta" and e[1]["tokens"] >= 5)
    before = max(e[1]["tokens"] for e in seen if e[0] == "delta")
    stream.close()  # the page is reloaded

    stream = api.events(cid)
    snapshot = stream.next()
    assert snapshot[0] == "snapshot"
    snap_cands = snapshot[1]["conversation"]["turns"][0]["candidates"]
    assert {c["status"] for c in snap_cands} == {"streaming"}
    # the in-flight text comes at once, as html, at least as long as before the reload
    events = stream.until(lambda e: e[0] == "delta")
    assert events[-1][1]["tokens"] >= before
    events = stream.until(is_ready(0))
    assert {e[1]["slot"] for e in events if e[0] == "complete"} == {0, 1}
    stream.close()
    assert paced.total_calls() == 2
    assert set(paced.calls().values()) == {1}
    api.close()


@SQLITE_ONLY
def test_no_subscriber_past_the_grace_cancels_then_a_connection_regenerates(
        seeded, app_server, slow) -> None:
    setup_live(seeded, slow.base_url)
    api = Api(app_server(PREFLAB_LIVE_CANCEL_GRACE="1"), "alice")
    cid = api.start(seeded.project_id, "Write a long story")["conversation_id"]
    wait_for(lambda: slow.total_calls() == 2, "both requests upstream")
    # nobody follows the conversation: after the grace its generation is cancelled
    wait_for(lambda: {r["status"] for r in candidate_rows(seeded, cid)} == {"cancelled"},
             "candidates cancelled")
    rows = candidate_rows(seeded, cid)
    assert all(r["text"] is None for r in rows)
    assert wait_for(lambda: httpx.get(f"{slow.url}/_calls").json()["disconnects"] >= 2,
                    "upstream streams closed")
    assert slow.total_calls() == 2

    stream = api.events(cid)
    assert stream.next()[0] == "snapshot"
    stream.until(lambda e: e[0] == "delta")  # generated again
    statuses = {r["status"] for r in candidate_rows(seeded, cid)}
    assert statuses == {"streaming"}
    assert slow.total_calls() == 4
    stream.close()  # the page closes again: cancelled again after the grace
    wait_for(lambda: {r["status"] for r in candidate_rows(seeded, cid)} == {"cancelled"},
             "candidates cancelled after the stream closed")
    assert slow.total_calls() == 4
    api.close()


@SQLITE_ONLY
def test_shutdown_marks_streaming_candidates_cancelled(seeded, app_server, slow) -> None:
    setup_live(seeded, slow.base_url)
    server = app_server()
    api = Api(server, "alice")
    cid = api.start(seeded.project_id, "A story that will not end")["conversation_id"]
    stream = api.events(cid)
    stream.until(lambda e: e[0] == "delta")
    stream.close()
    api.close()
    stop_server(server)
    rows = candidate_rows(seeded, cid)
    assert {r["status"] for r in rows} == {"cancelled"}
    assert all(r["error"] == "the server stopped" for r in rows)


# -- faults ------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_rate_limited_then_success_says_retrying_then_completes(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url)
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "Hello [[fault:429:1]]")["conversation_id"]
    stream = api.events(cid)
    events = stream.until(is_ready(0))
    retrying = [e[1] for e in events if e[0] == "candidate" and e[1]["status"] == "retrying"]
    assert {r["slot"] for r in retrying} == {0, 1}
    assert all("429" in r["message"] and "retrying in" in r["message"] for r in retrying)
    assert {e[1]["slot"] for e in events if e[0] == "complete"} == {0, 1}
    stream.close()
    assert sorted(fake.calls().values()) == [2, 2]
    api.close()


@SQLITE_ONLY
def test_break_mid_stream_is_an_error_then_retry_completes(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url)
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "Please [[fault:break_after:1]] answer")["conversation_id"]
    stream = api.events(cid)
    errors = stream.until(lambda e: e[0] == "error")
    errors += stream.until(lambda e: e[0] == "error")
    failed = [e[1] for e in errors if e[0] == "error"]
    assert {f["slot"] for f in failed} == {0, 1}
    assert all(f["retryable"] is True and "mid-answer" in f["message"] for f in failed)
    assert not [e for e in errors if e[0] == "complete"]
    rows = candidate_rows(seeded, cid)
    assert {r["status"] for r in rows} == {"broken"}
    assert all(r["text"] is None and r["response_id"] is None for r in rows)

    for slot in (0, 1):
        r = api.post(f"/api/v1/conversations/{cid}/candidates/{slot}/retry")
        assert r.status_code == 200, r.text
    events = stream.until(is_ready(0))
    assert {e[1]["slot"] for e in events if e[0] == "complete"} == {0, 1}
    stream.close()
    view = api.get(f"/api/v1/conversations/{cid}").json()
    assert [c["status"] for c in view["turns"][0]["candidates"]] == ["complete", "complete"]
    assert {c["status"] for c in view["turns"][0]["history"]} == {"broken"}
    api.close()


@SQLITE_ONLY
def test_junk_chunk_mid_stream_breaks_and_junk_before_text_is_retried(
        seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url)
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "One [[fault:junk_chunk:1]]")["conversation_id"]
    stream = api.events(cid)
    events = stream.until(lambda e: e[0] == "error")
    assert "mid-answer" in events[-1][1]["message"]
    stream.close()

    cid = api.start(seeded.project_id, "Two [[fault:junk_chunk:1:0]]")["conversation_id"]
    stream = api.events(cid)
    events = stream.until(is_ready(0))
    assert [e for e in events if e[0] == "candidate" and e[1]["status"] == "retrying"]
    assert not [e for e in events if e[0] == "error"]
    stream.close()
    api.close()


@SQLITE_ONLY
def test_endpoint_down_gives_a_message_and_keeps_the_conversation(seeded, app_server) -> None:
    setup_live(seeded, f"http://127.0.0.1:{free_port()}/v1", timeout=2.0)  # nobody listens
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "Is anyone there?")["conversation_id"]
    stream = api.events(cid)
    events = stream.until(lambda e: e[0] == "error")
    events += stream.until(lambda e: e[0] == "error")
    errors = [e[1] for e in events if e[0] == "error"]
    assert {e["slot"] for e in errors} == {0, 1}
    assert all(e["retryable"] and e["message"] for e in errors)
    assert any("connect" in e["message"].lower() for e in errors), errors
    stream.close()
    view = api.get(f"/api/v1/conversations/{cid}").json()
    assert view["status"] == "open"
    assert view["turns"][0]["user_message"] == "Is anyone there?"
    assert [c["status"] for c in view["turns"][0]["candidates"]] == ["failed", "failed"]
    assert all(c["error"] for c in view["turns"][0]["candidates"])
    api.close()


# -- regenerate, arena, users ------------------------------------------------------------------


@SQLITE_ONLY
def test_regenerate_streams_a_new_round_and_keeps_the_old(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url)
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "Name a colour")["conversation_id"]
    stream = api.events(cid)
    first = stream.until(is_ready(0, 0))[-1][1]["assignment_id"]
    r = api.post(f"/api/v1/conversations/{cid}/turns/0/regenerate")
    assert r.status_code == 200, r.text
    assert r.json()["turns"][0]["round"] == 1
    events = stream.until(is_ready(0, 1))
    assert {(e[1]["round"], e[1]["slot"]) for e in events if e[0] == "complete"} == {
        (1, 0), (1, 1)}
    assert events[-1][1]["assignment_id"] not in (None, first)
    stream.close()
    view = api.get(f"/api/v1/conversations/{cid}").json()
    assert {c["status"] for c in view["turns"][0]["history"]} == {"regenerated"}
    assert [c["round"] for c in view["turns"][0]["candidates"]] == [1, 1]
    api.close()


@SQLITE_ONLY
def test_arena_battle_two_turns_vote_then_names(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url)
    api = Api(app_server(), "alice")
    conv = api.start(seeded.project_id, "Which is heavier?", mode="arena")
    cid = conv["conversation_id"]
    stream = api.events(cid)
    stream.until(is_ready(0))
    view = api.get(f"/api/v1/conversations/{cid}").json()
    assert view["reveal"] is None
    assert all("model" not in c for c in view["turns"][0]["candidates"])
    # (the fake server's echo answers name their model; the revision tags are nowhere)
    assert "one-r1" not in json.dumps(view) and "two-r1" not in json.dumps(view)

    r = api.post(f"/api/v1/conversations/{cid}/messages", {"message": "Why?"})
    assert r.status_code == 200, r.text
    stream.until(is_ready(1))
    stream.close()
    vote = {"submission_id": sub_id(), "outcome": "a"}
    r = api.post(f"/api/v1/conversations/{cid}/vote", vote)
    assert r.status_code == 201, r.text
    body = r.json()
    ConversationPublic.model_validate(body)
    assert body["status"] == "voted" and body["judgment_id"]
    assert {v["model"] for v in body["reveal"].values()} == {"model-one", "model-two"}
    again = api.post(f"/api/v1/conversations/{cid}/vote", vote)
    assert again.status_code == 200
    assert again.json()["judgment_id"] == body["judgment_id"]
    assert fake.total_calls() == 4
    api.close()


@SQLITE_ONLY
def test_arena_reveal_shows_names_without_voting(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url)
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "Hi there", mode="arena")["conversation_id"]
    stream = api.events(cid)
    stream.until(is_ready(0))
    stream.close()
    r = api.post(f"/api/v1/conversations/{cid}/reveal")
    assert r.status_code == 200, r.text
    assert {v["model"] for v in r.json()["reveal"].values()} == {"model-one", "model-two"}
    r = api.post(f"/api/v1/conversations/{cid}/vote", {"submission_id": sub_id(),
                                                       "outcome": "tie"})
    assert r.status_code == 201
    assert r.json()["excluded_reason"] == "names_seen_before_vote"
    api.close()


@SQLITE_ONLY
def test_two_users_stream_at_once_each_their_own(seeded, app_server, paced) -> None:
    setup_live(seeded, paced.base_url)
    server = app_server()
    alice, bob = Api(server, "alice"), Api(server, "bob")
    a = alice.start(seeded.project_id, "Alice asks about apples")["conversation_id"]
    b = bob.start(seeded.project_id, "Bob asks about bananas")["conversation_id"]
    sa, sb = alice.events(a), bob.events(b)
    assert sa.next()[0] == "snapshot" and sb.next()[0] == "snapshot"
    # both stream at the same time: each gets a delta before either is complete
    ea = sa.until(lambda e: e[0] == "delta")
    eb = sb.until(lambda e: e[0] == "delta")
    assert not [e for e in ea + eb if e[0] == "complete"]
    ea += sa.until(is_ready(0))
    eb += sb.until(is_ready(0))
    sa.close()
    sb.close()
    assert alice.get(f"/api/v1/conversations/{a}").json()["user_id"] != \
        bob.get(f"/api/v1/conversations/{b}").json()["user_id"]
    listed = alice.get(f"/api/v1/projects/{seeded.project_id}/conversations").json()
    assert [c["conversation_id"] for c in listed] == [a]
    assert paced.total_calls() == 4
    alice.close()
    bob.close()


@SQLITE_ONLY
def test_another_annotator_gets_not_found(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url)
    server = app_server()
    alice, bob, mallory = Api(server, "alice"), Api(server, "bob"), Api(server, "mallory")
    cid = alice.start(seeded.project_id, "Private question")["conversation_id"]
    for r in (
        bob.get(f"/api/v1/conversations/{cid}"),
        bob.get(f"/api/v1/conversations/{cid}/events"),
        bob.post(f"/api/v1/conversations/{cid}/candidates/0/retry"),
        bob.post(f"/api/v1/conversations/{cid}/turns/0/regenerate"),
        bob.post(f"/api/v1/conversations/{cid}/finish"),
        mallory.post(f"/api/v1/projects/{seeded.project_id}/conversations",
                     {"mode": "chat", "message": "let me in"}),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    assert bob.get(f"/api/v1/projects/{seeded.project_id}/conversations").json() == []
    r = httpx.get(f"{server.url}/api/v1/conversations/{cid}/events")
    assert r.status_code == 401
    admin = Api(server, "admin")
    assert admin.get(f"/api/v1/conversations/{cid}").status_code == 200
    for api in (alice, bob, mallory, admin):
        api.close()


@SQLITE_ONLY
def test_bad_requests_answer_the_error_shape(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url, modes=("chat",))
    api = Api(app_server(), "alice")
    for body, field in (({"mode": "arena", "message": "hi"}, "mode"),
                        ({"mode": "chat", "message": "   "}, "message"),
                        ({"mode": "chat", "message": "hi", "key": "x"}, "body.key")):
        r = api.post(f"/api/v1/projects/{seeded.project_id}/conversations", body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field, r.text
    assert api.get(f"/api/v1/projects/{seeded.project_id}/conversations").json() == []
    api.close()


# -- multi-process, secrets, responsiveness ---------------------------------------------------


@SQLITE_ONLY
def test_second_process_sends_candidates_when_the_owner_completes_them(
        seeded, app_server, paced) -> None:
    setup_live(seeded, paced.base_url)
    one, two = app_server(), app_server()
    api1, api2 = Api(one, "alice"), Api(two, "alice")
    cid = api1.start(seeded.project_id, "Shared between workers")["conversation_id"]
    s1 = api1.events(cid)
    s1.until(lambda e: e[0] == "delta")  # process one streams it
    s2 = api2.events(cid)
    snapshot = s2.next()
    assert {c["status"] for c in snapshot[1]["conversation"]["turns"][0]["candidates"]} == {
        "streaming"}
    events = s2.until(is_ready(0))
    completes = {e[1]["slot"]: e[1] for e in events if e[0] == "complete"}
    assert set(completes) == {0, 1} and all(c["html"] for c in completes.values())
    s1.until(is_ready(0))
    s1.close()
    s2.close()
    assert paced.total_calls() == 2  # the second process generated nothing
    api1.close()
    api2.close()


@SQLITE_ONLY
def test_api_key_is_read_from_the_environment_and_never_shown(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url, api_key_env="LIVE_TEST_KEY")
    server = app_server(LIVE_TEST_KEY=SENTINEL_KEY, OPENAI_LOG="debug")
    api = Api(server, "alice")
    conv = api.start(seeded.project_id, "Keep my secret")
    cid = conv["conversation_id"]
    stream = api.events(cid)
    stream.until(is_ready(0))
    stream.close()
    bodies = [json.dumps(conv), "\n".join(stream.raw),
              api.get(f"/api/v1/conversations/{cid}").text]
    assert all(SENTINEL_KEY not in b for b in bodies)
    assert SENTINEL_KEY not in server.output()
    db_path = Path(seeded.url.removeprefix("sqlite:///"))
    with sqlite3.connect(db_path) as conn:
        dump = "\n".join(conn.iterdump())
    assert SENTINEL_KEY not in dump and "LIVE_TEST_KEY" in dump
    api.close()


@SQLITE_ONLY
def test_missing_key_variable_fails_with_its_name(seeded, app_server, fake) -> None:
    setup_live(seeded, fake.base_url, api_key_env="LIVE_UNSET_KEY")
    api = Api(app_server(), "alice")
    cid = api.start(seeded.project_id, "Anyone?")["conversation_id"]
    stream = api.events(cid)
    snapshot = stream.next()
    assert snapshot[0] == "snapshot"
    cands = snapshot[1]["conversation"]["turns"][0]["candidates"]
    if {c["status"] for c in cands} == {"failed"}:  # failed before we connected
        messages = [c["error"] for c in cands]
    else:
        events = stream.until(lambda e: e[0] == "error")
        events += stream.until(lambda e: e[0] == "error")
        messages = [e[1]["message"] for e in events if e[0] == "error"]
    assert len(messages) == 2 and all("LIVE_UNSET_KEY" in m for m in messages)
    stream.close()
    assert fake.total_calls() == 0
    api.close()


@SQLITE_ONLY
def test_event_loop_answers_other_requests_while_20_streams_run(
        seeded, app_server, paced) -> None:
    setup_live(seeded, paced.base_url, concurrency=16)
    server = app_server()
    api = Api(server, "alice")
    headers = api.headers

    async def run() -> tuple[int, int, int]:
        completes = 0
        answered_at_completes = -1
        first_deltas: set[tuple[str, int]] = set()
        all_streaming = asyncio.Event()

        async with httpx.AsyncClient(base_url=server.url, headers=headers,
                                     timeout=httpx.Timeout(60.0)) as client:
            started = await asyncio.gather(*(
                client.post(f"/api/v1/projects/{seeded.project_id}/conversations",
                            json={"mode": "chat", "message": f"Stream number {i}"})
                for i in range(10)))
            assert [r.status_code for r in started] == [201] * 10
            cids = [r.json()["conversation_id"] for r in started]

            async def follow(cid: str) -> None:
                nonlocal completes
                async with client.stream("GET", f"/api/v1/conversations/{cid}/events") as r:
                    name = ""
                    async for line in r.aiter_lines():
                        if line.startswith("event:"):
                            name = line.split(":", 1)[1].strip()
                        elif line.startswith("data:"):
                            data = json.loads(line.split(":", 1)[1])
                            if name == "delta":
                                first_deltas.add((cid, data["slot"]))
                                if len(first_deltas) == 20:
                                    all_streaming.set()
                            elif name == "complete":
                                completes += 1
                            elif name == "ready":
                                return

            async def other_request() -> None:
                nonlocal answered_at_completes
                await all_streaming.wait()
                r = await client.get(f"/api/v1/projects/{seeded.project_id}")
                assert r.status_code == 200
                answered_at_completes = completes

            await asyncio.gather(*(follow(c) for c in cids), other_request())
        return completes, answered_at_completes, len(first_deltas)

    completes, answered_at, streamed = asyncio.run(run())
    assert streamed == 20 and completes == 20
    # the other request was answered while streams were still running
    assert 0 <= answered_at < 20
    assert paced.max_inflight() == 20  # each endpoint has its own pool of 16 connections
    api.close()
