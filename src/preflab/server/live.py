"""The live hub: generates live candidates and streams them to the pages as server-sent events.

One :class:`LiveHub` per server process sits on ``app.state.live``. For each conversation with
work to do it claims the current candidates (:func:`preflab.collect.live.claim_candidates`, a
conditional UPDATE, so two processes or two reloads never generate one candidate twice) and
runs one asyncio task per candidate: :func:`preflab.generate.streaming.stream_chat` under the
endpoint's limiter (key ``<project_id>:<endpoint name>``, concurrency from the endpoint row).
The text so far is kept in memory and fanned out to the conversation's subscribers (one per
open event stream) as sanitized HTML from :func:`preflab.server.render.render_markdown`.

Why it is built this way:

* The event loop never waits: every database call goes through
  :meth:`preflab.server.db.Database.run` (inline on SQLite, a worker thread on PostgreSQL) and
  rendering is throttled per candidate: the first delta at once, then at most one render per
  :data:`RENDER_INTERVAL` (longer answers less often: a render costs time in proportion to the
  text, see :func:`_render_interval`), and always a final one (the ``complete`` event). With nobody
  watching, nothing is rendered at all.
* A slow browser never slows a stream: each subscriber holds a small queue in which a
  candidate's pending ``delta`` is *replaced* by the next one (every delta carries the full
  HTML, so the dropped one is never missed). Status events are kept in order; a subscriber
  that falls more than :data:`MAX_QUEUED_EVENTS` status events behind is disconnected, and its
  browser's EventSource reconnects and gets a fresh snapshot.
* Every connection starts with a ``snapshot`` (the conversation as stored) followed by the
  current state of every candidate this process knows (the in-flight text as a ``delta``), so
  a reload reattaches to the running stream and nothing is generated twice.
* When a conversation's last subscriber leaves, a grace timer
  (``Settings.live_cancel_grace``) cancels its generation unless someone subscribes again; the
  cancelled candidates are claimed and generated afresh by the next connection.
* A conversation whose candidates stream in another server process (``preflab serve --workers
  N``) is polled every :data:`POLL_INTERVAL` seconds and each candidate is sent when it
  completes there.
* The API key is read from the endpoint's environment variable when its client is made (by
  :func:`preflab.generate.endpoints.make_client`) and is never logged or stored.

Event names and bodies (the contract with the pages and the benchmark; ``docs/collect.md``):
``snapshot``, ``candidate``, ``delta``, ``complete``, ``error``, ``ready``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from preflab.collect import live as collect_live
from preflab.collect.core_tables import LIVE_CONVERSATIONS
from preflab.errors import (
    ConflictError,
    EndpointError,
    NotFoundError,
    PreflabError,
    StreamBrokenError,
)
from preflab.generate.streaming import (
    EndpointLimiter,
    StreamDelta,
    StreamDone,
    StreamRetry,
    stream_chat,
)
from preflab.server.db import Database
from preflab.server.render import render_markdown
from preflab.settings import Settings

if TYPE_CHECKING:
    import openai

    from preflab.collect import User
    from preflab.collect.live import ConversationView
    from preflab.collect.rows import LiveCandidate
    from preflab.generate.endpoints import EndpointConfig

__all__ = [
    "MAX_QUEUED_EVENTS",
    "POLL_INTERVAL",
    "RENDER_INTERVAL",
    "LiveHub",
    "finish",
    "list_conversations",
    "public_view",
    "reveal",
    "show_conversation",
    "vote",
]

logger = logging.getLogger(__name__)

RENDER_INTERVAL = 0.05  # seconds: at most one render per candidate in this time
# (characters so far, interval): every delta re-renders the whole answer, so a long one is
# rendered less often; 200 tokens of prose are about 1,200 characters
_LONGER_INTERVALS = ((4000, 0.2), (1000, 0.1))
POLL_INTERVAL = 0.25  # seconds between reads of a conversation generating in another process
MAX_QUEUED_EVENTS = 256  # status events a subscriber may lag behind before it is disconnected
_SHUTDOWN_WAIT = 10.0  # seconds the shutdown waits for cancelled tasks to record themselves

_Key = tuple[int, int, int]  # (turn, round, slot)


def _render_interval(chars: int) -> float:
    """Return the least time between two renders of an answer of ``chars`` characters."""
    for at_least, interval in _LONGER_INTERVALS:
        if chars >= at_least:
            return interval
    return RENDER_INTERVAL


def _encode(name: str, data: dict[str, Any]) -> bytes:
    """Return one server-sent event, encoded once for every subscriber."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\r\ndata: {body}\r\n\r\n".encode()


