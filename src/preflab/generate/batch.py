"""Calls through an OpenAI-compatible batch API (``/v1/files``, ``/v1/batches``).

A job run with ``via="batch"`` writes its pending requests to the cache as usual, then per
endpoint uploads them as JSONL (one chat completion per line, ``custom_id`` = the request's
cache key), creates a batch, polls it until it ends, downloads the output and error files and
maps each line back to its request by ``custom_id``. Each batch's results are committed as
soon as it is downloaded.

Nothing is submitted twice. Every batch is created with metadata naming the job
(``preflab_job``) and its id is recorded in the job's row right after creation; a re-run
(after ``kill -9`` at any point) first gathers the job's batches, from that record and from the
server's batch list (which covers a crash between creation and the record), reads which
requests each one carries from its input file, and submits only requests that no live batch
carries. Batches that failed, expired or were cancelled carry nothing (their partial output is
still read); their unanswered requests are failed with the reason, and called again with
``retry_failed``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import openai
from sqlalchemy import Engine

from preflab.errors import EndpointError
from preflab.generate.cache import (
    Outcome,
    insert_pending,
    job_config,
    record_outcomes,
    upsert_job,
)
from preflab.generate.endpoints import (
    ClientFactory,
    EndpointConfig,
    Retryable,
    reply_from_json,
    shorten,
)
from preflab.store.unit_of_work import write_scope

if TYPE_CHECKING:  # jobs imports this module when a job runs via="batch"
    from preflab.generate.jobs import JobSummary

__all__ = ["MAX_REQUESTS_PER_BATCH", "BatchRef", "batch_lines", "run_batches"]

MAX_REQUESTS_PER_BATCH = 50_000
"""OpenAI's limit of requests in one batch input file."""

_DONE = frozenset({"completed"})
_DEAD = frozenset({"failed", "expired", "cancelled"})
_T = TypeVar("_T")


@dataclass(slots=True)
class BatchRef:
    """A batch of this job on the server: its id, endpoint, and the request keys it carries."""

    batch_id: str
    endpoint: str
    keys: set[str] = field(default_factory=set)
    status: str = "validating"


def batch_lines(requests: Sequence[Any], config: EndpointConfig) -> bytes:
    """Return the JSONL input file of ``requests`` (``ChatRequest``) for ``config``'s model.

    >>> from preflab.generate.jobs import make_request
    >>> ep = EndpointConfig(name="a", base_url="http://h:1/v1", model="m")
    >>> r = make_request(ep, [{"role": "user", "content": "hi"}], seed=1)
    >>> json.loads(batch_lines([r], ep))["body"]["seed"]
    1
    """
    out = []
    for r in requests:
        body: dict[str, Any] = {"model": config.model, "messages": [dict(m) for m in r.messages]}
        body.update(r.params)
        if r.seed is not None:
            body["seed"] = r.seed
        line = {"custom_id": r.key, "method": "POST", "url": "/v1/chat/completions", "body": body}
        out.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode("utf-8")


