"""Jobs: run many chat requests against endpoints, with a cache that survives ``kill -9``.

A job is a list of :class:`ChatRequest`. Every request to call is stored as a pending row of
``generation_requests`` under its content key (while the first calls are in flight, and always
before any result is committed); requests already ``done`` there are not called again (they
count as *cached*). Each reply is committed (in small batches, by one writer) before it counts
as done, so a job killed at any moment and run again calls only what had no committed result,
and ends with exactly one result per request.

What a re-run calls again is explicit: a request the server failed is called again only with
``retry_failed`` (the summary says how many stay failed), a reply a judge could not read only
with ``retry_unparseable``; a request cut off by a dead worker process is always called again.

An endpoint with ``replicas`` is a fleet (:mod:`preflab.generate.fleet`): least outstanding
requests, failing servers taken out and probed later. With ``via="batch"`` the calls go
through the endpoint's OpenAI-compatible batch API instead (:mod:`preflab.generate.batch`).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine

from preflab.errors import ConfigError, UsageError
from preflab.generate.cache import (
    Outcome,
    insert_pending,
    is_unparseable,
    load_requests,
    record_outcomes,
    upsert_job,
)
from preflab.generate.endpoints import (
    ChatClient,
    ChatClientFactory,
    ClientFactory,
    EndpointConfig,
    RateLimiter,
    make_chat_client,
    make_client,
)
from preflab.generate.fleet import Fleet
from preflab.generate.requests import (
    ChatRequest,
    JobSummary,
    ProgressHook,
    Via,
    make_job_id,
    make_request,
)
from preflab.generate.worker_processes import Workers, call_one, choose_processes, start_workers
from preflab.store.unit_of_work import write_scope

__all__ = [
    "ChatRequest",
    "JobResult",
    "JobSummary",
    "ProgressHook",
    "Via",
    "make_job_id",
    "make_request",
    "run_job",
    "run_job_async",
]


@dataclass(slots=True)
class JobResult:
    """The end of a job: its summary, the stored reply of each request, the failures.

    ``called`` holds the keys called in this run; the others were answered from the cache.
    """

    summary: JobSummary
    requests: list[ChatRequest]
    replies: dict[str, dict[str, Any]]
    failures: dict[str, str]
    called: set[str] = field(default_factory=set)

    def reply_text(self, request: ChatRequest) -> str | None:
        """Return the reply text of ``request``, or None if it failed or was not run."""
        reply = self.replies.get(request.key)
        return None if reply is None else str(reply["content"])


async def run_job_async(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    requests: Sequence[ChatRequest],
    *,
    kind: str = "generate",
    job_id: str | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    retry_unparseable: bool = False,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
    flush_interval: float = 0.02,
    seed: int | None = None,
    processes: int | None = None,
    via: Via = "online",
    poll_interval: float = 5.0,
) -> JobResult:
    """Run ``requests`` (see :func:`run_job`, which wraps this coroutine)."""
    start = time.perf_counter()
    unique: dict[str, ChatRequest] = {}
    for r in requests:
        if r.endpoint not in endpoints:
            raise UsageError(
                f"request names endpoint {r.endpoint!r}, which is not configured "
                f"(known: {', '.join(sorted(endpoints)) or 'none'})"
            )
        unique.setdefault(r.key, r)
    todo_all = list(unique.values())
    jid = job_id or make_job_id(kind, todo_all)
    summary = JobSummary(job_id=jid, total=len(todo_all), dry_run=dry_run, via=via)

    with engine.connect() as conn:
        stored = load_requests(conn, list(unique))
    replies: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    to_call: list[ChatRequest] = []
    for r in todo_all:
        row = stored.get(r.key)
        if (
            row is not None
            and row.status == "done"
            and row.result is not None
            and not (retry_unparseable and is_unparseable(row))
        ):
            replies[r.key] = row.result
            summary.cached += 1
        elif row is not None and row.status == "failed" and not retry_failed:
            failures[r.key] = row.error or "failed"
            summary.failed += 1
            summary.failed_earlier += 1
        else:
            to_call.append(r)
    summary.planned = dict(collections.Counter(r.endpoint for r in to_call))
    if dry_run:
        summary.elapsed = time.perf_counter() - start
        return JobResult(summary, todo_all, replies, failures)
    called: set[str] = {r.key for r in to_call}
    if client_factory is None:  # the SDK for the batch API, the lean transport for calls
        client_factory = make_client if via == "batch" else make_chat_client
    if via == "batch":
        from preflab.generate.batch import run_batches

        await run_batches(
            engine,
            endpoints,
            to_call,
            job_id=jid,
            kind=kind,
            total=len(todo_all),
            summary=summary,
            replies=replies,
            failures=failures,
            client_factory=cast(ClientFactory, client_factory),
            on_progress=on_progress,
            poll_interval=poll_interval,
        )
        summary.elapsed = time.perf_counter() - start
        return JobResult(summary, todo_all, replies, failures, called)

    # Workers are forked first, while this job runs no thread of its own (the pending rows
    # are stored from a thread below).
    pending = {
        name: collections.deque(r for r in to_call if r.endpoint == name)
        for name in sorted(summary.planned)
    }
    in_flight = sum(endpoints[n].concurrency * (1 + len(endpoints[n].replicas)) for n in pending)
    summary.processes = choose_processes(processes, len(to_call), in_flight)
    workers: Workers | None = None
    # one client per server; an endpoint with replicas has several
    clients: dict[str, list[ChatClient]] = {}
    try:
        for name in pending:
            clients[name] = [client_factory(c) for c in endpoints[name].replica_configs()]
    except ConfigError:
        await _close(clients)
        raise
    if summary.processes > 1:
        # Built here all the same: a config error surfaces in this process, and what a client
        # builds once per process (the TLS context: ~40 ms) is inherited by the workers, which
        # build their own clients.
        await _close(clients)
        clients = {}
        workers = start_workers(
            endpoints, pending, summary.processes, client_factory=client_factory, seed=seed
        )

    def store_pending() -> None:
        with write_scope(engine) as conn:
            upsert_job(
                conn,
                jid,
                kind,
                {"requests": len(todo_all), "endpoints": sorted(summary.planned)},
                "running",
            )
            insert_pending(
                conn, jid, ({"request_key": r.key, "request": r.to_json()} for r in to_call)
            )

    # The pending rows are written (in a thread) while the first calls are in flight; the
    # writer commits no result before they are stored, so a row is pending before it is done.
    pending_stored = asyncio.ensure_future(asyncio.to_thread(store_pending))
    if on_progress:
        on_progress(summary.cached + summary.failed, summary.total)

    # Each server gets ``concurrency`` workers that take the endpoint's next request: at most
    # that many in flight per server, and a free replica picks up work as soon as it is free.
    # (A fixed pool instead of one task per request: 64 tasks, not 2,000 tasks and semaphores.)
    limiters = {name: RateLimiter(endpoints[name].rate_limit) for name in clients}
    rng = random.Random(seed)
    queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
    closing = asyncio.get_running_loop().create_future()

    async def work(name: str, client: ChatClient, cfg: EndpointConfig) -> None:
        todo, limiter = pending[name], limiters[name]
        while todo and not writer_task.done():  # a failed store stops the calls; it surfaces below
            queue.put_nowait(await call_one(todo.popleft(), client, cfg, limiter, rng))

    async def fleet_work(name: str, fleet: Fleet) -> None:
        todo, limiter = pending[name], limiters[name]
        while todo and not writer_task.done():
            queue.put_nowait(await fleet.call(todo.popleft(), limiter, rng))

    def workers_of(name: str) -> list[Any]:
        group, configs = clients[name], endpoints[name].replica_configs()
        if len(group) > 1:  # replicas: one fleet, least outstanding requests
            fleet = Fleet(list(zip(configs, group, strict=True)))
            n = min(fleet.concurrency, len(pending[name]))
            return [fleet_work(name, fleet) for _ in range(n)]
        return [
            work(name, client, cfg)
            for client, cfg in zip(group, configs, strict=True)
            for _ in range(min(cfg.concurrency, len(pending[name])))
        ]

    def flush(batch: list[Outcome]) -> None:
        with write_scope(engine) as conn:
            record_outcomes(conn, batch)

    async def writer() -> None:
        finished = False
        while not finished:
            item = await queue.get()
            if item is None:
                break
            # let more replies arrive, then commit them together (the last batch goes at once)
            if flush_interval > 0 and not closing.done():
                await asyncio.wait([closing], timeout=flush_interval)
            await pending_stored
            batch = [item]
            while not queue.empty():
                nxt = queue.get_nowait()
                if nxt is None:
                    finished = True
                    break
                batch.append(nxt)
            await asyncio.to_thread(flush, batch)
            summary.count_committed(batch, replies, failures)
            if on_progress:
                on_progress(summary.done + summary.cached + summary.failed, summary.total)

    writer_task = asyncio.create_task(writer())
    try:
        if workers is not None:
            await workers.run(queue.put_nowait, writer_task)
        else:
            await asyncio.gather(*(w for name in clients for w in workers_of(name)))
    finally:
        closing.set_result(None)
        queue.put_nowait(None)
        try:
            await writer_task
        finally:
            await _close(clients)
            await pending_stored  # its error, if any, when no result came to wait for it
    with write_scope(engine) as conn:
        upsert_job(conn, jid, kind, {}, "done" if not failures else "failed")
    summary.elapsed = time.perf_counter() - start
    return JobResult(summary, todo_all, replies, failures, called)


async def _close(clients: Mapping[str, Sequence[ChatClient]]) -> None:
    for group in clients.values():
        for client in group:
            await client.close()


def run_job(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    requests: Sequence[ChatRequest],
    *,
    kind: str = "generate",
    job_id: str | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
    retry_unparseable: bool = False,
    client_factory: ChatClientFactory | None = None,
    on_progress: ProgressHook | None = None,
    seed: int | None = None,
    processes: int | None = None,
    via: Via = "online",
    poll_interval: float = 5.0,
) -> JobResult:
    """Run a job to its end and return what every request came to.

    Args:
        engine: workspace database (see :func:`preflab.generate.cache.open_engine`).
        endpoints: configured endpoints by name.
        requests: the calls (duplicates by key are called once).
        kind: job kind stored with the job (``generate``, ``judge``…).
        job_id: job id; by default derived from the kind and the request keys.
        dry_run: only count what would be called per endpoint; nothing is called or written.
        retry_failed: call again requests stored as failed by an earlier run (otherwise they
            stay failed and are counted in ``summary.failed_earlier``).
        retry_unparseable: call again requests whose stored reply a judge marked unreadable.
        client_factory: builds the client of each server (tests point it at loopback). By
            default online calls go through the lean transport
            (:func:`~preflab.generate.endpoints.make_chat_client`: JSON over aiohttp, the
            SDK only for streamed endpoints) and ``via="batch"`` through the SDK
            (:func:`~preflab.generate.endpoints.make_client`); a factory given for
            ``via="batch"`` must return SDK clients.
        on_progress: called with ``(finished, total)`` after each committed batch.
        seed: seed of the backoff jitter.
        processes: worker processes that make the calls (this process stays the one writer
            of the cache); None picks by job size, CPUs and concurrency (see
            :func:`preflab.generate.worker_processes.choose_processes`), 1 calls in-process.
        via: ``online`` (one HTTP call per request) or ``batch`` (the endpoint's batch API:
            upload, poll, download; see :mod:`preflab.generate.batch`).
        poll_interval: seconds between polls of a submitted batch.

    Raises:
        UsageError: a request names an endpoint that is not configured, or ``processes`` is
            not usable here.
        ConfigError: an endpoint's API key variable is unset.
    """
    job = run_job_async(
        engine,
        endpoints,
        requests,
        kind=kind,
        job_id=job_id,
        dry_run=dry_run,
        retry_failed=retry_failed,
        retry_unparseable=retry_unparseable,
        client_factory=client_factory,
        on_progress=on_progress,
        seed=seed,
        processes=processes,
        via=via,
        poll_interval=poll_interval,
    )
    # The objects alive before the job (the imported SDK, SQLAlchemy, pydantic: ~150k) are set
    # aside from the cyclic collector while it runs, so a full collection cannot stall the event
    # loop for tens of milliseconds mid-job; they go back to the collector afterwards.
    gc.freeze()
    try:
        return asyncio.run(job)
    finally:
        gc.unfreeze()
