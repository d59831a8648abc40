"""Worker processes: a job's calls spread over forked children, the parent the one cache writer.

One event loop spends most of a core on the SDK's per-request work (building the request,
the HTTP transport) once a job runs hundreds of requests per second, and the queueing that
follows shows in the wall time. Above a size (see :func:`choose_processes`) a job forks worker
processes; each runs its own event loop and its own chat clients on a share of the
requests and sends each :class:`Outcome` back over a pipe. The parent keeps every write to the
database, so the cache guarantees of :mod:`preflab.generate.jobs` hold unchanged.

The split is fixed when the children start:

- an endpoint's ``concurrency`` (per server, replicas included) is divided among the processes,
  so the total in flight per server stays what the config says; a process with no share of an
  endpoint gets none of its requests;
- ``rate_limit`` is divided in proportion to those shares, so the total rate stays the limit;
- requests go to the processes in proportion to their shares, interleaved.

A child never returns into the parent's code: it ignores SIGINT (the parent decides), dies with
the parent (``PR_SET_PDEATHSIG`` on Linux, and an end-of-file on a pipe only the parent holds
open), and leaves with ``os._exit``. Requests of a child that exits before reporting them are
recorded as failed, with the reason, so a re-run calls them again; none is lost or doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import random
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from preflab.errors import EndpointError, UsageError
from preflab.generate.cache import Outcome
from preflab.generate.endpoints import (
    ChatClient,
    ChatClientFactory,
    EndpointConfig,
    RateLimiter,
    complete_chat,
)
from preflab.generate.fleet import Fleet

__all__ = [
    "MIN_CALLS_PER_PROCESS",
    "MIN_CONCURRENCY_PER_PROCESS",
    "EndpointShare",
    "Workers",
    "call_one",
    "can_fork",
    "choose_processes",
    "split_endpoint",
    "split_requests",
    "start_workers",
]

MIN_CALLS_PER_PROCESS = 250
"""A job forks one worker per this many calls at most (fewer calls stay in-process)."""

MIN_CONCURRENCY_PER_PROCESS = 32
"""A job forks one worker per this many requests in flight at most."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def choose_processes(
    processes: int | None, calls: int, concurrency: int, *, cpus: int | None = None
) -> int:
    """Return how many worker processes a job uses (1: the calls run in this process).

    An explicit ``processes`` is kept (capped at ``calls``). The default forks only on Linux,
    with no other thread running (forking a threaded process is unsafe), and only as many
    workers as ``concurrency // MIN_CONCURRENCY_PER_PROCESS``, ``calls // MIN_CALLS_PER_PROCESS``
    and the CPUs but one allow: the job's own process (the cache writer) and, often, a local
    model server need CPU too; on 2 CPUs, 2 workers measured no faster than 1 loop
    (bench/generate_bench.py) and cost more CPU, so the default stays in-process there.

    >>> choose_processes(None, 300, 64, cpus=8)
    1
    >>> choose_processes(None, 5000, 64, cpus=2)
    1
    >>> choose_processes(3, 2, 64)
    2

    Raises:
        UsageError: ``processes`` is below 1, or above 1 where fork is unavailable.
    """
    if processes is not None:
        if processes < 1:
            raise UsageError(f"processes must be 1 or more, got {processes}")
        if processes > 1 and not hasattr(os, "fork"):
            raise UsageError(
                "processes > 1 needs os.fork, which this platform lacks; use processes=1"
            )
        return max(1, min(processes, calls))
    if not can_fork() or threading.active_count() > 1:
        return 1
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(
        1,
        min(
            (cpus or 1) - 1,
            concurrency // MIN_CONCURRENCY_PER_PROCESS,
            calls // MIN_CALLS_PER_PROCESS,
        ),
    )