# ---------------------------------------------------------------------------------------------
# Units of work (run by Database.run: inline on SQLite, in a worker thread on PostgreSQL)


@dataclass(frozen=True, slots=True)
class _Job:
    """A claimed candidate with what it needs to be generated (or why it cannot be)."""

    candidate: LiveCandidate
    config: EndpointConfig | None
    params: dict[str, Any]
    messages: list[dict[str, str]]
    error: str | None = None


def _claim_on(conn: Any, conversation_id: str, owner: str, stale_after: float
              ) -> tuple[str | None, list[_Job]]:
    """Claim the conversation's current candidates on ``conn``; return its project and jobs."""
    project_id = conn.execute(
        select(LIVE_CONVERSATIONS.c.project_id).where(
            LIVE_CONVERSATIONS.c.conversation_id == conversation_id)
    ).scalar_one_or_none()
    if project_id is None:
        return None, []
    jobs: list[_Job] = []
    claimed = collect_live.claim_candidates(conn, conversation_id, owner, stale_after=stale_after)
    for cand in claimed:
        try:
            config, params = collect_live.candidate_request(conn, cand)
            messages = collect_live.candidate_messages(conn, cand)
        except PreflabError as exc:  # e.g. the endpoint was removed since
            jobs.append(_Job(cand, None, {}, [], error=str(exc)))
            continue
        jobs.append(_Job(cand, config, dict(params), list(messages)))
    return str(project_id), jobs


def _claim(db: Database, conversation_id: str, owner: str, stale_after: float
           ) -> tuple[str | None, list[_Job]]:
    """Claim the conversation's current candidates in one transaction."""
    with db.transaction() as conn:
        return _claim_on(conn, conversation_id, owner, stale_after)


@dataclass(frozen=True, slots=True)
class _Call:
    """A library call waiting for its connection (the first argument)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    is_idempotent: bool

    def __call__(self, conn: Any) -> Any:
        return self.fn(conn, *self.args, **self.kwargs)


def _act(db: Database, owner: str, stale_after: float, call: _Call
         ) -> tuple[Any, str | None, list[_Job]]:
    """Run one :mod:`preflab.collect.live` call and claim what it planned, in ONE transaction.

    A call that returns ``(view, created)`` is an idempotent submission: a concurrent twin
    that committed first (ConflictError) makes it a repeat, run again to return the stored
    result.
    """
    for attempt in (1, 2):
        try:
            with db.transaction() as conn:
                result = call(conn)
                view = result[0] if isinstance(result, tuple) else result
                project_id, jobs = _claim_on(conn, view.conversation.conversation_id, owner,
                                             stale_after)
            return result, project_id, jobs
        except ConflictError:
            if attempt == 2 or not call.is_idempotent:
                raise
    raise AssertionError("unreachable")


def _complete(db: Database, candidate_id: str, owner: str, done: Any) -> Any:
    with db.transaction() as conn:
        return collect_live.complete_candidate(
            conn, candidate_id, owner, text=done.text, finish_reason=done.finish_reason,
            ttft_ms=done.ttft_ms, latency_ms=done.latency_ms, prompt_tokens=done.prompt_tokens,
            completion_tokens=done.completion_tokens,
        )


def _fail(db: Database, candidate_id: str, owner: str, status: str, error: str) -> None:
    with db.transaction() as conn:
        collect_live.fail_candidate(conn, candidate_id, owner, status=status,  # type: ignore[arg-type]
                                    error=error)


def show_conversation(db: Database, conversation_id: str, user: User) -> ConversationView:
    """Return a conversation the user may see (owner or admin).

    Raises:
        NotFoundError: no such conversation, or not the user's.
    """
    with db.connect() as conn:
        return collect_live.get_conversation(conn, conversation_id, user)


def list_conversations(db: Database, project_id: str, user: User) -> list[Any]:
    """Return the project's conversations the user may see (own; admins: all)."""
    with db.connect() as conn:
        return list(collect_live.list_conversations(conn, project_id, user))


