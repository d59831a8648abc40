"""Streaming chat: one reply as it is generated, token by token, with honest failure modes.

:func:`stream_chat` sends one chat request with ``stream=True`` to an OpenAI-compatible endpoint
and yields events: :class:`StreamDelta` for each piece of new text, :class:`StreamRetry` while
it waits to try again, and one :class:`StreamDone` at the end. It uses the endpoint's client
(:func:`preflab.generate.endpoints.make_client`) and the same failure rules as
:func:`~preflab.generate.endpoints.complete_chat`, with one difference that streaming forces:

- *before the first token* every transient failure (429 with Retry-After, 5xx, timeouts,
  refused or dropped connections, a body that is not an event stream of JSON chunks, a stream
  that ends with no text) is retried with capped backoff, and a :class:`StreamRetry` says so;
- *after the first token* a dropped connection, a chunk that is not JSON or a stream that ends
  without a ``finish_reason`` raises :class:`StreamBrokenError`: the text so far is not an
  answer, and a silent retry would show the reader text that changes under their eyes.

The chunks are read from the raw HTTP response (an SSE parser over bytes, ``json.loads`` per
chunk) rather than through the SDK's per-chunk model objects: a live session runs dozens of
streams at tens of chunks per second each, and the SDK objects cost several times more CPU per
chunk than the text they carry.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from preflab.errors import EndpointError, StreamBrokenError
from preflab.generate.endpoints import (
    EndpointConfig,
    Retryable,
    _call_options,
    _chat_url,
    _status_reason,
    attempt_error,
    backoff_wait,
    make_client,
    shorten,
)

if TYPE_CHECKING:
    import openai

__all__ = [
    "EndpointLimiter",
    "StreamBrokenError",
    "StreamDelta",
    "StreamDone",
    "StreamEvent",
    "StreamRetry",
    "stream_chat",
]


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """New text of the reply since the previous event (never empty)."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamRetry:
    """An attempt failed before any text arrived; the next one starts after ``wait`` seconds.

    Attributes:
        attempt: the attempt that failed (1-based).
        wait: seconds until the next attempt.
        reason: what went wrong (``HTTP 429: slow down``, ``timed out after 60 s``…).
        status: the HTTP status, when the server answered one.
    """

    attempt: int
    wait: float
    reason: str
    status: int | None = None

    def describe(self) -> str:
        """Return a line for a person: ``rate limited (HTTP 429), retrying in 2 s``.

        >>> StreamRetry(1, 2.0, "HTTP 429: slow down", 429).describe()
        'rate limited (HTTP 429), retrying in 2 s'
        >>> StreamRetry(2, 0.5, "timed out after 60 s").describe()
        'timed out after 60 s, retrying in 0.5 s'
        """
        what = "rate limited (HTTP 429)" if self.status == 429 else self.reason
        return f"{what}, retrying in {self.wait:.2g} s"


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The reply is complete (the server sent a ``finish_reason``).

    Attributes:
        text: the whole reply (the deltas joined).
        finish_reason: ``stop``, ``length``… as the server sent it.
        ttft_ms: milliseconds from the call to the first text (queueing and retries included).
        latency_ms: milliseconds from the call to the end of the reply.
        prompt_tokens: from the server's usage chunk, None when it sent none.
        completion_tokens: likewise.
        attempts: attempts it took (1 when the first one went through).
    """

    text: str
    finish_reason: str | None
    ttft_ms: float
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int


StreamEvent = StreamDelta | StreamRetry | StreamDone


class EndpointLimiter:
    """Requests in flight per endpoint, shared by every stream of a process.

    One gate per key (the server keys by project and endpoint name); a gate admits ``limit``
    holders at once, first come first served. The limit is the one given by the latest
    :meth:`slot` call, so an endpoint whose concurrency an admin changes takes the new limit
    at once, without a restart (holders above a lowered limit finish; nobody new enters until
    the count is under it).

    >>> import asyncio
    >>> async def demo():
    ...     limiter = EndpointLimiter()
    ...     async with limiter.slot("p1:gpt", 2):
    ...         return limiter.active("p1:gpt")
    >>> asyncio.run(demo())
    1
    """

    def __init__(self) -> None:
        self._gates: dict[str, _Gate] = {}

    @contextlib.asynccontextmanager
    async def slot(self, key: str, limit: int) -> AsyncIterator[None]:
        """Hold one of ``limit`` places of ``key`` for the ``async with`` block (waits for one)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate()
        if limit != gate.limit:
            gate.limit = limit
            gate.wake()  # a raised limit lets waiters in now, first come first
        await gate.acquire()
        try:
            yield
        finally:
            gate.release()

    def active(self, key: str) -> int:
        """Return how many holders ``key`` has now."""
        gate = self._gates.get(key)
        return gate.active if gate else 0

    def waiting(self, key: str) -> int:
        """Return how many callers wait for a place of ``key``."""
        gate = self._gates.get(key)
        return sum(1 for f in gate.waiters if not f.done()) if gate else 0


