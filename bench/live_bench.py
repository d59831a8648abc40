"""Live collection on loopback (issue 12): time to first token through the app, and its CPU.

32 concurrent live chats (``--chats``) of 3 turns (``--turns``) against a loopback
OpenAI-compatible endpoint that streams 200 tokens (``--tokens``) at 50 tokens/s (``--rate``),
two candidates per turn, measured against the same endpoint called directly in the same run.

Three processes beside this one, as in production:

- the endpoint: ``tests/generate/fakeserver.py --stream-tokens N --token-rate R`` (the project's
  test server, one chunk per token, paced);
- the app: ``preflab serve`` (the real CLI, one process) on a fresh SQLite workspace, or on a
  fresh PostgreSQL database with ``--postgres``; set up as an admin would: an admin made with
  ``preflab users add``, then through the API a pairwise project, two endpoints (models
  ``bench-a`` and ``bench-b``, concurrency 2 x chats so the endpoint limiter never queues), the
  live config (chat, k=2, sampling by models) and one annotator per chat with an API token;
- the load client (``--client``, this script in its own process, asyncio + aiohttp; httpx
  spent about 2.5 times the CPU per streamed chunk, enough to make the client the bottleneck
  of the direct baseline on a 2-core machine): in an app phase each annotator does what the
  live page does: ``POST /projects/{pid}/conversations``,
  open ``GET /conversations/{cid}/events`` (server-sent events), wait for ``ready`` (both
  candidates complete), ``POST /conversations/{cid}/turns/{t}/submit`` with a judgment and the
  next message (the last turn: ``done``); time to first token (TTFT) of each candidate runs
  from the moment the POST (or the submit) was sent to its first ``delta`` event. In a direct
  phase the same client streams the same number of concurrent requests (2 x chats, as many
  turns) straight to ``/v1/chat/completions`` with ``stream: true``, TTFT from request start to
  the first chunk with text.

Chat i starts ``i * stagger / chats`` seconds after the first (``--stagger``, default one
answer's duration, 4 s): 32 annotators do not act in the same millisecond, and since every
answer has the same length and pace, chats started together stay in lockstep, every turn a
burst of 32 submits, 64 claims and 64 completions at once. ``--stagger 0`` measures that
burst (the worst case); the direct phase runs the same schedule.

Phases alternate (direct, app, direct, app for ``--repeat 2``) so both see the same machine
load, after a short warm-up of each. App CPU is the app process's utime + stime
(``/proc/<pid>/stat``) over the app phases divided by their wall time, in cores; the endpoint's
and the client's CPU are printed beside it, with the load average (this machine's other work
shows in every figure). Printed: median / p95 / p99 TTFT direct and via the app, the added ms
(median and p99), the ratio, app cores, tokens/s relayed, errors (each printed), and PASS/FAIL
against the issue's goals (added median <= 20 ms, added p99 <= 100 ms, app < 1 core). Figures
only; nothing is asserted on time.

Also printed, to tell where added time comes from: per first turn and later turns, when the
POST (or submit) answered and the hub's own upstream ``ttft_ms`` (from its ``complete``
events); and a probe, ``GET /api/v1/me`` every 100 ms, in app phases and in direct phases (app
idle): how long an unrelated request waits for the app's event loop.

Diagnosis: ``--profile FILE`` runs the app under cProfile (figures inflated; read the shares)
and prints the CPU of each part of the live path; ``--asyncio-debug`` prints every step that
held the app's event loop over 100 ms; ``--nice -10`` raises the three processes' priority on a
machine busy with other work (root only).

Run: ``.venv/bin/python bench/live_bench.py [--chats 32] [--turns 3] [--tokens 200] [--rate 50]
[--repeat 2] [--postgres]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
FAKESERVER = ROOT / "tests" / "generate" / "fakeserver.py"
PG_ADMIN = os.environ.get(
    "PREFLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ADMIN, PASSWORD = "benchadmin", "bench-password"
PROJECT = "Live bench"  # id: live-bench
MODELS = ("bench-a", "bench-b")
GOAL_MEDIAN_MS, GOAL_P99_MS, GOAL_CORES = 20.0, 100.0, 1.0


# ---------------------------------------------------------------- shared helpers


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """Return the CPU seconds (user + system, all threads) a process has used so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    """Return the nearest-rank ``q`` quantile of ``values`` (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log: Path | None) -> None:
    """Wait until ``url`` answers (any status) or the process dies; raise with its log."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start (exit {proc.poll()}):\n{tail}")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process we started (``sig``, then SIGKILL after 10 s) and reap it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- the endpoint and the app