async def _retrying(config: EndpointConfig, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
    """Return ``call()``, retried on transient errors like a chat call (bounded, backed off)."""
    last = ""
    for attempt in range(1, config.max_attempts + 1):
        try:
            return await call()
        except openai.APIStatusError as exc:
            if exc.status_code < 500 and exc.status_code not in (408, 429):
                raise EndpointError(
                    f"endpoint {config.name!r}: {what} refused: HTTP {exc.status_code}: "
                    f"{shorten(exc.body if exc.body is not None else exc)}"
                ) from None
            last = f"HTTP {exc.status_code}"
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            last = f"connection error: {shorten(exc.__cause__ or exc)}"
        if attempt < config.max_attempts:
            await asyncio.sleep(min(config.backoff_max, config.backoff_base * 2 ** (attempt - 1)))
    raise EndpointError(
        f"endpoint {config.name!r}: {what} failed {config.max_attempts} times; last: {last}. "
        "Run the job again to resume: batches already submitted are not submitted again."
    )


async def _content(client: openai.AsyncOpenAI, cfg: EndpointConfig, file_id: str) -> bytes:
    async def get() -> bytes:
        response = await client.files.content(file_id)
        return bytes(response.content)

    return await _retrying(cfg, f"download of file {file_id}", get)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _outcome_of_line(line: Mapping[str, Any], batch_id: str) -> Outcome:
    key = str(line.get("custom_id"))
    response = line.get("response") or {}
    status = response.get("status_code")
    body = response.get("body")
    if status == 200 and isinstance(body, dict):
        try:
            reply = reply_from_json(body)
        except Retryable as exc:
            return Outcome(key, None, f"batch {batch_id}: {exc.reason}", 1)
        return Outcome(key, reply.to_json(), None, 1, reply.prompt_tokens, reply.completion_tokens)
    error = line.get("error")
    if isinstance(body, dict):
        err = body.get("error")
        message = (
            err.get("message")
            if isinstance(err, dict)
            else body.get("detail", err if err is not None else body)
        )
    else:
        message = body
    if error:
        message = error.get("message", error) if isinstance(error, dict) else error
    text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    code = f"HTTP {status}: " if status else ""
    return Outcome(key, None, f"batch {batch_id}: {code}{shorten(text)}", 1)


async def run_batches(
    engine: Engine,
    endpoints: Mapping[str, EndpointConfig],
    to_call: Sequence[Any],
    *,
    job_id: str,
    kind: str,
    total: int,
    summary: JobSummary,
    replies: dict[str, dict[str, Any]],
    failures: dict[str, str],
    client_factory: ClientFactory,
    on_progress: Callable[[int, int], None] | None,
    poll_interval: float,
    max_requests: int = MAX_REQUESTS_PER_BATCH,
) -> None:
    """Call ``to_call`` (``ChatRequest``) through batches; fill ``replies``/``failures``/summary.

    See the module docstring for the steps and the no-double-submission rule.

    Raises:
        EndpointError: the batch API kept failing (upload, create, poll or download); what
            was committed stays, and a re-run resumes the same batches.
    """
    by_endpoint: dict[str, list[Any]] = {}
    for r in to_call:
        by_endpoint.setdefault(r.endpoint, []).append(r)
    summary.planned = {name: len(reqs) for name, reqs in sorted(by_endpoint.items())}

    def store_pending() -> None:
        with write_scope(engine) as conn:
            upsert_job(
                conn,
                job_id,
                kind,
                {"requests": total, "endpoints": sorted(by_endpoint), "via": "batch"},
                "running",
            )
            insert_pending(
                conn, job_id, ({"request_key": r.key, "request": r.to_json()} for r in to_call)
            )

    await asyncio.to_thread(store_pending)
    if on_progress:
        on_progress(summary.cached + summary.failed, total)

    def recorded() -> dict[str, dict[str, Any]]:
        with engine.connect() as conn:
            return dict(job_config(conn, job_id).get("batches") or {})

    def record(conn: Any, batch_id: str, endpoint: str, processed: bool) -> None:
        known = dict(job_config(conn, job_id).get("batches") or {})
        known[batch_id] = {"endpoint": endpoint, "processed": processed}
        upsert_job(conn, job_id, kind, {"batches": known}, "running")

    def remember(batch_id: str, endpoint: str) -> None:
        with write_scope(engine) as conn:
            record(conn, batch_id, endpoint, False)

    def commit(ref: BatchRef, outcomes: list[Outcome]) -> None:
        # the results and the note that this batch is read go in one transaction: a re-run
        # never reads a batch twice, nor skips one whose results were not committed
        with write_scope(engine) as conn:
            record_outcomes(conn, outcomes)
            record(conn, ref.batch_id, ref.endpoint, True)

    wanted = {r.key for r in to_call}
    clients: dict[str, openai.AsyncOpenAI] = {}
    try:
        for name in by_endpoint:
            clients[name] = client_factory(endpoints[name])
        known = await asyncio.to_thread(recorded)
        live: list[BatchRef] = []
        for name, reqs in by_endpoint.items():
            cfg, client = endpoints[name], clients[name]
            ids = {bid for bid, note in known.items() if note["endpoint"] == name}
            ids |= await _listed(client, cfg, job_id)
            covered: set[str] = set()
            for bid in sorted(ids):
                if known.get(bid, {}).get("processed"):
                    continue  # its results are committed; what it failed goes again if asked
                batch = await _retrying(
                    cfg, f"lookup of batch {bid}", functools.partial(client.batches.retrieve, bid)
                )
                if bid not in known:  # created by a run that died before recording it
                    await asyncio.to_thread(remember, bid, name)
                text = await _content(client, cfg, batch.input_file_id)
                keys = {
                    json.loads(line)["custom_id"] for line in text.decode().splitlines() if line
                } & wanted
                if batch.status in _DEAD:  # what it answered stands; the rest goes again
                    keys &= (await _result_lines(client, cfg, batch)).keys()
                if not keys:
                    continue
                covered |= keys
                live.append(BatchRef(bid, name, keys, batch.status))
            rest = [r for r in reqs if r.key not in covered]
            for chunk in _chunks(rest, max_requests):
                ref = await _submit(client, cfg, chunk, job_id)
                await asyncio.to_thread(remember, ref.batch_id, name)
                live.append(ref)
        summary.batches = len(live)
        await _follow(live, endpoints, clients, poll_interval, summary, replies, failures, commit)
        if on_progress:
            on_progress(summary.done + summary.cached + summary.failed, total)
    finally:
        for client in clients.values():
            await client.close()
    with write_scope(engine) as conn:
        upsert_job(conn, job_id, kind, {}, "done" if not failures else "failed")


async def _listed(client: openai.AsyncOpenAI, cfg: EndpointConfig, job_id: str) -> set[str]:
    """Return the ids of the server's batches made for ``job_id`` (empty if it cannot list)."""
    found: set[str] = set()
    try:
        async for batch in client.batches.list(limit=100):
            if (batch.metadata or {}).get("preflab_job") == job_id:
                found.add(batch.id)
    except (openai.NotFoundError, openai.BadRequestError):
        return set()  # a server without the list route: the job's own record must do
    except openai.APIError as exc:
        raise EndpointError(
            f"endpoint {cfg.name!r}: listing batches failed ({shorten(exc)}); run the job again "
            "to resume"
        ) from None
    return found


async def _submit(
    client: openai.AsyncOpenAI, cfg: EndpointConfig, chunk: Sequence[Any], job_id: str
) -> BatchRef:
    data = batch_lines(chunk, cfg)
    digest = hashlib.sha256(data).hexdigest()[:16]
    upload = await _retrying(
        cfg,
        "upload of the batch input",
        lambda: client.files.create(file=(f"{job_id}-{digest}.jsonl", data), purpose="batch"),
    )
    batch = await _retrying(
        cfg,
        "creation of the batch",
        lambda: client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"preflab_job": job_id, "preflab_input": digest},
        ),
    )
    return BatchRef(batch.id, cfg.name, {r.key for r in chunk}, batch.status)