class _Gate:
    """A resizable semaphore: ``active`` holders at most ``limit``, waiters in order."""

    __slots__ = ("active", "limit", "waiters")

    def __init__(self) -> None:
        self.active = 0
        self.limit = 1
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        if self.active < self.limit and not self.waiters:
            self.active += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await fut  # release() hands its place over: ``active`` already counts this caller
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed over just as we were cancelled
                self.release()
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(fut)
            raise

    def release(self) -> None:
        self.active -= 1
        self.wake()

    def wake(self) -> None:
        while self.waiters and self.active < self.limit:
            fut = self.waiters.popleft()
            if not fut.done():
                self.active += 1
                fut.set_result(None)


# Base URLs whose server answered 400 to ``stream_options`` (older vLLM, llama.cpp, some
# proxies): later requests to them leave the field out, for the life of the process.
_NO_STREAM_OPTIONS: set[str] = set()


class _StreamOptionsRefused(Exception):
    """The server refused the ``stream_options`` field; ask again without it."""


async def stream_chat(
    config: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any] | None = None,
    *,
    client: openai.AsyncOpenAI | None = None,
    limiter: EndpointLimiter | None = None,
    limiter_key: str | None = None,
    seed: int | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[StreamDelta | StreamRetry | StreamDone]:
    """Yield one streamed chat reply as events: deltas, retries, then one :class:`StreamDone`.

    Use it under ``contextlib.aclosing`` so that leaving the loop early closes the upstream
    connection at once (cancelling the consuming task does too)::

        async with contextlib.aclosing(stream_chat(cfg, messages, client=client)) as events:
            async for event in events:
                ...

    Args:
        config: the endpoint (``timeout`` per read, ``max_attempts``, backoff, ``concurrency``).
        messages: chat messages, ``{"role", "content"}`` each.
        params: sampling parameters sent as they are (the endpoint's defaults are *not*
            merged here); names the chat API does not know go in the body all the same
            (vLLM's ``top_k``, ``min_p``…).
        client: the endpoint's client (:func:`~preflab.generate.endpoints.make_client`); one
            is made and closed for this call when None.
        limiter: holds one of the endpoint's ``concurrency`` places for the whole call
            (retries included).
        limiter_key: the limiter's key (default: the endpoint's name).
        seed: sampling seed sent to the server.
        rng: jitter source of the backoff (seeded in tests).

    Yields:
        :class:`StreamDelta` per new text, :class:`StreamRetry` before each new attempt, and
        a final :class:`StreamDone`.

    Raises:
        StreamBrokenError: the stream stopped after text had arrived (dropped connection, a
            chunk that is not JSON, no ``finish_reason``); nothing was complete.
        EndpointError: every attempt failed before any text (the message names the last
            reason, ``value`` the attempts), or the server refused the request (4xx).
    """
    started = time.perf_counter()
    own_client = client is None
    if client is None:
        client = make_client(config)
    try:
        if limiter is None:
            gate: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
        else:
            gate = limiter.slot(limiter_key or config.name, config.concurrency)
        async with gate:
            async for event in _attempts(client, config, messages, params, seed, rng, started):
                yield event
    finally:
        if own_client:
            await client.close()