def can_fork() -> bool:
    """Return True where the default may fork workers (Linux: fork is cheap and well-behaved)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def _shares(total: int, parts: int, offset: int = 0) -> list[int]:
    """Split ``total`` into ``parts``; the remainder goes to the parts from ``offset`` on."""
    extra = total % parts
    return [total // parts + (1 if (i - offset) % parts < extra else 0) for i in range(parts)]


@dataclass(frozen=True, slots=True)
class EndpointShare:
    """One process's share of an endpoint: its servers (each with its concurrency), its rate."""

    servers: tuple[EndpointConfig, ...]
    rate_limit: float | None

    @property
    def concurrency(self) -> int:
        """Return the requests this share may have in flight, over all its servers."""
        return sum(s.concurrency for s in self.servers)


def split_endpoint(config: EndpointConfig, processes: int) -> list[EndpointShare | None]:
    """Return each process's share of an endpoint (None: no share), totals kept.

    Each server's ``concurrency`` is divided as evenly as it goes (the remainder of the next
    server goes to the next processes, so with replicas a small concurrency still reaches
    every process); ``rate_limit`` is divided in proportion to the shares.

    >>> ep = EndpointConfig(name="a", base_url="http://h:1/v1", model="m", concurrency=3,
    ...                     rate_limit=9.0)
    >>> [(s.concurrency, s.rate_limit) for s in split_endpoint(ep, 2)]
    [(2, 6.0), (1, 3.0)]
    >>> split_endpoint(ep.model_copy(update={"concurrency": 1}), 2)[1] is None
    True
    """
    servers = config.replica_configs()
    total = config.concurrency * len(servers)
    per_server = [
        _shares(config.concurrency, processes, offset=k * config.concurrency)
        for k in range(len(servers))
    ]
    out: list[EndpointShare | None] = []
    for i in range(processes):
        mine = tuple(
            server.model_copy(
                update={"concurrency": shares[i], "rate_limit": None, "replicas": []}
            )
            for server, shares in zip(servers, per_server, strict=True)
            if shares[i]
        )
        if not mine:
            out.append(None)
            continue
        share = sum(s.concurrency for s in mine)
        rate = config.rate_limit * share / total if config.rate_limit else None
        out.append(EndpointShare(mine, rate))
    return out


def split_requests(weights: Sequence[int], items: Sequence[Any]) -> list[list[Any]]:
    """Return ``items`` dealt to ``len(weights)`` lists in proportion to the weights, interleaved.

    Smooth weighted round robin: each item goes to the list furthest behind its share.

    >>> split_requests([2, 1], list("abcdef"))
    [['a', 'c', 'd', 'f'], ['b', 'e']]
    """
    out: list[list[Any]] = [[] for _ in weights]
    total = sum(weights)
    credit = [0] * len(weights)
    for item in items:
        for i, w in enumerate(weights):
            credit[i] += w
        best = max(range(len(weights)), key=lambda i: credit[i])
        credit[best] -= total
        out[best].append(item)
    return out


@dataclass(slots=True)
class _Child:
    pid: int
    conn: Connection
    keys: set[str]
    finished: asyncio.Future[None] | None = None
    status: int = 0