async def _follow(
    live: list[BatchRef],
    endpoints: Mapping[str, EndpointConfig],
    clients: Mapping[str, openai.AsyncOpenAI],
    poll_interval: float,
    summary: JobSummary,
    replies: dict[str, dict[str, Any]],
    failures: dict[str, str],
    commit: Callable[[BatchRef, list[Outcome]], None],
) -> None:
    """Poll every batch until it ends; download, map and commit each one's results."""
    waiting = list(live)
    while waiting:
        still: list[BatchRef] = []
        for ref in waiting:
            cfg, client = endpoints[ref.endpoint], clients[ref.endpoint]
            batch = await _retrying(
                cfg,
                f"poll of batch {ref.batch_id}",
                functools.partial(client.batches.retrieve, ref.batch_id),
            )
            ref.status = batch.status
            if batch.status not in _DONE | _DEAD:
                still.append(ref)
                continue
            lines = await _result_lines(client, cfg, batch)
            outcomes = {
                key: _outcome_of_line(line, ref.batch_id)
                for key, line in lines.items()
                if key in ref.keys
            }
            why = _batch_errors(batch)
            for key in sorted(ref.keys - outcomes.keys()):
                outcomes[key] = Outcome(
                    key, None, f"batch {ref.batch_id} {batch.status} without a result for this "
                    f"request{why}", 0
                )
            batch_outcomes = list(outcomes.values())
            await asyncio.to_thread(commit, ref, batch_outcomes)
            summary.count_committed(batch_outcomes, replies, failures)
        waiting = still
        if waiting:
            await asyncio.sleep(poll_interval)


async def _result_lines(
    client: openai.AsyncOpenAI, cfg: EndpointConfig, batch: Any
) -> dict[str, dict[str, Any]]:
    """Return the output and error lines of a batch by ``custom_id`` (the first line wins)."""
    out: dict[str, dict[str, Any]] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        for raw in (await _content(client, cfg, file_id)).decode().splitlines():
            if raw.strip():
                line = json.loads(raw)
                out.setdefault(str(line.get("custom_id")), line)
    return out


def _batch_errors(batch: Any) -> str:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    messages = [getattr(e, "message", None) for e in data]
    text = "; ".join(m for m in messages if m)
    return f": {shorten(text)}" if text else ""