async def _attempts(
    client: openai.AsyncOpenAI,
    config: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any] | None,
    seed: int | None,
    rng: random.Random | None,
    started: float,
) -> AsyncIterator[StreamEvent]:
    body: dict[str, Any] = {"model": config.model, "messages": list(messages), **(params or {})}
    if seed is not None:
        body["seed"] = seed
    body["stream"] = True
    last = ""
    attempt = 0
    asked_without_options = False
    while attempt < config.max_attempts:
        attempt += 1
        with_options = config.base_url not in _NO_STREAM_OPTIONS
        if with_options:
            body["stream_options"] = {"include_usage": True}
        else:
            body.pop("stream_options", None)
        reader = _Reader(started)
        try:
            async for text in reader.read(client, config, body):
                yield StreamDelta(text)
        except _StreamOptionsRefused:
            _NO_STREAM_OPTIONS.add(config.base_url)
            if asked_without_options:  # pragma: no cover - the server refuses in both forms
                raise EndpointError(
                    f"endpoint {config.name!r} refused the request over stream_options"
                ) from None
            asked_without_options = True
            attempt -= 1  # not the endpoint's failure: ask again at once, without the field
            continue
        except Retryable as exc:
            last = exc.reason
            if attempt == config.max_attempts:
                break
            wait = backoff_wait(config, attempt, exc.wait, rng)
            yield StreamRetry(attempt, wait, exc.reason, exc.status)
            await asyncio.sleep(wait)
            continue
        except EndpointError as exc:
            if exc.value is None:
                exc.value = attempt
            raise
        now = time.perf_counter()
        yield StreamDone(
            text="".join(reader.parts),
            finish_reason=reader.finish,
            ttft_ms=(reader.first_at - started) * 1000.0,
            latency_ms=(now - started) * 1000.0,
            prompt_tokens=reader.prompt_tokens,
            completion_tokens=reader.completion_tokens,
            attempts=attempt,
        )
        return
    raise EndpointError(
        f"endpoint {config.name!r} failed {config.max_attempts} times before any text; "
        f"last: {last}",
        value=config.max_attempts,
    )