class Workers:
    """Forked worker processes calling a job's requests; see :func:`start_workers`."""

    def __init__(self, children: list[_Child], lifeline: int) -> None:
        self._children = children
        self._lifeline = lifeline  # the write end; the children see end of file when it closes

    @property
    def pids(self) -> list[int]:
        """Return the process ids of the workers."""
        return [c.pid for c in self._children]

    async def run(self, emit: Callable[[Outcome], None], stop: asyncio.Future[Any]) -> None:
        """Pass each outcome to ``emit`` as it arrives; return when every worker has ended.

        A worker that ended before reporting all its requests has the rest emitted as failed,
        with the reason. ``stop`` ending (e.g. the job's writer failed) kills the workers.
        """
        loop = asyncio.get_running_loop()
        children = self._children

        def readable(child: _Child) -> None:
            assert child.finished is not None
            try:
                while child.conn.poll():
                    for outcome in child.conn.recv():
                        child.keys.discard(outcome.request_key)
                        emit(outcome)
            except (EOFError, OSError):
                loop.remove_reader(child.conn.fileno())
                if not child.finished.done():
                    child.finished.set_result(None)

        try:
            for child in children:
                child.finished = loop.create_future()
                loop.add_reader(child.conn.fileno(), readable, child)
            while True:
                waiting = [c.finished for c in children if c.finished and not c.finished.done()]
                if not waiting or stop.done():
                    break
                await asyncio.wait([*waiting, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self._end(loop)
        if stop.done():
            return
        for child in children:
            reason = (
                f"worker process {child.pid} {_describe(child.status)} before this request "
                f"finished; run the job again to call it again"
            )
            for key in sorted(child.keys):
                emit(Outcome(key, None, reason, 0, interrupted=True))

    async def _end(self, loop: asyncio.AbstractEventLoop) -> None:
        for child in self._children:
            if child.finished is None or not child.finished.done():
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(child.conn.fileno())
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
        for child in self._children:
            _, child.status = await asyncio.to_thread(os.waitpid, child.pid, 0)
            child.conn.close()
        os.close(self._lifeline)

    def kill(self) -> None:
        """Kill and reap the workers at once (for a job that ends before :meth:`run`)."""
        for child in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
            child.conn.close()
        os.close(self._lifeline)


def start_workers(
    endpoints: Mapping[str, EndpointConfig],
    pending: Mapping[str, Sequence[Any]],
    processes: int,
    *,
    client_factory: ChatClientFactory,
    seed: int | None = None,
) -> Workers:
    """Fork up to ``processes`` workers calling ``pending`` (``ChatRequest`` by endpoint name).

    Fork before the job starts threads of its own (see :func:`choose_processes`); then await
    :meth:`Workers.run` for the outcomes.
    """
    shares = {name: split_endpoint(endpoints[name], processes) for name in pending}
    work: list[dict[str, list[Any]]] = [{} for _ in range(processes)]
    for name, reqs in pending.items():
        weights = [s.concurrency if s else 0 for s in shares[name]]
        for i, part in enumerate(split_requests(weights, list(reqs))):
            if part:
                work[i][name] = part
    lifeline_r, lifeline_w = os.pipe()
    pipes = [multiprocessing.Pipe(duplex=False) if work[i] else None for i in range(processes)]
    children: list[_Child] = []
    parent_pid = os.getpid()
    try:
        for i, pipe in enumerate(pipes):
            if pipe is None:
                continue
            mine = {n: s for n, ss in shares.items() if (s := ss[i]) is not None}
            child_seed = None if seed is None else seed * 1_000_003 + i
            pid = os.fork()
            if pid == 0:  # the child runs its share and exits: it never returns from here
                os.close(lifeline_w)
                for j, other in enumerate(pipes):
                    if other is not None:
                        other[0].close()
                        if j != i:
                            other[1].close()
                _child_main(
                    parent_pid, lifeline_r, pipe[1], mine, work[i], client_factory, child_seed
                )
            pipe[1].close()
            keys = {r.key for reqs in work[i].values() for r in reqs}
            children.append(_Child(pid, pipe[0], keys))
    except BaseException:
        for pipe in pipes:
            if pipe is not None:
                pipe[1].close()
        os.close(lifeline_r)
        Workers(children, lifeline_w).kill()
        raise
    os.close(lifeline_r)
    return Workers(children, lifeline_w)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)


def _child_main(
    parent_pid: int,
    lifeline: int,
    conn: Connection,
    shares: Mapping[str, EndpointShare],
    work: Mapping[str, list[Any]],
    client_factory: ChatClientFactory,
    seed: int | None,
) -> NoReturn:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent(parent_pid)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(_child_calls(lifeline, conn, shares, work, client_factory, seed))
            except BaseException as exc:  # noqa: BLE001 - reported below, then the child exits
                failure.append(exc)

        # The parent's event loop is "running" in this thread (the fork happened inside it):
        # the child's own loop runs in a new thread, where no loop is running.
        thread = threading.Thread(target=run, name="preflab-worker")
        thread.start()
        thread.join()
        if failure:
            traceback.print_exception(failure[0], file=sys.stderr)
        else:
            code = 0
    finally:
        os._exit(code)


async def _child_calls(
    lifeline: int,
    conn: Connection,
    shares: Mapping[str, EndpointShare],
    work: Mapping[str, list[Any]],
    client_factory: ChatClientFactory,
    seed: int | None,
) -> None:
    loop = asyncio.get_running_loop()
    loop.add_reader(lifeline, os._exit, 1)  # end of file: the parent is gone
    rng = random.Random(seed)
    outbox: list[Outcome] = []

    def send() -> None:
        batch = outbox[:]
        outbox.clear()
        conn.send(batch)

    def emit(outcome: Outcome) -> None:
        outbox.append(outcome)
        if len(outbox) == 1:  # everything finished in this loop turn goes in one message
            loop.call_soon(send)

    clients: list[ChatClient] = []
    workers: list[Coroutine[Any, Any, None]] = []
    for name, reqs in work.items():
        share = shares[name]
        todo = list(reversed(reqs))
        try:
            group = [client_factory(server) for server in share.servers]
        except Exception as exc:  # noqa: BLE001 - every request of the endpoint fails with it
            for r in reqs:
                emit(Outcome(r.key, None, f"{type(exc).__name__}: {exc}", 0))
            continue
        clients.extend(group)
        limiter = RateLimiter(share.rate_limit)
        if len(group) > 1:  # replicas: least outstanding requests, failing servers taken out
            fleet = Fleet(list(zip(share.servers, group, strict=True)))
            for _ in range(min(fleet.concurrency, len(reqs))):
                workers.append(_fleet_work(todo, fleet, limiter, rng, emit))
            continue
        for client, server in zip(group, share.servers, strict=True):
            for _ in range(min(server.concurrency, len(reqs))):
                workers.append(_work(todo, client, server, limiter, rng, emit))
    try:
        await asyncio.gather(*workers)
    finally:
        for client in clients:
            await client.close()
        if outbox:
            send()


async def _work(
    todo: list[Any],
    client: ChatClient,
    cfg: EndpointConfig,
    limiter: RateLimiter,
    rng: random.Random,
    emit: Callable[[Outcome], None],
) -> None:
    while todo:
        r = todo.pop()
        emit(await call_one(r, client, cfg, limiter, rng))


async def _fleet_work(
    todo: list[Any],
    fleet: Fleet,
    limiter: RateLimiter,
    rng: random.Random,
    emit: Callable[[Outcome], None],
) -> None:
    while todo:
        emit(await fleet.call(todo.pop(), limiter, rng))


async def call_one(
    r: Any,
    client: ChatClient,
    cfg: EndpointConfig,
    limiter: RateLimiter,
    rng: random.Random,
) -> Outcome:
    """Return the outcome of one request (``ChatRequest``): its reply, or why it failed.

    (``r`` is typed Any: ``jobs``, which defines ``ChatRequest``, imports this module.)
    """
    try:
        await limiter.wait()
        reply = await complete_chat(client, cfg, r.messages, r.params, r.seed, rng=rng)
    except EndpointError as exc:
        attempts = exc.value if isinstance(exc.value, int) else cfg.max_attempts
        return Outcome(r.key, None, exc.message, attempts)
    except Exception as exc:  # noqa: BLE001 - never lose a request: record why it failed
        return Outcome(r.key, None, f"{type(exc).__name__}: {exc}", 1)
    return Outcome(
        r.key,
        reply.to_json(),
        None,
        reply.attempts,
        reply.prompt_tokens,
        reply.completion_tokens,
    )