def start_endpoint(tokens: int, rate: float, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the paced fake OpenAI server in its own process; return it and its ``/v1`` URL."""
    port = free_port()
    cmd = [sys.executable, str(FAKESERVER), "--port", str(port),
           "--stream-tokens", str(tokens), "--token-rate", str(rate)]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/_calls", proc, "fake endpoint", log)
    return proc, f"http://127.0.0.1:{port}/v1"


def preflab_cmd(*args: str) -> list[str]:
    """Return the argv of a ``preflab`` CLI call (the venv's console script)."""
    exe = shutil.which("preflab", path=str(Path(sys.executable).parent))
    return [exe, *args] if exe else [sys.executable, "-m", "preflab.cli.main", *args]


def start_app(
    store: list[str], log: Path, profile: Path | None, asyncio_debug: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``preflab serve`` (one process) on ``store`` (``--workspace W [--db URL]``).

    With ``asyncio_debug`` the app runs in asyncio's debug mode, which logs every callback or
    task step that held the event loop for more than 100 ms (what stalls every stream).
    """
    port = free_port()
    args = ["serve", *store, "--host", "127.0.0.1", "--port", str(port)]
    cmd = preflab_cmd(*args)
    if profile is not None:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "preflab.cli.main",
               *args]
    env = dict(os.environ, **({"PYTHONASYNCIODEBUG": "1"} if asyncio_debug else {}))
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/login", proc, "preflab serve", log)
    return proc, base


def _ok(r: httpx.Response, what: str) -> Any:
    if r.status_code >= 400:
        raise RuntimeError(f"{what}: HTTP {r.status_code} {r.text[:500]}")
    return r.json()


def setup_project(base: str, endpoint_url: str, chats: int, turns: int) -> tuple[str, list[str]]:
    """Create the project, its endpoints and live config, and one annotator per chat.

    Returns the project id and the annotators' API tokens. Everything goes through the API
    with the admin's token, as an admin's script would.
    """
    with httpx.Client(base_url=base, timeout=60) as http:
        admin = _ok(http.post("/api/v1/tokens", json={"username": ADMIN, "password": PASSWORD}),
                    "admin token")["token"]
        http.headers["Authorization"] = f"Bearer {admin}"
        pid = _ok(http.post("/api/v1/projects", json={"name": PROJECT}), "create project")
        pid = pid.get("project_id") or pid.get("id")
        for name, model in zip(("a", "b"), MODELS, strict=True):
            _ok(http.post(f"/api/v1/projects/{pid}/endpoints", json={
                "name": name, "base_url": endpoint_url, "model": model,
                "concurrency": max(4, 2 * chats), "timeout": 60.0}), f"endpoint {name}")
        _ok(http.put(f"/api/v1/projects/{pid}/live", json={
            "modes": ["chat"], "k": 2, "sampling": "models", "turn_limit": max(turns, 1)}),
            "live config")
        tokens = []
        for i in range(chats):
            user = f"annotator{i:03d}"
            _ok(http.post("/api/v1/users", json={"username": user, "password": PASSWORD}),
                f"user {user}")
            _ok(http.post(f"/api/v1/projects/{pid}/members", json={"username": user}),
                f"member {user}")
            tok = http.post("/api/v1/tokens", json={"username": user, "password": PASSWORD},
                            headers={"Authorization": ""})
            tokens.append(_ok(tok, f"token {user}")["token"])
    return pid, tokens


# ---------------------------------------------------------------- the load client


@dataclass
class Phase:
    """What one phase measured."""

    kind: str                      # "direct" or "app"
    ttft: list[float] = field(default_factory=list)       # seconds, one per candidate
    server_ttft: list[float] = field(default_factory=list)  # app: the hub's own ttft_ms / 1000
    tokens: int = 0                # tokens relayed (direct: chunks with text)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    app_cpu: float = 0.0
    endpoint_cpu: float = 0.0
    client_cpu: float = 0.0
    replayed: int = 0              # app: first text seen in the snapshot (already streaming)
    # app: one row per candidate: turn, TTFT, when the POST/submit answered, the hub's ttft
    rows: list[list[float | None]] = field(default_factory=list)
    probe: list[float] = field(default_factory=list)  # GET /api/v1/me latencies (seconds)

    def to_dict(self) -> dict[str, Any]:
        """Return the phase as JSON types."""
        return dict(self.__dict__)


def user_message(chat: int, turn: int, run: str) -> str:
    """Return the user message of a chat's turn (distinct per run, chat and turn)."""
    return f"Bench {run} chat {chat} turn {turn}: tell me about topic {chat * 31 + turn}."


async def stream_direct(
    http: aiohttp.ClientSession, url: str, model: str, messages: list[dict[str, str]], ph: Phase
) -> str:
    """Stream one completion straight from the endpoint; record TTFT; return the text.

    Only the bytes are looked at while the stream runs (the first chunk with text stops the
    clock); the chunks are parsed once it has ended, so the client's own work per chunk stays
    small and does not delay the next stream's first token.
    """
    body = {"model": model, "messages": messages, "stream": True,
            "stream_options": {"include_usage": True}}
    buf: list[bytes] = []
    t0 = time.perf_counter()
    first = None
    async with http.post(url, json=body) as r:
        if r.status != 200:
            ph.errors.append(f"direct {model}: HTTP {r.status} {(await r.read())[:200]!r}")
            return ""
        async for data in r.content.iter_any():
            if first is None and _CONTENT in data and _has_text(b"".join([*buf, data])):
                first = time.perf_counter() - t0
            buf.append(data)
    parts = []
    for line in b"".join(buf).split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            choices = json.loads(line[5:]).get("choices") or ()
            piece = choices[0].get("delta", {}).get("content") if choices else None
            if piece:
                parts.append(piece)
    if first is None or not parts:
        ph.errors.append(f"direct {model}: stream ended without text")
        return ""
    ph.ttft.append(first)
    ph.tokens += len(parts)
    return "".join(parts)


_CONTENT = b'"content"'


def _has_text(raw: bytes) -> bool:
    """Return True when a complete ``data:`` chunk of ``raw`` carries non-empty content."""
    for line in raw.split(b"\n"):
        if line.startswith(b"data:") and _CONTENT in line:
            try:
                choices = json.loads(line[5:]).get("choices") or ()
            except ValueError:
                continue  # a chunk cut by the read: the next read completes it
            if choices and choices[0].get("delta", {}).get("content"):
                return True
    return False


async def direct_chat(
    http: aiohttp.ClientSession, url: str, chat: int, turns: int, run: str, ph: Phase
) -> None:
    """One simulated chat straight to the endpoint: per turn both models at once."""
    messages = [{"role": "user", "content": user_message(chat, 0, run)}]
    for turn in range(turns):
        texts = await asyncio.gather(
            *(stream_direct(http, url, m, messages, ph) for m in MODELS)
        )
        messages = [*messages, {"role": "assistant", "content": texts[0]},
                    {"role": "user", "content": user_message(chat, turn + 1, run)}]


@dataclass
class ChatState:
    """Per-conversation bookkeeping shared by a chat and its event-stream reader."""

    started: dict[int, float] = field(default_factory=dict)      # turn -> when its POST went
    answered: dict[int, float] = field(default_factory=dict)     # turn -> POST/submit answered
    hub: dict[tuple[int, int, int], float] = field(default_factory=dict)  # the hub's ttft_ms
    first: dict[tuple[int, int, int], float] = field(default_factory=dict)
    ready: dict[int, asyncio.Event] = field(default_factory=dict)
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def ready_event(self, turn: int) -> asyncio.Event:
        """Return the event set when ``turn`` is ready."""
        return self.ready.setdefault(turn, asyncio.Event())


async def read_events(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], st: ChatState, ph: Phase,
    label: str,
) -> None:
    """Read a conversation's server-sent events until cancelled; record first deltas."""
    try:
        async with http.get(url, headers={**headers, "Accept": "text/event-stream"}) as r:
            if r.status != 200:
                ph.errors.append(f"{label} events: HTTP {r.status} {(await r.read())[:200]!r}")
                st.failed.set()
                return
            st.connected.set()
            rest = b""
            async for data in r.content.iter_any():
                blocks = (rest + data).replace(b"\r\n", b"\n").split(b"\n\n")
                rest = blocks.pop()
                for block in blocks:
                    event, lines = "message", []
                    for line in block.split(b"\n"):
                        if line.startswith(b"event:"):
                            event = line[6:].strip().decode()
                        elif line.startswith(b"data:"):
                            lines.append(line[5:].lstrip())
                    if lines:
                        on_event(event, json.loads(b"\n".join(lines)), st, ph, label)
    except (aiohttp.ClientError, TimeoutError) as exc:
        ph.errors.append(f"{label} events: {type(exc).__name__}: {exc}")
        st.failed.set()


def on_event(event: str, obj: dict[str, Any], st: ChatState, ph: Phase, label: str) -> None:
    """Handle one event of the live contract (spec: snapshot, candidate, delta, complete …)."""
    now = time.perf_counter()
    if event in ("delta", "complete"):
        key = (int(obj["turn"]), int(obj.get("round", 0)), int(obj["slot"]))
        if key not in st.first and key[0] in st.started:
            st.first[key] = now
            ph.ttft.append(now - st.started[key[0]])
        if event == "complete":
            ph.tokens += int(obj.get("tokens") or 0)
            if obj.get("ttft_ms") is not None:
                ph.server_ttft.append(float(obj["ttft_ms"]) / 1000)
                st.hub[key] = float(obj["ttft_ms"]) / 1000
    elif event == "ready":
        st.ready_event(int(obj["turn"])).set()
    elif event == "error":
        ph.errors.append(f"{label} error event: {obj}")
        st.failed.set()
    elif event == "candidate" and obj.get("status") not in ("streaming", "pending"):
        ph.errors.append(f"{label} candidate event: {obj}")
        if obj.get("status") in ("failed", "broken", "cancelled"):
            st.failed.set()
    elif event == "snapshot":
        seen_text(obj.get("conversation") or {}, st, ph, now)


def seen_text(conv: dict[str, Any], st: ChatState, ph: Phase, now: float) -> None:
    """Count candidates already complete at connection time (their first token was missed)."""
    for turn in conv.get("turns") or ():
        for cand in turn.get("candidates") or ():
            key = (int(cand["turn"]), int(cand["round"]), int(cand["slot"]))
            if cand.get("status") == "complete" and key[0] in st.started and key not in st.first:
                st.first[key] = now
                ph.ttft.append(now - st.started[key[0]])
                ph.replayed += 1


def conversation_id(body: dict[str, Any]) -> str:
    """Return the conversation id of a ConversationPublic body."""
    return str(body["conversation_id"])


async def app_chat(
    http: aiohttp.ClientSession, base: str, pid: str, token: str, chat: int, turns: int,
    run: str, ph: Phase, timeout: float,
) -> None:
    """One annotator's live chat through the app's API and event stream."""
    headers = {"Authorization": f"Bearer {token}"}
    label = f"chat {chat}"
    st = ChatState()
    try:
        await _app_chat(http, base, pid, headers, st, chat, turns, run, ph, timeout, label)
    finally:
        for key, first in st.first.items():
            start = st.started[key[0]]
            answered = st.answered.get(key[0])
            ph.rows.append([key[0], first - start,
                            None if answered is None else answered - start, st.hub.get(key)])


async def _app_chat(
    http: aiohttp.ClientSession, base: str, pid: str, headers: dict[str, str], st: ChatState,
    chat: int, turns: int, run: str, ph: Phase, timeout: float, label: str,
) -> None:
    st.started[0] = time.perf_counter()
    async with http.post(f"{base}/api/v1/projects/{pid}/conversations", headers=headers,
                         json={"mode": "chat", "message": user_message(chat, 0, run)}) as r:
        body = await r.read()
    st.answered[0] = time.perf_counter()
    if r.status != 201:
        ph.errors.append(f"{label} start: HTTP {r.status} {body[:300]!r}")
        return
    cid = conversation_id(json.loads(body))
    reader = asyncio.create_task(read_events(http, f"{base}/api/v1/conversations/{cid}/events",
                                             headers, st, ph, label))
    try:
        for turn in range(turns):
            ready = asyncio.create_task(st.ready_event(turn).wait())
            failed = asyncio.create_task(st.failed.wait())
            done, pending = await asyncio.wait({ready, failed}, timeout=timeout,
                                               return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            if ready not in done:
                if not st.failed.is_set():
                    ph.errors.append(f"{label} turn {turn}: not ready after {timeout:.0f} s")
                return
            last = turn == turns - 1
            sub: dict[str, Any] = {
                "judgment": {"submission_id": f"{run}-{chat}-{turn}", "choice": "1"},
                "done": last,
            }
            if not last:
                sub["next_message"] = user_message(chat, turn + 1, run)
                st.started[turn + 1] = time.perf_counter()
            async with http.post(f"{base}/api/v1/conversations/{cid}/turns/{turn}/submit",
                                 headers=headers, json=sub) as r:
                body = await r.read()
            if not last:
                st.answered[turn + 1] = time.perf_counter()
            if r.status not in (200, 201):
                ph.errors.append(f"{label} submit turn {turn}: HTTP {r.status} {body[:300]!r}")
                return
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def later(delay: float, job: Any) -> None:
    """Run the coroutine ``job`` after ``delay`` seconds (a chat's staggered start)."""
    if delay:
        await asyncio.sleep(delay)
    await job


async def probe_app(
    http: aiohttp.ClientSession, base: str, token: str, ph: Phase, done: asyncio.Event,
    every: float = 0.1,
) -> None:
    """Time ``GET /api/v1/me`` on the app every ``every`` seconds until ``done``: how quickly
    the app answers an unrelated request (its event loop's lag) while the phase runs."""
    headers = {"Authorization": f"Bearer {token}"}
    while not done.is_set():
        t0 = time.perf_counter()
        async with http.get(f"{base}/api/v1/me", headers=headers) as r:
            await r.read()
        if r.status == 200:
            ph.probe.append(time.perf_counter() - t0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), every)


async def run_phase(
    kind: str, cfg: dict[str, Any], run: str, chats: int, turns: int, stagger: float
) -> Phase:
    """Run one direct or app phase: ``chats`` concurrent chats of ``turns`` turns, chat i
    starting ``i * stagger / chats`` seconds after the first."""
    ph = Phase(kind)
    timeout = aiohttp.ClientTimeout(total=None, connect=60.0, sock_connect=60.0)
    stream_s = cfg["tokens"] / cfg["rate"] if cfg["rate"] else 1.0
    app0, ep0 = proc_cpu(cfg["app_pid"]), proc_cpu(cfg["endpoint_pid"])
    cpu0, t0 = time.process_time(), time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0)  # no pool limit: every chat its connections
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        if kind == "direct":
            url = cfg["endpoint"] + "/chat/completions"
            jobs = [direct_chat(http, url, i, turns, run, ph) for i in range(chats)]
        else:
            jobs = [app_chat(http, cfg["app"], cfg["project"], cfg["tokens_by_chat"][i], i,
                             turns, run, ph, 60.0 + 3 * stream_s) for i in range(chats)]
        done = asyncio.Event()
        probe = asyncio.create_task(probe_app(http, cfg["app"], cfg["tokens_by_chat"][0], ph,
                                              done))
        await asyncio.gather(*(later(i * stagger / chats, job) for i, job in enumerate(jobs)))
        done.set()
        await probe
    ph.wall = time.perf_counter() - t0
    ph.client_cpu = time.process_time() - cpu0
    ph.app_cpu = proc_cpu(cfg["app_pid"]) - app0
    ph.endpoint_cpu = proc_cpu(cfg["endpoint_pid"]) - ep0
    expected = 2 * chats * turns
    if len(ph.ttft) != expected and not ph.errors:
        ph.errors.append(f"{kind}: {len(ph.ttft)} first tokens seen, expected {expected}")
    return ph


async def client_main(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Warm up both paths, then alternate direct and app phases; return every phase."""
    chats, turns = cfg["chats"], cfg["turns"]
    warm = min(chats, 4)
    out = []
    for kind in ("direct", "app"):
        ph = await run_phase(kind, cfg, f"warm-{kind}", warm, 1, 0.0)
        out.append({**ph.to_dict(), "warmup": True})
    for k in range(cfg["repeat"]):
        for kind in ("direct", "app"):
            ph = await run_phase(kind, cfg, f"r{k}-{uuid.uuid4().hex[:6]}", chats, turns,
                                 cfg["stagger"])
            out.append({**ph.to_dict(), "warmup": False})
            print(f"  [{kind} {k + 1}/{cfg['repeat']}] wall {ph.wall:.1f}s, "
                  f"{len(ph.ttft)} first tokens, errors {len(ph.errors)}", file=sys.stderr)
    return out


# ---------------------------------------------------------------- report


def show(phases: list[dict[str, Any]], args: argparse.Namespace, load: tuple[float, float],
         backend: str) -> bool:
    """Print the figures and the verdict; return True when every goal is met."""
    real = [p for p in phases if not p["warmup"]]
    direct = [x * 1000 for p in real if p["kind"] == "direct" for x in p["ttft"]]
    app = [x * 1000 for p in real if p["kind"] == "app" for x in p["ttft"]]
    hub = [x * 1000 for p in real if p["kind"] == "app" for x in p["server_ttft"]]
    apps = [p for p in real if p["kind"] == "app"]
    directs = [p for p in real if p["kind"] == "direct"]
    app_wall = sum(p["wall"] for p in apps)
    cores = sum(p["app_cpu"] for p in apps) / app_wall if app_wall else float("nan")
    ep_app = sum(p["endpoint_cpu"] for p in apps) / app_wall if app_wall else float("nan")
    d_wall = sum(p["wall"] for p in directs)
    ep_direct = sum(p["endpoint_cpu"] for p in directs) / d_wall if d_wall else float("nan")
    cl_app = sum(p["client_cpu"] for p in apps) / app_wall if app_wall else float("nan")
    cl_direct = sum(p["client_cpu"] for p in directs) / d_wall if d_wall else float("nan")
    relayed = sum(p["tokens"] for p in apps) / app_wall if app_wall else float("nan")
    direct_tps = sum(p["tokens"] for p in directs) / d_wall if d_wall else float("nan")
    errors = [e for p in phases for e in p["errors"]]
    replayed = sum(p["replayed"] for p in apps)

    pace = f"at {args.rate:g} tokens/s" if args.rate else "unpaced"
    print(f"live bench: {args.chats} chats x {args.turns} turns x 2 candidates, endpoint "
          f"streams {args.tokens} tokens {pace}; backend={backend}; "
          f"phases direct/app x {args.repeat} (alternating, after a warm-up); "
          f"starts spread over {args.stagger:g}s; nice {args.nice:+d}; "
          f"cpus={os.cpu_count()} load_avg_1min={load[0]:.2f}->{load[1]:.2f}")
    print(f"  {'TTFT (ms)':<34}{'n':>6}{'median':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    for label, xs in (("direct to the endpoint", direct), ("via the app (POST/submit -> delta)", app),
                      ("  the hub's own ttft_ms (upstream)", hub)):
        print(f"  {label:<34}{len(xs):>6}{pct(xs, .5):>9.1f}{pct(xs, .95):>9.1f}"
              f"{pct(xs, .99):>9.1f}{max(xs, default=float('nan')):>9.1f}")
    add_med = pct(app, .5) - pct(direct, .5)
    add_p99 = pct(app, .99) - pct(direct, .99)
    ratio = pct(app, .5) / pct(direct, .5) if direct else float("nan")
    per_phase = ", ".join(f"{p['kind']} {pct([x * 1000 for x in p['ttft']], .5):.1f}"
                          for p in real)
    print(f"  medians per phase (ms): {per_phase}")
    print(f"  added by the app: median {add_med:+.1f} ms, p99 {add_p99:+.1f} ms; "
          f"ratio of medians app/direct {ratio:.2f}")
    rows = [r for p in apps for r in p["rows"]]
    for label, sel in (("first turn (POST conversations)", [r for r in rows if r[0] == 0]),
                       ("later turns (POST submit)", [r for r in rows if r[0] > 0])):
        if not sel:
            continue
        ttft = [r[1] * 1000 for r in sel]
        answered = [r[2] * 1000 for r in sel if r[2] is not None]
        upstream = [r[3] * 1000 for r in sel if r[3] is not None]
        print(f"  {label}: TTFT median {pct(ttft, .5):.1f} p99 {pct(ttft, .99):.1f} ms; "
              f"the POST answered after median {pct(answered, .5):.1f} p99 "
              f"{pct(answered, .99):.1f} ms; hub upstream ttft median {pct(upstream, .5):.1f} "
              f"p99 {pct(upstream, .99):.1f} ms")
    for label, group in (("app phases", apps), ("direct phases (app idle)", directs)):
        probe = [x * 1000 for p in group for x in p["probe"]]
        print(f"  GET /api/v1/me every 100 ms during {label}: median {pct(probe, .5):.1f} "
              f"p99 {pct(probe, .99):.1f} max {max(probe, default=float('nan')):.1f} ms "
              f"(n={len(probe)})")
    if replayed:
        print(f"  first text already in the snapshot (connected late): {replayed}")
    app_cpu = sum(p["app_cpu"] for p in apps)
    app_tokens = sum(p["tokens"] for p in apps)
    print(f"  app process CPU: {cores:.3f} cores over {app_wall:.1f}s of app phases "
          f"({app_cpu:.2f} CPU-s; {1e6 * app_cpu / max(app_tokens, 1):.0f} us per token "
          f"relayed, {1e3 * app_cpu / max(len(app), 1):.1f} ms per candidate, everything in)")
    print(f"  endpoint CPU: {ep_app:.3f} cores in app phases, {ep_direct:.3f} in direct phases; "
          f"client CPU: {cl_app:.3f} / {cl_direct:.3f} cores")
    print(f"  tokens/s relayed by the app {relayed:,.0f} (direct phases read {direct_tps:,.0f}/s;"
          + (f" ideal {2 * args.chats * args.rate:,.0f}/s while all stream)" if args.rate
             else ")"))
    print(f"  errors: {len(errors)}")
    for e in errors[:50]:
        print(f"    {e}")
    goals = [
        (f"added median TTFT <= {GOAL_MEDIAN_MS:g} ms", add_med <= GOAL_MEDIAN_MS),
        (f"added p99 TTFT <= {GOAL_P99_MS:g} ms", add_p99 <= GOAL_P99_MS),
        (f"app process < {GOAL_CORES:g} core", cores < GOAL_CORES),
        ("no errors", not errors and bool(app) and bool(direct)),
    ]
    for label, ok in goals:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    return all(ok for _, ok in goals)


# Where an app's CPU goes, by the functions that own each part of the live path (cumulative
# times; a part's callees are inside it, and "HTTP requests" contains the DB units they run).
_PROFILE_PARTS = (
    ("HTTP requests through the ASGI app (all routes)", "fastapi/applications.py", "__call__"),
    ("  live API handlers: start / submit", "api/v1/live.py", None),
    ("  event streams (sse-starlette, whole response)", "sse_starlette/sse.py",
     "_stream_response"),
    ("  request auth (token lookup)", "server/deps.py", "_load_user"),
    ("DB units of work (Database.run, all)", "server/db.py", "run"),
    ("  claim candidates", "server/live.py", "_claim"),
    ("  complete a candidate", "server/live.py", "_complete"),
    ("  submit a turn (collect.live)", "collect/live.py", "submit_turn"),
    ("  start a conversation (collect.live)", "collect/live.py", "start_conversation"),
    ("  build a conversation view", "collect/live_views.py", "build_view"),
    ("hub: one candidate's generation task", "server/live.py", "_generate"),
    ("  upstream stream (stream_chat: HTTP + SSE parse)", "generate/streaming.py",
     "stream_chat"),
    ("  hub delta handling (_on_delta + timer _flush)", "server/live.py", "_on_delta"),
    ("  timer renders (_flush)", "server/live.py", "_flush"),
    ("render_markdown (markdown-it + nh3), all callers", "server/render.py",
     "render_markdown"),
    ("public_view (API/snapshot html of stored texts)", "server/live.py", "public_view"),
    ("uvicorn socket writes", "httptools_impl.py", "send"),
    ("imports (lazy, first use)", "<frozen importlib._bootstrap>", "_find_and_load"),
)


def show_profile(path: Path, top: int = 25) -> None:
    """Print where the app's CPU went (the live path's parts) and its top functions."""
    import pstats

    if not path.exists():
        print(f"  (no profile written at {path})")
        return
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    # the event loop's own C code (uvloop), its waits included, shows as the runner's own time
    idle = sum(v[2] for k, v in raw.items() if k[0].endswith("runners.py") and k[2] == "run")
    busy = max(stats.total_tt - idle, 1e-9)  # type: ignore[attr-defined]
    print(f"profile of the app: {busy:.1f} s in Python code under cProfile (whole run: set-up, "
          "warm-up and every phase; the profiler inflates each call, read it as shares of that; "
          "a coroutine's calls count its resumptions)")
    for label, file_part, func in _PROFILE_PARTS:
        hits = [(k, v) for k, v in raw.items()
                if file_part in k[0] and (func is None or k[2] == func)]
        if func is None:  # a module's route functions: the ones with the most time
            hits = [(k, v) for k, v in hits if k[2] in ("start_conversation", "submit_turn")]
        calls = sum(v[1] for _, v in hits)
        cum = max((v[3] for _, v in hits), default=0.0) if func == "_find_and_load" else sum(
            v[3] for _, v in hits)
        share = 100 * cum / busy
        print(f"  {label:<52} {cum:7.2f}s {share:5.1f}%  calls {calls:>7}  "
              f"{1e6 * cum / max(calls, 1):8.0f} us/call")
    stats.sort_stats("tottime").print_stats(top)


# ---------------------------------------------------------------- orchestration


def run(args: argparse.Namespace, tmp: Path, db_url: str | None) -> bool:
    """Start the endpoint and the app, set them up, run the client process, print figures."""
    ws = tmp / "ws"
    store = ["--workspace", str(ws), *(["--db", db_url] if db_url else [])]
    cli_store = ["--db", db_url] if db_url else ["--workspace", str(ws)]  # one, not both
    made = subprocess.run(preflab_cmd("users", "add", ADMIN, "--role", "admin", "--password",
                                      PASSWORD, *cli_store), capture_output=True, text=True,
                          check=False)
    if made.returncode != 0:
        raise RuntimeError(f"preflab users add failed: {made.stderr or made.stdout}")
    endpoint, endpoint_url = start_endpoint(args.tokens, args.rate, tmp / "endpoint.log")
    app_log = tmp / "app.log"
    profile = Path(args.profile).resolve() if args.profile else None
    app = None
    try:
        app, base = start_app(store, app_log, profile, args.asyncio_debug)
        pid, tokens = setup_project(base, endpoint_url, args.chats, args.turns)
        cfg = {"app": base, "endpoint": endpoint_url, "project": pid, "tokens_by_chat": tokens,
               "app_pid": app.pid, "endpoint_pid": endpoint.pid, "chats": args.chats,
               "turns": args.turns, "tokens": args.tokens, "rate": args.rate,
               "repeat": args.repeat, "stagger": args.stagger}
        (tmp / "client.json").write_text(json.dumps(cfg))
        load0 = os.getloadavg()[0]
        out = subprocess.run([sys.executable, __file__, "--client", str(tmp / "client.json")],
                             check=False, stdout=subprocess.PIPE, text=True)
        load1 = os.getloadavg()[0]
        if out.returncode != 0:
            raise RuntimeError(f"load client failed (exit {out.returncode})")
        ok = show(json.loads(out.stdout), args, (load0, load1),
                  "postgresql" if db_url else "sqlite")
    finally:
        if app is not None:
            # SIGINT under cProfile: uvicorn re-raises the signal after its shutdown, and only
            # KeyboardInterrupt lets cProfile write its file
            stop(app, signal.SIGINT if profile is not None else signal.SIGTERM)
        stop(endpoint)
        log = app_log.read_text(errors="replace") if app_log.exists() else ""
        lines = [x for x in log.splitlines() if x.strip() and not x.startswith("preflab on")]
        slow = [x for x in lines if x.startswith("Executing ")]
        others = [x for x in lines if not x.startswith("Executing ")]
        if slow:
            print(f"  event loop held over 100 ms {len(slow)} times (asyncio debug), longest:")
            for line in sorted(slow, key=_held, reverse=True)[:15]:
                print(f"    {line[:400]}")
        if others:
            print(f"  app log ({len(others)} lines, last 20):")
            for line in others[-20:]:
                print(f"    {line}")
    if profile is not None:
        show_profile(profile)
    return ok


def _held(line: str) -> float:
    """Return the seconds of an asyncio "Executing … took 0.123 seconds" log line."""
    try:
        return float(line.rsplit(" took ", 1)[1].split()[0])
    except (IndexError, ValueError):
        return 0.0


def main() -> None:
    """Parse options; run the benchmark (or, with ``--client``, the load client)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chats", type=int, default=32, help="concurrent live chats (annotators)")
    ap.add_argument("--turns", type=int, default=3, help="turns per chat")
    ap.add_argument("--tokens", type=int, default=200, help="tokens per streamed answer")
    ap.add_argument("--rate", type=float, default=50.0, help="tokens per second of the endpoint")
    ap.add_argument("--repeat", type=int, default=2, help="direct/app phase pairs")
    ap.add_argument("--stagger", type=float, default=None,
                    help="seconds over which the chats' starts are spread (default: one "
                    "answer's duration, tokens / rate; 0: all at once, in lockstep)")
    ap.add_argument("--postgres", action="store_true",
                    help="run the app on a fresh PostgreSQL database (PREFLAB_TEST_PG_URL)")
    ap.add_argument("--profile", metavar="FILE",
                    help="run the app under cProfile, write FILE and print the top functions")
    ap.add_argument("--nice", type=int, default=0,
                    help="scheduling priority change for the endpoint, app and client processes "
                    "(e.g. -10 on a machine busy with other work; needs the right to raise it)")
    ap.add_argument("--asyncio-debug", action="store_true",
                    help="run the app in asyncio debug mode and print the steps that held its "
                    "event loop over 100 ms (slows the app; for diagnosis)")
    ap.add_argument("--client", metavar="CONFIG", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stagger is None:
        args.stagger = args.tokens / args.rate if args.rate else 0.0
    if args.nice and not args.client:
        os.nice(args.nice)  # the processes started from here inherit it
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.client:
        cfg = json.loads(Path(args.client).read_text())
        print(json.dumps(asyncio.run(client_main(cfg))))
        return
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
        if not args.postgres:
            ok = run(args, Path(tmp), None)
        else:
            import psycopg

            name = f"preflab_live_{uuid.uuid4().hex[:8]}"
            admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                ok = run(args, Path(tmp), PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
