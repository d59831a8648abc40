"""A fleet: several servers of one model (vLLM or llama.cpp replicas) behind one endpoint.

Each attempt of a request goes to the healthy server with the fewest requests outstanding
(least outstanding requests), never past a server's ``concurrency``. A server whose attempt
fails (connection refused, timeout, 5xx, a malformed body) is taken out for a cool-down that
doubles with each consecutive failure (``backoff_base`` up to ``backoff_max``), and the request
is tried again at once on another server; when the cool-down ends, one request probes the
server, and a success puts it back. A 429 keeps the server in (it is alive, only busy) and
waits as Retry-After says.

Attempts lost to a server that was then taken out do not count against the request's
``max_attempts`` while another server is healthy, and the retry goes to a server that has not
failed this request: a job's results are the same as with one good server. Cache keys use the
endpoint's ``base_url`` whichever server answered, so adding, removing or losing a replica never
re-runs a request.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from preflab.errors import EndpointError
from preflab.generate.cache import Outcome
from preflab.generate.endpoints import (
    ChatClient,
    EndpointConfig,
    RateLimiter,
    Retryable,
    attempt_chat,
)

__all__ = ["Fleet", "FleetServer"]


@dataclass(slots=True)
class FleetServer:
    """One server of a fleet: its config and client, what it holds now, and its health."""

    config: EndpointConfig
    client: ChatClient
    outstanding: int = 0
    down_until: float = 0.0
    failures: int = 0  # consecutive failed attempts
    calls: int = 0
    errors: int = 0

    def is_probing(self, now: float) -> bool:
        """Return True while the server is back from a cool-down but not yet proved healthy."""
        return self.failures > 0 and now >= self.down_until


class Fleet:
    """Spread requests over the servers of one endpoint (see the module docstring).

    Args:
        servers: ``(config, client)`` per server; the first config's name and ``max_attempts``
            and backoff apply to the fleet.
        clock: monotonic clock.
    """

    def __init__(
        self,
        servers: Sequence[tuple[EndpointConfig, ChatClient]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not servers:
            raise ValueError("a fleet needs at least one server")
        self.servers = [FleetServer(cfg, client) for cfg, client in servers]
        self.config = servers[0][0]
        self._clock = clock
        self._changed = asyncio.Condition()
        self._turn = 0

    @property
    def concurrency(self) -> int:
        """Return the requests the fleet may hold at once (the sum over its servers)."""
        return sum(s.config.concurrency for s in self.servers)

    def _pick(self, avoid: Sequence[FleetServer] = ()) -> FleetServer | None:
        now = self._clock()
        usable = [s for s in self.servers if now >= s.down_until]
        # a retry goes to a server that has not failed this request, while one is in
        pool = [s for s in usable if s not in avoid] or usable
        n = len(pool)
        if not n:
            return None
        self._turn = (self._turn + 1) % n  # ties go round, so equal servers share the load
        best: FleetServer | None = None
        for i in range(n):
            s = pool[(self._turn + i) % n]
            limit = 1 if s.is_probing(now) else s.config.concurrency
            if s.outstanding >= limit:
                continue
            if best is None or s.outstanding < best.outstanding:
                best = s
        return best

    def _next_return(self) -> float | None:
        now = self._clock()
        waits = [s.down_until - now for s in self.servers if s.down_until > now]
        return min(waits) if waits else None

    async def _acquire(self, avoid: Sequence[FleetServer] = ()) -> FleetServer:
        async with self._changed:
            while True:
                server = self._pick(avoid)
                if server is not None:
                    server.outstanding += 1
                    return server
                wait = self._next_return()
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)
                except TimeoutError:
                    pass

    async def _release(self, server: FleetServer, ok: bool | None) -> None:
        """Give the slot back; ``ok`` False takes the server out, None leaves its health."""
        async with self._changed:
            server.outstanding -= 1
            server.calls += 1
            if ok:
                server.failures = 0
                server.down_until = 0.0
            elif ok is False:
                server.errors += 1
                server.failures += 1
                cfg = self.config
                first = max(cfg.backoff_base, 0.05)
                cool = min(cfg.backoff_max, first * 2 ** (server.failures - 1))
                server.down_until = self._clock() + cool
            self._changed.notify_all()

    def healthy(self, besides: FleetServer | None = None) -> int:
        """Return how many servers are in (not cooling down), ``besides`` not counted."""
        now = self._clock()
        return sum(1 for s in self.servers if now >= s.down_until and s is not besides)

    async def call(self, r: Any, limiter: RateLimiter, rng: random.Random) -> Outcome:
        """Return the outcome of one request (``ChatRequest``), retried over the fleet."""
        cfg = self.config
        errors: list[str] = []
        counted = 0  # attempts that count against max_attempts
        spared = 0  # attempts forgiven: their server was taken out while another was in
        most_spared = cfg.max_attempts * len(self.servers)
        failed_on: list[FleetServer] = []
        attempts = 0
        await limiter.wait()
        while True:
            server = await self._acquire(failed_on)
            attempts += 1
            try:
                reply = await attempt_chat(
                    server.client, server.config, r.messages, r.params, r.seed
                )
            except Retryable as exc:
                took_out = exc.status != 429
                await self._release(server, False if took_out else None)
                errors.append(f"{server.config.base_url}: {exc.reason}")
                if took_out:
                    failed_on.append(server)
                    if spared < most_spared and self.healthy(besides=server) > 0:
                        spared += 1
                        continue  # another server takes it now
                counted += 1
                if counted >= cfg.max_attempts:
                    return Outcome(
                        r.key,
                        None,
                        f"endpoint {cfg.name!r} failed {attempts} times over "
                        f"{len(self.servers)} servers; last: {errors[-1]}",
                        attempts,
                    )
                wait = exc.wait
                if wait is None:
                    top = cfg.backoff_base * 2 ** (counted - 1)
                    wait = rng.uniform(0, top)
                await asyncio.sleep(min(wait, cfg.backoff_max))
                continue
            except EndpointError as exc:
                await self._release(server, None)
                return Outcome(r.key, None, exc.message, attempts)
            except Exception as exc:  # noqa: BLE001 - never lose a request: record why it failed
                await self._release(server, None)
                return Outcome(r.key, None, f"{type(exc).__name__}: {exc}", attempts)
            await self._release(server, True)
            return Outcome(
                r.key,
                reply.to_json(),
                None,
                attempts,
                reply.prompt_tokens,
                reply.completion_tokens,
            )