def _idempotent(db: Database, fn: Callable[..., tuple[Any, bool]], *args: Any
                ) -> tuple[Any, bool]:
    """Run an idempotent submission; a twin that committed first makes this a repeat."""
    try:
        with db.transaction() as conn:
            return fn(conn, *args)
    except ConflictError:
        # the concurrent twin of this submission won the race: the repeat returns its result
        with db.transaction() as conn:
            return fn(conn, *args)


def vote(db: Database, conversation_id: str, user: User, body: Any
         ) -> tuple[ConversationView, bool]:
    """Cast the arena vote; return the view (names revealed) and whether it is new."""
    return _idempotent(db, collect_live.arena_vote, conversation_id, user, body)


def reveal(db: Database, conversation_id: str, user: User) -> ConversationView:
    """Arena: show the model names without voting (a later vote is non-anonymous)."""
    with db.transaction() as conn:
        return collect_live.reveal(conn, conversation_id, user)


def finish(db: Database, conversation_id: str, user: User) -> ConversationView:
    """Chat: end the conversation without judging further."""
    with db.transaction() as conn:
        return collect_live.finish(conn, conversation_id, user)


@functools.lru_cache(maxsize=4096)
def _stored_html(text: str) -> str:
    """Sanitized HTML of a stored answer (complete answers never change: render them once)."""
    return str(render_markdown(text))


def public_view(view: ConversationView) -> dict[str, Any]:
    """Return the API's ConversationPublic: ``view.to_dict()`` with each stored model text
    also given as sanitized ``html`` (the only form in which a page may show it)."""
    data = view.to_dict()
    for turn in data.get("turns") or ():
        for group in ("candidates", "history"):
            for cand in turn.get(group) or ():
                text = cand.get("text")
                cand["html"] = _stored_html(text) if text else None
        continued = turn.get("continued_text")
        turn["continued_html"] = _stored_html(continued) if continued else None
    return data


# ---------------------------------------------------------------------------------------------
# In-memory state


class _Subscriber:
    """The queue of one open event stream; a candidate's queued delta is replaced, not added."""

    __slots__ = ("_deltas", "_events", "_wake", "closed", "replaced", "user")

    def __init__(self, user: User) -> None:
        self.user = user
        self._events: collections.deque[bytes | str] = collections.deque()
        self._deltas: dict[str, bytes] = {}  # candidate id -> latest delta not yet sent
        self._wake = asyncio.Event()
        self.closed = False
        self.replaced = 0  # deltas overwritten before this subscriber read them

    def put(self, event: bytes) -> None:
        if len(self._events) >= MAX_QUEUED_EVENTS:
            self.close()  # far behind: its browser reconnects and gets a fresh snapshot
            return
        self._events.append(event)
        self._wake.set()

    def put_delta(self, candidate_id: str, event: bytes) -> None:
        if candidate_id in self._deltas:
            self._deltas[candidate_id] = event
            self.replaced += 1
            return
        self._deltas[candidate_id] = event
        self._events.append(candidate_id)
        self._wake.set()

    def clear(self) -> None:
        self._events.clear()
        self._deltas.clear()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def get(self) -> bytes | None:
        """Return the next event, or None once closed."""
        while not self._events:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        if self.closed:
            return None
        item = self._events.popleft()
        if isinstance(item, str):
            return self._deltas.pop(item)
        return item


@dataclass(slots=True)
class _Candidate:
    """What this process knows of one slot's latest candidate."""

    candidate_id: str
    turn: int
    round: int
    slot: int
    status: str = "streaming"  # streaming | retrying | complete | failed | broken | cancelled…
    message: str | None = None
    pieces: list[str] = field(default_factory=list)
    tokens: int = 0
    chars: int = 0
    html: str | None = None
    dirty: bool = False
    last_render: float = -1.0
    timer: asyncio.TimerHandle | None = None
    final: bytes | None = None  # the event that ended it (complete / error / candidate)
    task: asyncio.Task[None] | None = None
    is_foreign: bool = False  # generated by another server process (polled)
    is_obsolete: bool = False  # an earlier round or turn: its events are no longer sent

    def ident(self) -> dict[str, int]:
        return {"turn": self.turn, "round": self.round, "slot": self.slot}