class _Reader:
    """One attempt: opens the stream, parses its events, keeps text, finish and usage."""

    __slots__ = (
        "completion_tokens",
        "finish",
        "first_at",
        "parts",
        "prompt_tokens",
        "started",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        self.parts: list[str] = []
        self.finish: str | None = None
        self.first_at = 0.0
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    async def read(
        self, client: openai.AsyncOpenAI, config: EndpointConfig, body: dict[str, Any]
    ) -> AsyncIterator[str]:
        """Yield the new text of each chunk; raise Retryable / StreamBrokenError on failure."""
        response = await _open(client, config, body)
        try:
            # SSE framing (WHATWG HTML §9.2.6): ``data:`` lines of one event are joined with
            # "\n" and dispatched at the blank line; comments (":") and other fields ignored.
            buf = b""
            data: list[bytes] = []
            try:
                async for raw in response.aiter_bytes():
                    buf = buf + raw if buf else raw
                    while True:
                        nl = buf.find(b"\n")
                        if nl < 0:
                            break
                        line = buf[:nl]
                        buf = buf[nl + 1 :]
                        if line.endswith(b"\r"):
                            line = line[:-1]
                        if line:
                            if line.startswith(b"data:"):
                                value = line[5:]
                                data.append(value[1:] if value.startswith(b" ") else value)
                            continue
                        if not data:
                            continue
                        payload = data[0] if len(data) == 1 else b"\n".join(data)
                        data = []
                        if payload == b"[DONE]":
                            self._end(config)
                            return
                        text = self._event(payload, config)
                        if text:
                            if not self.parts:
                                self.first_at = time.perf_counter()
                            self.parts.append(text)
                            yield text
            except _transport_errors() as exc:  # dropped or stalled while reading
                if _is_timeout(exc):
                    self._fail(f"no data for {config.timeout:g} s (read timed out)", config)
                self._fail(f"connection dropped: {type(exc).__name__}: {shorten(exc)}", config)
            if data:  # a last event without its blank line
                payload = b"\n".join(data)
                if payload != b"[DONE]":
                    text = self._event(payload, config)
                    if text:
                        if not self.parts:
                            self.first_at = time.perf_counter()
                        self.parts.append(text)
                        yield text
            self._end(config)
        finally:
            await response.aclose()

    def _event(self, payload: bytes, config: EndpointConfig) -> str:
        """Return the text of one chunk (``choices[0].delta.content``), noting finish and usage."""
        try:
            chunk = json.loads(payload)
            if "error" in chunk:  # vLLM, TGI: an error event inside a 200 stream
                err = chunk["error"]
                msg = err.get("message") if isinstance(err, dict) else err
                self._fail(f"the server sent an error: {shorten(msg)}", config)
            usage = chunk.get("usage")
            if usage:
                self.prompt_tokens = usage.get("prompt_tokens")
                self.completion_tokens = usage.get("completion_tokens")
            text = ""
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if content:
                        text = content if not text else text + content
                reason = choice.get("finish_reason")
                if reason:
                    self.finish = reason
            return text
        except (ValueError, AttributeError, TypeError) as exc:  # not JSON, or not a chunk
            self._fail(f"malformed chunk: {shorten(exc)}: {shorten(payload, 80)}", config)
            raise  # pragma: no cover - _fail always raises

    def _end(self, config: EndpointConfig) -> None:
        """Check how the stream ended: text and a finish_reason, or a failure."""
        if not self.parts:
            raise Retryable(
                "the stream ended before any text"
                + (f" (finish_reason {self.finish})" if self.finish else "")
            )
        if self.finish is None:
            self._fail("the stream ended without a finish_reason", config)

    def _fail(self, reason: str, config: EndpointConfig) -> None:
        """Raise: Retryable before any text, StreamBrokenError after."""
        if not self.parts:
            raise Retryable(reason)
        received = sum(len(p) for p in self.parts)
        raise StreamBrokenError(
            f"endpoint {config.name!r}: the stream broke after {received} characters: {reason}",
            value=received,
        )


async def _open(
    client: openai.AsyncOpenAI, config: EndpointConfig, body: dict[str, Any]
) -> Any:  # Any: the SDK's httpx2.Response, its module imported on first use
    """Send the request; return the HTTP response with its body unread (a stream)."""
    import httpx2
    import openai

    try:
        # cast_to=Response with stream=True: the SDK hands back the response with its body
        # unread (status errors still raised); _call_options() is a plain dict, not the SDK's
        # RequestOptions TypedDict, hence the ignore.
        return await client.post(  # type: ignore[call-overload]
            _chat_url(client),
            content=json.dumps(body, ensure_ascii=False).encode(),
            cast_to=httpx2.Response,
            options=_call_options(),
            stream=True,
        )
    except openai.APIStatusError as exc:
        if (
            exc.status_code in (400, 422)
            and "stream_options" in body
            and "stream_options" in _status_reason(exc)
        ):
            raise _StreamOptionsRefused from None
        raise attempt_error(exc, config) from None
    except (openai.APIConnectionError, openai.APIResponseValidationError) as exc:
        raise attempt_error(exc, config) from None


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """Return the exception types a dropped or stalled stream raises while it is read."""
    import httpx2

    types: list[type[BaseException]] = [httpx2.HTTPError, httpx2.StreamError, OSError]
    try:
        import aiohttp

        types.append(aiohttp.ClientError)  # the aiohttp transport maps most, not all
    except ImportError:
        pass
    return tuple(types)


def _is_timeout(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, (httpx2.TimeoutException, TimeoutError)) and not isinstance(
        exc, httpx2.ConnectTimeout  # the aiohttp transport's name for a dropped connection
    )
