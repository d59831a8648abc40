"""A real OpenAI-compatible HTTP server for tests and benchmarks: ``/v1/chat/completions``.

Replies are scripted and deterministic. Faults are asked for inside the last user message
with ``[[fault:KIND:N]]`` (the first N calls of that request get the fault; N defaults to
always): ``429`` (with Retry-After), ``500``, ``400``, ``slow`` (sleeps past any sane
timeout), ``malformed`` (invalid JSON body), ``truncated`` (stream cut mid-way, connection
dropped), ``truncated_clean`` (stream ends without finish_reason). Streaming faults take an
optional third number, ``[[fault:KIND:N:AT]]``: ``break_after`` (AT tokens, default 3, then the
connection drops without a finish_reason: a mid-stream break), ``junk_chunk`` (after AT tokens,
default 3, a ``data:`` line that is not JSON, then the rest of the stream; AT=0 is a junk body
before any token), ``slow_first`` (waits AT milliseconds, default ``--slow-first-seconds``,
before the first token). ``429``, ``500``, ``400``, ``slow``, ``malformed`` (for a streamed
request: an event stream whose first ``data:`` line is not JSON) and ``truncated`` apply to
streamed requests too.

Streaming: ``--stream-tokens N`` makes every streamed reply that no script rule matches N words
long (words drawn deterministically from the model, seed, temperature, prompt and the call's
number, so two calls or two models differ); ``--token-rate R`` sends R chunks per second, one
word per chunk (scripted replies too: a markdown reply streams word by word, newlines kept).
A streamed reply ends with a ``finish_reason`` chunk, then a usage chunk when the request asks
for ``stream_options.include_usage``, then ``data: [DONE]``. A client that closes the connection
mid-stream is noticed (``disconnects`` in ``/_calls``) and its stream stops at once.

Control routes: ``GET /_calls`` (calls per request, keyed ``model|seed|last user message``;
``inflight``, ``max_inflight``, ``disconnects``, ``stream_options`` refusals),
``POST /_reset``, ``POST /_script`` with ``{"rules": [{"pattern": regex, "reply": text}]}``
(first rule whose regex matches the last user message gives the reply; ``{model}`` and
``{seed}`` are filled in), ``POST /_fail`` with ``{"status": 503}`` (every chat call answers
that status from now on; ``{"status": null}`` heals), ``POST /_detail`` (chat calls answer a
FastAPI-style 422 ``{"detail": [...]}``), ``GET /_batches`` (batches created, in order).

Batch API: ``POST /v1/files`` (multipart, purpose ``batch``), ``GET /v1/files/{id}`` and
``/content``, ``POST /v1/batches``, ``GET /v1/batches`` (list) and ``/v1/batches/{id}``. A batch
stays ``in_progress`` for ``--batch-delay`` seconds, then each line is answered like a chat
call (counted in ``/_calls`` the same way); lines whose fault is ``429``/``500``/``400`` go to
the error file with that status; the output and error files are written at once.

``POST /_no_stream_options`` with ``{"on": true}`` makes the server answer 400 to a request
carrying ``stream_options`` (like servers that do not know the field).

Run: ``python tests/generate/fakeserver.py --port 8123 --delay 0.05``, or for paced streams
``python tests/generate/fakeserver.py --port 8123 --stream-tokens 200 --token-rate 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

_FAULT = re.compile(r"\[\[fault:([a-z0-9_]+)(?::(\d+))?(?::(\d+))?\]\]")
_LOREM_TEXT = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
    "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
    "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
    "officia deserunt mollit anim id est laborum"
)
_LOREM = tuple(_LOREM_TEXT.split())


class FakeOpenAI:
    """The ASGI app (raw ASGI: keeps server overhead small for the benchmark)."""

    def __init__(
        self,
        delay: float = 0.0,
        slow_seconds: float = 5.0,
        batch_delay: float = 0.5,
        stream_tokens: int | None = None,
        token_rate: float | None = None,
        slow_first_seconds: float = 1.0,
    ) -> None:
        self.delay = delay
        self.slow_seconds = slow_seconds
        self.batch_delay = batch_delay
        self.stream_tokens = stream_tokens
        self.token_rate = token_rate
        self.slow_first_seconds = slow_first_seconds
        self.disconnects = 0
        self.no_stream_options = False
        self.stream_options_refused = 0
        self.fault_arg: int | None = None  # AT of the fault count_call found last
        self.calls: Counter[str] = Counter()
        self.rules: list[tuple[re.Pattern[str], str]] = []
        self.inflight = 0
        self.max_inflight = 0
        self.fail_status: int | None = None
        self.detail_422 = False
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if path == "/_calls":
            await _json(
                send,
                200,
                {
                    "total": sum(self.calls.values()),
                    "by_key": dict(self.calls),
                    "max_inflight": self.max_inflight,
                    "inflight": self.inflight,
                    "disconnects": self.disconnects,
                    "stream_options_refused": self.stream_options_refused,
                },
            )
        elif path == "/_reset" and method == "POST":
            self.calls.clear()
            self.rules = []
            self.max_inflight = 0
            self.fail_status = None
            self.detail_422 = False
            self.disconnects = 0
            self.no_stream_options = False
            self.stream_options_refused = 0
            await _json(send, 200, {"ok": True})
        elif path == "/_script" and method == "POST":
            data = json.loads(body)
            self.rules = [(re.compile(r["pattern"], re.DOTALL), r["reply"]) for r in data["rules"]]
            await _json(send, 200, {"ok": True, "rules": len(self.rules)})
        elif path == "/_fail" and method == "POST":
            self.fail_status = json.loads(body).get("status")
            await _json(send, 200, {"ok": True})
        elif path == "/_no_stream_options" and method == "POST":
            self.no_stream_options = bool(json.loads(body).get("on", True))
            await _json(send, 200, {"ok": True})
        elif path == "/_detail" and method == "POST":
            self.detail_422 = bool(json.loads(body).get("on", True))
            await _json(send, 200, {"ok": True})
        elif path == "/_batches":
            await _json(send, 200, {"batches": list(self.batches.values())})
        elif path.startswith(("/v1/files", "/v1/batches")):
            await self.batch_api(scope, path, method, body, send)
        elif path.endswith("/chat/completions") and method == "POST" and self.detail_422:
            self.calls["_422"] += 1
            detail = [{"loc": ["body", "messages"], "msg": "field required", "type": "missing"}]
            await _json(send, 422, {"detail": detail})
        elif path.endswith("/chat/completions") and method == "POST" and self.fail_status:
            self.calls["_failed"] += 1
            await _json(send, self.fail_status, {"error": {"message": "server is down"}})
        elif path.endswith("/chat/completions") and method == "POST":
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                await self.chat(json.loads(body), send, receive)
            finally:
                self.inflight -= 1
        else:
            await _json(send, 404, {"error": {"message": f"no route {path}"}})

    def reply_for(self, model: str, seed: Any, last: str) -> str:
        for pattern, reply in self.rules:
            if pattern.search(last):
                return reply.replace("{model}", model).replace("{seed}", str(seed))
        return f"echo[{model}|seed={seed}]: {last}"

    def count_call(self, req: dict[str, Any]) -> tuple[list[Any], str, str, Any, int, str | None]:
        """Count a chat request; return its messages, last user text, model, seed, the call's
        number for that key, and the fault it must show now (None once the fault has passed)."""
        messages = req.get("messages") or []
        last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        model, seed = req.get("model", ""), req.get("seed")
        key = f"{model}|{seed}|{last}"
        self.calls[key] += 1
        n = self.calls[key]
        fault = _FAULT.search(last)
        active = fault and (fault.group(2) is None or n <= int(fault.group(2)))
        self.fault_arg = int(fault.group(3)) if fault and fault.group(3) else None
        return messages, last, model, seed, n, fault.group(1) if fault and active else None

    async def chat(self, req: dict[str, Any], send: Any, receive: Any = None) -> None:
        messages, last, model, seed, n, kind = self.count_call(req)
        at = self.fault_arg
        streamed = bool(req.get("stream"))
        if streamed and self.no_stream_options and "stream_options" in req:
            self.stream_options_refused += 1
            msg = "Unrecognized request argument supplied: stream_options"
            await _json(send, 400, {"error": {"message": msg, "param": "stream_options"}})
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        if kind is not None:
            if kind == "429":
                await _json(
                    send, 429, {"error": {"message": "slow down"}}, [(b"retry-after", b"0.2")]
                )
                return
            if kind in ("500", "400"):
                await _json(send, int(kind), {"error": {"message": f"injected {kind}"}})
                return
            if kind == "slow":
                await asyncio.sleep(self.slow_seconds)
            elif kind == "malformed" and streamed:
                await _start_sse(send)
                await send({"type": "http.response.body", "body": _JUNK, "more_body": False})
                return
            elif kind == "malformed":
                await _raw(send, 200, b'{"id": "x", "choices": [ {"mess', b"application/json")
                return
            elif kind in ("truncated", "truncated_clean"):
                await self.stream_cut(send, model, kind == "truncated_clean")
                return
        if streamed:
            text = self.stream_text(req, model, seed, last, n)
            usage = _usage(messages, text)
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            opts = req.get("stream_options") or {}
            await self.stream(
                send,
                receive,
                model,
                text,
                usage if opts.get("include_usage") else None,
                kind if kind in ("break_after", "junk_chunk", "slow_first") else None,
                at,
            )
            return
        text = self.reply_for(model, seed, last)
        usage = _usage(messages, text)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        await _json(send, 200, _completion(f"chatcmpl-{n}", model, text, usage))

    def answer(self, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Return the status and body a batch line gets (faults 429/500/400 apply)."""
        messages, last, model, seed, n, kind = self.count_call(req)
        if kind in ("429", "500", "400"):
            return int(kind), {"error": {"message": f"injected {kind}"}}
        text = self.reply_for(model, seed, last)
        return 200, _completion(f"chatcmpl-b{n}", model, text, _usage(messages, text))

    async def batch_api(
        self, scope: dict[str, Any], path: str, method: str, body: bytes, send: Any
    ) -> None:
        parts = path.strip("/").split("/")  # v1, files|batches, [id], [content]
        if parts[1] == "files" and method == "POST" and len(parts) == 2:
            ctype = dict(scope["headers"]).get(b"content-type", b"").decode()
            data, name = _multipart_file(ctype, body)
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = {"data": data, "name": name, "purpose": "batch"}
            await _json(send, 200, _file_obj(fid, self.files[fid]))
        elif parts[1] == "files" and len(parts) == 4 and parts[3] == "content":
            f = self.files.get(parts[2])
            if f is None:
                await _json(send, 404, {"error": {"message": f"no file {parts[2]}"}})
            else:
                await _raw(send, 200, f["data"], b"application/octet-stream")
        elif parts[1] == "files" and len(parts) == 3:
            f = self.files.get(parts[2])
            if f is None:
                await _json(send, 404, {"error": {"message": f"no file {parts[2]}"}})
            else:
                await _json(send, 200, _file_obj(parts[2], f))
        elif parts[1] == "batches" and method == "POST" and len(parts) == 2:
            req = json.loads(body)
            if req.get("input_file_id") not in self.files:
                await _json(send, 400, {"error": {"message": "unknown input_file_id"}})
                return
            bid = f"batch_{len(self.batches) + 1}"
            now = int(time.time())
            self.batches[bid] = {
                "id": bid,
                "object": "batch",
                "endpoint": req.get("endpoint"),
                "errors": None,
                "input_file_id": req["input_file_id"],
                "completion_window": req.get("completion_window", "24h"),
                "status": "in_progress",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": now,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": req.get("metadata"),
            }
            task = asyncio.create_task(self.run_batch(bid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            await _json(send, 200, self.batches[bid])
        elif parts[1] == "batches" and method == "GET" and len(parts) == 2:
            data = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
            await _json(send, 200, {"object": "list", "data": data, "has_more": False})
        elif parts[1] == "batches" and method == "GET" and len(parts) == 3:
            b = self.batches.get(parts[2])
            if b is None:
                await _json(send, 404, {"error": {"message": f"no batch {parts[2]}"}})
            else:
                await _json(send, 200, b)
        else:
            await _json(send, 404, {"error": {"message": f"no route {method} {path}"}})

    async def run_batch(self, bid: str) -> None:
        await asyncio.sleep(self.batch_delay)
        batch = self.batches[bid]
        lines = self.files[batch["input_file_id"]]["data"].decode().splitlines()
        out, err = [], []
        for i, raw in enumerate(x for x in lines if x.strip()):
            line = json.loads(raw)
            status, body = self.answer(line["body"])
            row = {
                "id": f"batch_req_{bid}_{i}",
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": f"req_{i}", "body": body},
                "error": None,
            }
            (out if status == 200 else err).append(json.dumps(row))
        for kind, rows in (("output", out), ("error", err)):
            if rows:
                fid = f"file-{len(self.files) + 1}"
                data = ("\n".join(rows) + "\n").encode()
                self.files[fid] = {"data": data, "name": f"{bid}_{kind}.jsonl", "purpose": kind}
                batch[f"{kind}_file_id"] = fid
        batch["request_counts"] = {
            "total": len(out) + len(err),
            "completed": len(out),
            "failed": len(err),
        }
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())

    def stream_text(self, req: dict[str, Any], model: str, seed: Any, last: str, n: int) -> str:
        """Return the text of a streamed reply: a script rule's, else ``stream_tokens`` words
        (varying with model, seed, temperature, prompt and call number), else the echo."""
        if self.stream_tokens is None or any(p.search(last) for p, _ in self.rules):
            return self.reply_for(model, seed, last)
        rng = random.Random(f"{model}|{seed}|{req.get('temperature')}|{last}|{n}")
        return " ".join(rng.choice(_LOREM) for _ in range(self.stream_tokens))

    async def stream(
        self,
        send: Any,
        receive: Any,
        model: str,
        text: str,
        usage: dict[str, int] | None,
        fault: str | None = None,
        at: int | None = None,
    ) -> None:
        """Send ``text`` as an event stream, one word per chunk, paced by ``token_rate``.

        Stops at once when the client disconnects (counted in ``disconnects``).
        """
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone)) if receive else None
        try:
            await _start_sse(send)
            if fault == "slow_first":
                wait = self.slow_first_seconds if at is None else at / 1000.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), wait)
            words = text.split(" ")
            cut = (3 if at is None else at) if fault in ("break_after", "junk_chunk") else -1
            interval = 1.0 / self.token_rate if self.token_rate else 0.0
            start = time.monotonic()
            head = _chunk_head(model)
            for i, w in enumerate(words):
                if i == cut:
                    if fault == "break_after":
                        raise ConnectionAbortedError("injected break mid-stream")
                    await send({"type": "http.response.body", "body": _JUNK, "more_body": True})
                if interval and i:
                    pause = start + i * interval - time.monotonic()
                    if pause > 0:
                        await asyncio.sleep(pause)
                if gone.is_set():
                    self.disconnects += 1
                    return
                piece = w if i == 0 else " " + w
                body = head + json.dumps(piece).encode() + _CHUNK_TAIL
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if cut >= len(words):  # the fault's place is past the text: at the end
                if fault == "break_after":
                    raise ConnectionAbortedError("injected break mid-stream")
                await send({"type": "http.response.body", "body": _JUNK, "more_body": True})
            await _sse(send, _chunk(model, {}, "stop"))
            if usage is not None:
                await _sse(send, {**_chunk(model, {}, None), "choices": [], "usage": usage})
            await send(
                {"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False}
            )
        finally:
            if watcher is not None:
                watcher.cancel()

    async def stream_cut(self, send: Any, model: str, clean: bool) -> None:
        await _start_sse(send)
        await _sse(send, _chunk(model, {"role": "assistant", "content": "partial"}, None))
        if clean:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        raise ConnectionAbortedError("injected truncated stream")  # uvicorn drops the connection


_JUNK = b'data: {"id": "chatcmpl-s", "choices": [{"delta": {"content": "oops\n\n'
_CHUNK_TAIL = b'}, "finish_reason": null}]}\n\n'


def _chunk_head(model: str) -> bytes:
    """Return the bytes of a content chunk up to its content string (built once per stream)."""
    head = json.dumps({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 0})
    return (
        b"data: "
        + head[:-1].encode()
        + b', "model": '
        + json.dumps(model).encode()
        + b', "choices": [{"index": 0, "delta": {"content": '
    )


async def _watch_disconnect(receive: Any, gone: asyncio.Event) -> None:
    """Set ``gone`` when the client closes the connection (the body was already read)."""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            gone.set()
            return


def _usage(messages: list[Any], text: str) -> dict[str, int]:
    """Count tokens as words: of every message (prompt) and of the reply (completion)."""
    return {
        "prompt_tokens": sum(len(m.get("content", "").split()) for m in messages),
        "completion_tokens": len(text.split()),
    }


def _completion(cid: str, model: str, text: str, usage: dict[str, int]) -> dict[str, Any]:
    """Return a chat completion body with one choice."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


def _file_obj(fid: str, f: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": fid,
        "object": "file",
        "bytes": len(f["data"]),
        "created_at": int(time.time()),
        "filename": f["name"],
        "purpose": f["purpose"],
        "status": "processed",
    }


def _multipart_file(ctype: str, body: bytes) -> tuple[bytes, str]:
    """Return the bytes and name of the ``file`` part of a multipart/form-data body."""
    from email.parser import BytesParser
    from email.policy import HTTP

    head = b"Content-Type: " + ctype.encode() + b"\r\n\r\n"
    msg = BytesParser(policy=HTTP).parsebytes(head + body)
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True) or b"", part.get_filename() or "input.jsonl"
    raise ValueError("no file part")


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def _start_sse(send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )


async def _sse(send: Any, obj: dict[str, Any]) -> None:
    data = b"data: " + json.dumps(obj).encode() + b"\n\n"
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _raw(
    send: Any,
    status: int,
    body: bytes,
    ctype: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", ctype),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Any, status: int, obj: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _raw(send, status, json.dumps(obj).encode(), b"application/json", extra)


def find_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeServer:
    """Handle on a running fake server: its URL, call counts and scripted replies."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/v1"

    def calls(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.url}/_calls").json()["by_key"])

    def max_inflight(self) -> int:
        """Return the most chat requests the server has held at once since the last reset."""
        return int(httpx.get(f"{self.url}/_calls").json()["max_inflight"])

    def total_calls(self) -> int:
        return int(httpx.get(f"{self.url}/_calls").json()["total"])

    def reset(self) -> None:
        httpx.post(f"{self.url}/_reset").raise_for_status()

    def script(self, rules: list[dict[str, str]]) -> None:
        httpx.post(f"{self.url}/_script", json={"rules": rules}).raise_for_status()

    def fail(self, status: int | None) -> None:
        """Make every chat call answer ``status`` (None: answer normally again)."""
        httpx.post(f"{self.url}/_fail", json={"status": status}).raise_for_status()

    def inflight(self) -> int:
        """Return how many chat requests the server holds right now."""
        return int(httpx.get(f"{self.url}/_calls").json()["inflight"])

    def disconnects(self) -> int:
        """Return how many streams the client closed before their end (since the last reset)."""
        return int(httpx.get(f"{self.url}/_calls").json()["disconnects"])

    def refuse_stream_options(self, on: bool = True) -> None:
        """Make streamed requests that carry ``stream_options`` answer 400 (like older servers)."""
        httpx.post(f"{self.url}/_no_stream_options", json={"on": on}).raise_for_status()

    def stream_options_refused(self) -> int:
        """Return how many requests were refused for carrying ``stream_options``."""
        return int(httpx.get(f"{self.url}/_calls").json()["stream_options_refused"])

    def detail_422(self, on: bool = True) -> None:
        """Make every chat call answer a FastAPI-style ``{"detail": [...]}`` 422."""
        httpx.post(f"{self.url}/_detail", json={"on": on}).raise_for_status()

    def batches(self) -> list[dict[str, Any]]:
        """Return the batches created on this server, oldest first."""
        out = httpx.get(f"{self.url}/_batches").json()["batches"]
        return sorted(out, key=lambda b: int(b["id"].split("_")[1]))

    def endpoint(self, name: str = "fake", model: str = "fake-model", **kw: Any) -> Any:
        """Return an EndpointConfig for this server (short timeouts and backoff for tests)."""
        from preflab.generate.endpoints import EndpointConfig

        base = {"timeout": 2.0, "max_attempts": 3, "backoff_base": 0.01, "backoff_max": 0.5}
        return EndpointConfig(name=name, base_url=self.base_url, model=model, **{**base, **kw})


def start_fake_server(
    delay: float = 0.0,
    slow_seconds: float = 5.0,
    batch_delay: float = 0.5,
    *,
    stream_tokens: int | None = None,
    token_rate: float | None = None,
    slow_first_seconds: float = 1.0,
) -> FakeServer:
    """Start the server in a subprocess on a free loopback port; return its handle when it answers.

    Args:
        delay: seconds before every chat reply.
        slow_seconds: how long the ``slow`` fault sleeps.
        batch_delay: seconds a batch stays ``in_progress``.
        stream_tokens: streamed replies (not matched by a script rule) are this many words.
        token_rate: chunks (words) per second of a streamed reply; None sends them at once.
        slow_first_seconds: how long the ``slow_first`` fault waits before the first token.
    """
    port = find_free_port()
    extra = ["--slow-first-seconds", str(slow_first_seconds)]
    if stream_tokens is not None:
        extra += ["--stream-tokens", str(stream_tokens)]
    if token_rate is not None:
        extra += ["--token-rate", str(token_rate)]
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__)),
            "--port",
            str(port),
            "--delay",
            str(delay),
            "--slow-seconds",
            str(slow_seconds),
            "--batch-delay",
            str(batch_delay),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = FakeServer(port, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"fake server died: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            httpx.get(f"{server.url}/_calls", timeout=0.5)
            return server
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("fake server did not start")


def stop_fake_server(server: FakeServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
    for pipe in (server.proc.stdout, server.proc.stderr):
        if pipe is not None:
            pipe.close()


def main() -> None:
    """Serve the fake API with uvicorn (one worker)."""
    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--slow-seconds", type=float, default=5.0)
    ap.add_argument("--batch-delay", type=float, default=0.5)
    ap.add_argument("--stream-tokens", type=int, default=None, help="words per streamed reply")
    ap.add_argument("--token-rate", type=float, default=None, help="streamed words per second")
    ap.add_argument("--slow-first-seconds", type=float, default=1.0)
    args = ap.parse_args()
    app = FakeOpenAI(
        delay=args.delay,
        slow_seconds=args.slow_seconds,
        batch_delay=args.batch_delay,
        stream_tokens=args.stream_tokens,
        token_rate=args.token_rate,
        slow_first_seconds=args.slow_first_seconds,
    )
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="critical", access_log=False, backlog=2048
    )


if __name__ == "__main__":
    main()
