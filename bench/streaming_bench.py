"""Benchmark of the streaming client (``preflab.generate.streaming.stream_chat``): CPU per chunk.

Starts the test server (``tests/generate/fakeserver.py``) with ``--stream-tokens`` and
``--token-rate``, runs ``--streams`` concurrent streams in this process and prints the client
process's CPU time per chunk received (the server runs in its own process and is not counted),
beside the same streams read through the SDK's own stream objects
(``client.chat.completions.create(stream=True)``), so the figure shows what reading the raw
event stream saves. Also prints the median time to first token.

Run: ``.venv/bin/python bench/streaming_bench.py [--streams 64] [--tokens 100] [--rate 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "generate"))

from fakeserver import start_fake_server, stop_fake_server

from preflab.generate.endpoints import make_client
from preflab.generate.streaming import StreamDelta, StreamDone, stream_chat


async def _ours(cfg, client, i: int) -> tuple[int, float]:
    chunks, ttft = 0, 0.0
    msgs = [{"role": "user", "content": f"stream {i}"}]
    async with contextlib.aclosing(stream_chat(cfg, msgs, client=client)) as events:
        async for ev in events:
            if isinstance(ev, StreamDelta):
                chunks += 1
            elif isinstance(ev, StreamDone):
                ttft = ev.ttft_ms
    return chunks, ttft


async def _sdk(cfg, client, i: int) -> tuple[int, float]:
    chunks, ttft, t0 = 0, 0.0, time.perf_counter()
    stream = await client.chat.completions.create(
        model=cfg.model,
        messages=[{"role": "user", "content": f"stream {i}"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                if not chunks:
                    ttft = (time.perf_counter() - t0) * 1000
                chunks += 1
    return chunks, ttft


async def _run(kind: str, cfg, streams: int) -> None:
    client = make_client(cfg)
    fn = _ours if kind == "stream_chat" else _sdk
    await fn(cfg, client, -1)  # warm up: imports, connection
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(fn(cfg, client, i) for i in range(streams)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await client.close()
    chunks = sum(c for c, _ in results)
    ttft = statistics.median(t for _, t in results)
    print(
        f"{kind:>12}: {streams} streams, {chunks} chunks in {wall:.2f} s wall; "
        f"client CPU {cpu:.3f} s = {cpu / wall * 100:.1f} % of a core, "
        f"{cpu / chunks * 1e6:.1f} µs per chunk; median TTFT {ttft:.1f} ms"
    )


def main() -> None:
    """Run both readers against one paced server and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--rate", type=float, default=50.0)
    args = ap.parse_args()
    server = start_fake_server(stream_tokens=args.tokens, token_rate=args.rate)
    try:
        cfg = server.endpoint(stream=True, concurrency=args.streams, timeout=30.0)
        for kind in ("stream_chat", "sdk"):
            asyncio.run(_run(kind, cfg, args.streams))
    finally:
        stop_fake_server(server)


if __name__ == "__main__":
    main()
