"""A light OpenAI-compatible server for benchmarks only: ``POST /v1/chat/completions``.

It answers every chat request after a fixed delay with a valid chat completion (the reply
echoes the last user message), over HTTP/1.1 keep-alive, on a bare ``asyncio.Protocol`` so that
the server's own CPU per request (~30 µs, against ~250 µs for uvicorn + h11 with the test
server) does not compete with the client being measured on a small machine. ``GET /_calls``
returns ``{"total": N}``. Tests keep using ``tests/generate/fakeserver.py`` (faults, scripts,
streaming); this one has none of that.

Run: ``python bench/loopback_server.py --port 8123 --delay 0.05``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

_CHAT = b"/chat/completions"


class _Counter:
    total = 0


class _Http(asyncio.Protocol):
    """One keep-alive connection: parse requests by Content-Length, answer after ``delay``."""

    def __init__(self, delay: float, counter: _Counter) -> None:
        self.delay = delay
        self.counter = counter
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            method, target = head.split(b" ", 2)[:2]
            self.route(method, target, body)

    def route(self, method: bytes, target: bytes, body: bytes) -> None:
        if method == b"POST" and target.endswith(_CHAT):
            self.counter.total += 1
            req = json.loads(body)
            self.loop.call_later(self.delay, self.answer, req)
        elif target == b"/_calls":
            self.send(200, {"total": self.counter.total})
        else:
            self.send(404, {"error": {"message": f"no route {target.decode()}"}})

    def answer(self, req: dict[str, Any]) -> None:
        messages = req.get("messages") or []
        last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        model = req.get("model", "")
        text = f"echo[{model}|seed={req.get('seed')}]: {last}"
        self.send(
            200,
            {
                "id": f"chatcmpl-{self.counter.total}",
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
                "usage": {
                    "prompt_tokens": len(last.split()),
                    "completion_tokens": len(text.split()),
                    "total_tokens": len(last.split()) + len(text.split()),
                },
            },
        )

    def send(self, status: int, obj: Any) -> None:
        if self.transport is None:
            return
        data = json.dumps(obj).encode()
        reason = b"OK" if status == 200 else b"Not Found"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, reason, len(data), data)
        )


async def serve(port: int, delay: float) -> None:
    """Serve on 127.0.0.1:``port`` until cancelled."""
    loop = asyncio.get_running_loop()
    counter = _Counter()
    server = await loop.create_server(
        lambda: _Http(delay, counter), "127.0.0.1", port, backlog=2048
    )
    async with server:
        await server.serve_forever()


class LoopbackServer:
    """Handle on a running bench server: its URLs and call count."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/v1"

    def total_calls(self) -> int:
        """Return the chat requests served so far."""
        with urllib.request.urlopen(f"{self.url}/_calls", timeout=5) as resp:
            return int(json.loads(resp.read())["total"])


def start_loopback_server(port: int, delay: float) -> LoopbackServer:
    """Start the server in a subprocess and return once it answers."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "--port", str(port), "--delay", str(delay)],
        stdout=subprocess.DEVNULL,
    )
    server = LoopbackServer(port, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bench server exited with code {proc.returncode}")
        try:
            server.total_calls()
            return server
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("bench server did not start")


def stop_loopback_server(server: LoopbackServer) -> None:
    """Stop the server subprocess."""
    server.proc.terminate()
    try:
        server.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def main() -> None:
    """Parse arguments and serve."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.05)
    args = ap.parse_args()
    try:
        # uvloop's timers fire on time (asyncio's own loop answered ~0.8 ms late on average,
        # which the bench would have charged to the client)
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(serve(args.port, args.delay))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