@dataclass(slots=True)
class _Conversation:
    conversation_id: str
    project_id: str | None = None
    subscribers: set[_Subscriber] = field(default_factory=set)
    slots: dict[_Key, _Candidate] = field(default_factory=dict)
    grace: asyncio.TimerHandle | None = None
    ready: tuple[tuple[int, int], bytes] | None = None
    poller: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def running(self) -> list[asyncio.Task[None]]:
        return [c.task for c in self.slots.values() if c.task is not None and not c.task.done()]


def _import_sdk() -> None:
    try:
        import openai  # noqa: F401
    except ImportError:  # reported where a client is made
        pass


def _owner_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"


class LiveHub:
    """Generation and fan-out of live candidates for one server process.

    Args:
        db: the app's database.
        settings: effective settings (``live_cancel_grace``, ``live_stale_after``).
        client_factory: builds the async client of an endpoint config (default:
            :func:`preflab.generate.endpoints.make_client`, which reads the API key from the
            environment variable the endpoint names).
    """

    def __init__(self, db: Database, settings: Settings, *,
                 client_factory: Callable[[EndpointConfig], openai.AsyncOpenAI] | None = None
                 ) -> None:
        self.db = db
        self.settings = settings
        self.owner = _owner_id()
        self.limiter = EndpointLimiter()
        self._client_factory = client_factory
        self._clients: dict[tuple[Any, ...], openai.AsyncOpenAI] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self.renders = 0  # deltas rendered (for the benchmark and the tests)

    # -- public API ---------------------------------------------------------------------------

    def start(self) -> None:
        """Import the endpoint client's SDK in a background thread (it takes about a second),
        so that the first live answer of a fresh server does not wait for it."""
        threading.Thread(target=_import_sdk, name="preflab-live-import", daemon=True).start()

    async def ensure_running(self, conversation_id: str) -> None:
        """Claim the conversation's current candidates and start generating them.

        Candidates already streaming in this or a live other process are left alone; pending
        and cancelled ones (and those of a dead process) are claimed here. Without a
        subscriber, the grace timer is armed: nobody watching for ``live_cancel_grace``
        seconds cancels the generation again.
        """
        if self._closing:
            return
        conv = self._conversation(conversation_id)
        async with conv.lock:
            project_id, jobs = await self.db.run(
                _claim, self.db, conversation_id, self.owner, self.settings.live_stale_after)
            if project_id is None:
                self._maybe_drop(conv)
                return
            if self._closing:
                return
            self._launch(conv, project_id, jobs)
        self._maybe_drop(conv)

    def cancel(self, conversation_id: str) -> int:
        """Stop generating a conversation's candidates now (it was finished); return how many.

        Each stopped candidate is marked cancelled, unless it changed meanwhile.
        """
        conv = self._conversations.get(conversation_id)
        if conv is None:
            return 0
        running = conv.running()
        for task in running:
            task.cancel()
        return len(running)

    async def act(self, fn: Callable[..., Any], *args: Any, idempotent: bool = False,
                  **kwargs: Any) -> Any:
        """Run ``fn(conn, *args, **kwargs)`` (a :mod:`preflab.collect.live` call returning a
        view, or ``(view, created)``) and claim the candidates it planned in the same
        transaction, then start generating them; return what ``fn`` returned.

        One unit of work instead of two (the call, then :meth:`ensure_running`): the first
        token of a new turn does not wait for a second commit.

        Args:
            fn: the library call; its first argument is the connection.
            idempotent: ``fn`` is an idempotent submission (a ConflictError from a concurrent
                twin makes it a repeat).
        """
        call = _Call(fn, args, kwargs, idempotent)
        result, project_id, jobs = await self.db.run(
            _act, self.db, self.owner, self.settings.live_stale_after, call)
        view = result[0] if isinstance(result, tuple) else result
        if project_id is not None and not self._closing:
            self._launch(self._conversation(view.conversation.conversation_id), project_id,
                         jobs)
        return result

    def _launch(self, conv: _Conversation, project_id: str, jobs: list[_Job]) -> None:
        """Start the claimed jobs (synchronously: no other step of the loop in between)."""
        conv.project_id = project_id
        if jobs:
            newest = max((j.candidate.turn, j.candidate.round) for j in jobs)
            self._retire_before(conv, newest)
        for job in jobs:
            self._start(conv, job)
        if not conv.subscribers:
            self._arm_grace(conv)
        self._maybe_drop(conv)

    async def check_access(self, conversation_id: str, user: User) -> None:
        """Raise NotFoundError unless the user may see the conversation (owner or admin)."""
        await self.db.run(show_conversation, self.db, conversation_id, user)

    async def events(self, conversation_id: str, user: User) -> AsyncIterator[bytes]:
        """Yield the encoded server-sent events of one connection until it closes.

        First a ``snapshot``, then the current state of every candidate this process knows,
        then live events. Call :meth:`check_access` first (this does too, but only once the
        response has started).
        """
        conv = self._conversation(conversation_id)
        sub = _Subscriber(user)
        self._subscribe(conv, sub)
        try:
            await self.ensure_running(conversation_id)
            view = await self.db.run(show_conversation, self.db, conversation_id, user)
            snapshot = _encode("snapshot", {"conversation": public_view(view)})
            foreign = self._adopt_foreign(conv, view)
            sub.clear()  # what it held is in the snapshot or in the state sent next
            current = self._current_events(conv)
            if foreign and conv.poller is None:
                conv.poller = asyncio.create_task(self._poll(conv))
            yield snapshot
            for event in current:
                yield event
            while True:
                queued = await sub.get()
                if queued is None:
                    return
                yield queued
        finally:
            self._unsubscribe(conv, sub)

    def stats(self) -> dict[str, int]:
        """Return counts for monitoring: conversations, subscribers, running tasks, renders."""
        convs = list(self._conversations.values())
        return {
            "conversations": len(convs),
            "subscribers": sum(len(c.subscribers) for c in convs),
            "running": sum(len(c.running()) for c in convs),
            "renders": self.renders,
        }

    async def shutdown(self) -> None:
        """Cancel every generation (its candidates are marked cancelled) and close clients."""
        self._closing = True
        tasks: list[asyncio.Task[None]] = []
        for conv in list(self._conversations.values()):
            if conv.grace is not None:
                conv.grace.cancel()
                conv.grace = None
            if conv.poller is not None:
                conv.poller.cancel()
            for sub in list(conv.subscribers):
                sub.close()
            for task in conv.running():
                task.cancel()
                tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=_SHUTDOWN_WAIT)
        for client in self._clients.values():
            try:
                await client.close()
            except Exception:  # closing a client of a dead endpoint: nothing left to do
                logger.debug("closing a live client failed", exc_info=True)
        self._clients.clear()

    # -- subscribers and the grace timer ------------------------------------------------------

    def _conversation(self, conversation_id: str) -> _Conversation:
        conv = self._conversations.get(conversation_id)
        if conv is None:
            conv = self._conversations[conversation_id] = _Conversation(conversation_id)
        return conv

    def _subscribe(self, conv: _Conversation, sub: _Subscriber) -> None:
        conv.subscribers.add(sub)
        if conv.grace is not None:
            conv.grace.cancel()
            conv.grace = None

    def _unsubscribe(self, conv: _Conversation, sub: _Subscriber) -> None:
        conv.subscribers.discard(sub)
        if not conv.subscribers:
            self._arm_grace(conv)
            self._maybe_drop(conv)

    def _arm_grace(self, conv: _Conversation) -> None:
        if conv.grace is not None or not conv.running() or self._closing:
            return
        loop = asyncio.get_running_loop()
        conv.grace = loop.call_later(self.settings.live_cancel_grace, self._grace_over, conv)

    def _grace_over(self, conv: _Conversation) -> None:
        conv.grace = None
        if conv.subscribers:
            return
        for task in conv.running():
            task.cancel()

    def _maybe_drop(self, conv: _Conversation) -> None:
        """Forget a conversation nobody watches and nothing generates."""
        if (not conv.subscribers and not conv.running() and conv.grace is None
                and not conv.lock.locked() and conv.poller is None
                and self._conversations.get(conv.conversation_id) is conv):
            del self._conversations[conv.conversation_id]

    # -- publishing ---------------------------------------------------------------------------

    def _publish(self, conv: _Conversation, event: bytes) -> None:
        for sub in conv.subscribers:
            sub.put(event)

    def _status(self, conv: _Conversation, c: _Candidate, status: str,
                message: str | None = None) -> None:
        c.status, c.message = status, message
        if not c.is_obsolete:
            self._publish(conv, _encode("candidate", {**c.ident(), "status": status,
                                                      "message": message}))

    def _render(self, conv: _Conversation, c: _Candidate, now: float) -> None:
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        text = "".join(c.pieces)
        c.pieces = [text]
        c.html = str(render_markdown(text))
        c.dirty = False
        c.last_render = now
        self.renders += 1
        event = _encode("delta", {**c.ident(), "html": c.html, "tokens": c.tokens})
        for sub in conv.subscribers:
            sub.put_delta(c.candidate_id, event)

    def _on_delta(self, conv: _Conversation, c: _Candidate, text: str) -> None:
        c.pieces.append(text)
        c.tokens += 1
        c.chars += len(text)
        c.dirty = True
        if not conv.subscribers or c.is_obsolete:
            return  # rendered when someone subscribes
        loop = asyncio.get_running_loop()
        now = loop.time()
        interval = _render_interval(c.chars)
        if now - c.last_render >= interval or c.last_render < 0:
            self._render(conv, c, now)
        elif c.timer is None:
            c.timer = loop.call_at(c.last_render + interval, self._flush, conv, c)

    def _flush(self, conv: _Conversation, c: _Candidate) -> None:
        c.timer = None
        if c.dirty and c.status == "streaming" and conv.subscribers and not c.is_obsolete:
            self._render(conv, c, asyncio.get_running_loop().time())

    def _finish(self, conv: _Conversation, c: _Candidate, status: str, event: bytes) -> None:
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        c.status, c.final, c.pieces = status, event, []
        if not c.is_obsolete:
            self._publish(conv, event)

    def _current_events(self, conv: _Conversation) -> list[bytes]:
        """Return the events that bring a new subscriber to this process's current state."""
        out: list[bytes] = []
        for c in conv.slots.values():
            if c.is_obsolete:
                continue
            if c.final is not None:
                if c.status in ("failed", "broken"):
                    out.append(_encode("candidate", {**c.ident(), "status": c.status,
                                                     "message": c.message}))
                out.append(c.final)
                continue
            out.append(_encode("candidate", {**c.ident(), "status": c.status,
                                             "message": c.message}))
            if c.tokens:
                if c.dirty or c.html is None:
                    text = "".join(c.pieces)
                    c.pieces = [text]
                    c.html, c.dirty = str(render_markdown(text)), False
                    c.last_render = asyncio.get_running_loop().time()
                    self.renders += 1
                out.append(_encode("delta", {**c.ident(), "html": c.html, "tokens": c.tokens}))
        if conv.ready is not None:
            (turn, rnd), event = conv.ready
            if not any(c.turn > turn or (c.turn == turn and c.round > rnd)
                       for c in conv.slots.values() if not c.is_obsolete):
                out.append(event)
        return out

    def _retire_before(self, conv: _Conversation, newest: tuple[int, int]) -> None:
        """Mark what belongs to an earlier turn or round obsolete and stop its generation."""
        for key, c in list(conv.slots.items()):
            if (c.turn, c.round) < newest:
                c.is_obsolete = True
                if c.task is not None and not c.task.done():
                    c.task.cancel()
                else:
                    del conv.slots[key]

    # -- generation ---------------------------------------------------------------------------

    def _client(self, project_id: str | None, config: EndpointConfig) -> openai.AsyncOpenAI:
        # one client (and connection pool of ``concurrency`` connections) per endpoint: two
        # endpoints on one server must not share, and so halve, a pool
        key = (project_id, config.name, config.base_url, config.api_key_env, config.timeout,
               config.concurrency)
        client = self._clients.get(key)
        if client is None:
            if self._client_factory is not None:
                client = self._client_factory(config)
            else:
                from preflab.generate.endpoints import make_client

                client = make_client(config)  # reads the key from the environment now
            self._clients[key] = client
        return client

    def _start(self, conv: _Conversation, job: _Job) -> None:
        cand = job.candidate
        key = (cand.turn, cand.round, cand.slot)
        old = conv.slots.get(key)
        if old is not None and old.task is not None and not old.task.done():
            old.is_obsolete = True
            old.task.cancel()
        c = _Candidate(cand.candidate_id, cand.turn, cand.round, cand.slot)
        conv.slots[key] = c
        c.task = asyncio.create_task(self._generate(conv, c, job),
                                     name=f"live:{cand.candidate_id}")
        c.task.add_done_callback(lambda _t: self._task_done(conv))

    def _task_done(self, conv: _Conversation) -> None:
        if not conv.running() and conv.grace is not None:
            conv.grace.cancel()
            conv.grace = None
        self._maybe_drop(conv)

    async def _generate(self, conv: _Conversation, c: _Candidate, job: _Job) -> None:
        self._status(conv, c, "streaming")
        try:
            if job.config is None:
                raise _JobError(job.error or "this candidate cannot be generated")
            config = job.config
            client = self._client(conv.project_id, config)
            done = None
            stream = stream_chat(config, job.messages, job.params, client=client,
                                 limiter=self.limiter,
                                 limiter_key=f"{conv.project_id}:{config.name}")
            # stream_chat is an async generator (typed as its iterator): aclosing closes the
            # upstream connection as soon as the loop is left
            async with contextlib.aclosing(stream) as events:  # type: ignore[type-var]
                async for event in events:
                    if type(event) is StreamDelta:
                        if c.status != "streaming":
                            self._status(conv, c, "streaming")
                        self._on_delta(conv, c, event.text)
                    elif type(event) is StreamRetry:
                        self._status(conv, c, "retrying", event.describe())
                    elif type(event) is StreamDone:
                        done = event
            if done is None:
                raise StreamBrokenError("the stream ended without a final answer")
            await self._completed(conv, c, done)
        except asyncio.CancelledError:
            reason = ("the server stopped" if self._closing else
                      "superseded" if c.is_obsolete else
                      "generation stopped: the page was closed")
            await self._record_failure(conv, c, "cancelled", reason)
            raise
        except StreamBrokenError as exc:
            await self._record_failure(conv, c, "broken", f"stopped mid-answer: {exc}")
        except (EndpointError, _JobError) as exc:
            await self._record_failure(conv, c, "failed", str(exc))
        except PreflabError as exc:  # ConfigError (key variable not set) and friends
            await self._record_failure(conv, c, "failed", str(exc))
        except Exception as exc:
            logger.exception("live candidate %s failed", c.candidate_id)
            await self._record_failure(conv, c, "failed",
                                       f"internal error ({type(exc).__name__}); see the log")

    async def _completed(self, conv: _Conversation, c: _Candidate, done: Any) -> None:
        try:
            result = await self.db.run(_complete, self.db, c.candidate_id, self.owner, done)
        except (ConflictError, NotFoundError) as exc:
            # the row is no longer ours (regenerated, or taken over as stale): drop quietly
            logger.info("live candidate %s not stored: %s", c.candidate_id, exc)
            c.is_obsolete = True
            return
        cand = result.candidate
        if getattr(result, "resampled", False) or cand.status == "duplicate":
            self._finish(conv, c, "duplicate", _encode("candidate", {
                **c.ident(), "status": "duplicate",
                "message": "same answer as another slot; sampling again"}))
            if not self._closing:
                task = asyncio.create_task(self.ensure_running(conv.conversation_id))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return
        if cand.status != "complete":  # an empty answer, or a slot that kept repeating
            message = cand.error or f"the answer was not kept ({cand.status})"
            self._status(conv, c, "failed", message)
            self._finish(conv, c, "failed", _encode("error", {
                **c.ident(), "message": message, "retryable": True}))
            return
        tokens = cand.completion_tokens if cand.completion_tokens is not None else c.tokens
        self._finish(conv, c, "complete", _encode("complete", {
            **c.ident(), "html": _stored_html(done.text), "tokens": tokens,
            "latency_ms": cand.latency_ms, "ttft_ms": cand.ttft_ms}))
        if result.turn_ready:
            self._ready(conv, c.turn, c.round, result.assignment_id)

    def _ready(self, conv: _Conversation, turn: int, rnd: int, assignment_id: str | None
               ) -> None:
        event = _encode("ready", {"turn": turn, "round": rnd, "assignment_id": assignment_id})
        conv.ready = ((turn, rnd), event)
        self._publish(conv, event)

    async def _record_failure(self, conv: _Conversation, c: _Candidate, status: str,
                              message: str) -> None:
        try:
            await self.db.run(_fail, self.db, c.candidate_id, self.owner, status, message)
        except PreflabError as exc:  # no longer ours (regenerated or taken over)
            logger.info("live candidate %s: %s not recorded: %s", c.candidate_id, status, exc)
            c.is_obsolete = True
        c.message = message
        if status == "cancelled":
            event = _encode("candidate", {**c.ident(), "status": status, "message": message})
        else:
            if not c.is_obsolete:
                self._publish(conv, _encode("candidate", {**c.ident(), "status": status,
                                                          "message": message}))
            event = _encode("error", {**c.ident(), "message": message, "retryable": True})
        self._finish(conv, c, status, event)

    # -- candidates generated by another process ----------------------------------------------

    def _adopt_foreign(self, conv: _Conversation, view: ConversationView) -> bool:
        """Track the current candidates another process streams; True if there are any."""
        if not view.turns:
            return False
        found = False
        for cand in view.turns[-1].candidates:
            if cand.status == "streaming" and cand.owner != self.owner:
                key = (cand.turn, cand.round, cand.slot)
                c = conv.slots.get(key)
                if c is None or c.candidate_id != cand.candidate_id:
                    conv.slots[key] = _Candidate(
                        cand.candidate_id, cand.turn, cand.round, cand.slot,
                        message="generating in another server process", is_foreign=True)
                found = True
        return found

    async def _poll(self, conv: _Conversation) -> None:
        """Send the foreign candidates of a conversation as they complete in the database."""
        stale_after = self.settings.live_stale_after
        try:
            while conv.subscribers and not self._closing:
                await asyncio.sleep(POLL_INTERVAL)
                sub = next(iter(conv.subscribers), None)
                if sub is None:
                    break
                view = await self.db.run(show_conversation, self.db, conv.conversation_id,
                                         sub.user)
                waiting, claim = self._apply_foreign(conv, view, stale_after)
                if claim:
                    await self.ensure_running(conv.conversation_id)
                if not waiting:
                    break
        except PreflabError as exc:
            logger.info("live poll of %s stopped: %s", conv.conversation_id, exc)
        finally:
            conv.poller = None
            self._maybe_drop(conv)

    def _apply_foreign(self, conv: _Conversation, view: ConversationView, stale_after: float
                       ) -> tuple[bool, bool]:
        """Publish what changed in the foreign candidates; return (still waiting, claim now)."""
        if not view.turns:
            return False, False
        tv = view.turns[-1]
        waiting = claim = False
        now = time.time()
        for cand in tv.candidates:
            key = (cand.turn, cand.round, cand.slot)
            c = conv.slots.get(key)
            if cand.status == "streaming" and cand.owner != self.owner:
                waiting = True
                started = cand.started_at.timestamp() if cand.started_at else now
                claim = claim or now - started > stale_after
                if c is None or c.candidate_id != cand.candidate_id:
                    c = conv.slots[key] = _Candidate(
                        cand.candidate_id, cand.turn, cand.round, cand.slot, is_foreign=True)
                    self._status(conv, c, "streaming", "generating in another server process")
                continue
            if c is None or not c.is_foreign or c.candidate_id != cand.candidate_id or c.final:
                if cand.status in ("pending", "cancelled"):
                    claim = True
                continue
            if cand.status == "complete":
                text = cand.text or ""
                self._finish(conv, c, "complete", _encode("complete", {
                    **c.ident(), "html": _stored_html(text),
                    "tokens": cand.completion_tokens, "latency_ms": cand.latency_ms,
                    "ttft_ms": cand.ttft_ms}))
            elif cand.status in ("failed", "broken"):
                message = cand.error or cand.status
                self._status(conv, c, cand.status, message)
                self._finish(conv, c, cand.status, _encode("error", {
                    **c.ident(), "message": message, "retryable": True}))
            elif cand.status in ("pending", "cancelled"):
                claim = True
        turn = tv.turn
        is_ready = bool(tv.candidates) and all(x.status == "complete" for x in tv.candidates)
        if view.conversation.mode != "arena":
            is_ready = is_ready and turn.status in ("ready", "judged")
        if is_ready and (conv.ready is None or conv.ready[0] != (turn.turn, turn.round)):
            self._ready(conv, turn.turn, turn.round, turn.assignment_id)
        return waiting, claim


class _JobError(Exception):
    """A claimed candidate that cannot be sent (its endpoint is gone)."""
