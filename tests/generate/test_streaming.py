"""The streaming chat client against the real loopback server: order, usage, faults, limits."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import pytest

from preflab.errors import EndpointError, StreamBrokenError
from preflab.generate.endpoints import make_client
from preflab.generate.streaming import (
    EndpointLimiter,
    StreamDelta,
    StreamDone,
    StreamRetry,
    stream_chat,
)

from .conftest import fakeserver


def _stream(cfg: Any, content: str, **kw: Any) -> tuple[list[Any], EndpointError | None]:
    """Return every event of one streamed call, and the error that ended it (or None)."""

    async def go() -> tuple[list[Any], EndpointError | None]:
        events: list[Any] = []
        messages = [{"role": "user", "content": content}]
        try:
            async with contextlib.aclosing(
                stream_chat(cfg, messages, rng=random.Random(0), **kw)
            ) as it:
                async for ev in it:
                    events.append(ev)
        except EndpointError as exc:
            return events, exc
        return events, None

    return asyncio.run(go())


def _deltas(events: list[Any]) -> list[str]:
    return [e.text for e in events if isinstance(e, StreamDelta)]


def _wait_until(check: Any, seconds: float = 10.0) -> bool:
    """Poll ``check()`` until it is true or the deadline passes (a wait, not a timing test)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_deltas_arrive_in_order_and_join_to_the_reply(fake) -> None:
    fake.script([{"pattern": "poem", "reply": "alpha beta gamma delta"}])
    events, err = _stream(fake.endpoint(), "a poem please")
    assert err is None
    assert ["alpha", " beta", " gamma", " delta"] == _deltas(events)
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert ("alpha beta gamma delta", "stop", 1) == (done.text, done.finish_reason, done.attempts)
    assert [StreamDone] == [type(e) for e in events if not isinstance(e, StreamDelta)]


def test_usage_comes_from_the_final_chunk(fake) -> None:
    fake.script([{"pattern": "count", "reply": "one two three"}])
    events, _ = _stream(fake.endpoint(), "count to three")
    done = events[-1]
    assert (3, 3) == (done.prompt_tokens, done.completion_tokens)


def test_markdown_and_hostile_html_stream_through_unchanged(fake) -> None:
    reply = (
        "# Title\n\n```python\ndef f(x):\n    return x  # <b>\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script> "
        '<img src=x onerror="alert(2)"> [x](javascript:alert(3))'
    )
    fake.script([{"pattern": "markdown", "reply": reply}])
    events, err = _stream(fake.endpoint(), "markdown please")
    assert err is None
    assert reply == "".join(_deltas(events)) == events[-1].text
    assert len(_deltas(events)) > 10  # word by word, newlines inside the words


def test_paced_stream_has_first_token_before_the_end(start_server) -> None:
    server = start_server(stream_tokens=20, token_rate=50)
    events, err = _stream(server.endpoint(), "go")
    assert err is None
    done = events[-1]
    assert 20 == len(_deltas(events)) == len(done.text.split())
    assert 0 < done.ttft_ms < done.latency_ms


def test_stream_tokens_differ_between_calls_and_models(start_server) -> None:
    server = start_server(stream_tokens=12)
    first, _ = _stream(server.endpoint(), "same prompt")
    again, _ = _stream(server.endpoint(), "same prompt")
    other, _ = _stream(server.endpoint(model="other-model"), "same prompt")
    texts = {first[-1].text, again[-1].text, other[-1].text}
    assert 3 == len(texts)
    assert all(12 == len(t.split()) for t in texts)


def test_rate_limit_then_success_yields_a_retry_then_the_text(fake) -> None:
    events, err = _stream(fake.endpoint(), "hello [[fault:429:1]]")
    assert err is None
    retry = events[0]
    assert isinstance(retry, StreamRetry)
    assert (1, 429, 0.2) == (retry.attempt, retry.status, retry.wait)  # Retry-After: 0.2
    assert "HTTP 429" in retry.reason
    assert "rate limited (HTTP 429), retrying in 0.2 s" == retry.describe()
    done = events[-1]
    assert (2, "echo[fake-model|seed=None]: hello [[fault:429:1]]") == (done.attempts, done.text)
    assert 2 == fake.total_calls()


def test_server_error_then_success_retries(fake) -> None:
    events, err = _stream(fake.endpoint(), "hi [[fault:500:2]]")
    assert err is None
    retries = [e for e in events if isinstance(e, StreamRetry)]
    assert [(1, 500), (2, 500)] == [(r.attempt, r.status) for r in retries]
    assert "injected 500" in retries[0].reason
    assert 3 == events[-1].attempts


def test_break_mid_stream_raises_broken_and_never_done(fake) -> None:
    events, err = _stream(fake.endpoint(), "tell me a story [[fault:break_after:1:3]]")
    assert isinstance(err, StreamBrokenError)
    assert 3 == len(_deltas(events))
    assert not any(isinstance(e, StreamDone | StreamRetry) for e in events)
    assert "connection dropped" in str(err)
    assert len("".join(_deltas(events))) == err.value
    assert 1 == fake.total_calls()  # text was shown: not retried behind the reader's back


def test_junk_chunk_mid_stream_raises_broken(fake) -> None:
    events, err = _stream(fake.endpoint(), "story [[fault:junk_chunk:1:2]]")
    assert isinstance(err, StreamBrokenError)
    assert 2 == len(_deltas(events))
    assert "malformed chunk" in str(err)
    assert not any(isinstance(e, StreamDone) for e in events)


def test_stream_ending_without_finish_reason_is_broken(fake) -> None:
    events, err = _stream(fake.endpoint(), "cut [[fault:truncated_clean:1]]")
    assert isinstance(err, StreamBrokenError)
    assert ["partial"] == _deltas(events)
    assert "finish_reason" in str(err)


@pytest.mark.parametrize("fault", ["junk_chunk:1:0", "malformed:1", "truncated:1"])
def test_failure_before_any_text_is_retried(fake, fault: str) -> None:
    events, err = _stream(fake.endpoint(), f"hi [[fault:{fault}]]")
    if fault == "truncated:1":  # sends one token, then drops: that is a break, not a retry
        assert isinstance(err, StreamBrokenError)
        return
    assert err is None
    assert isinstance(events[0], StreamRetry)
    assert "malformed" in events[0].reason
    assert f"echo[fake-model|seed=None]: hi [[fault:{fault}]]" == events[-1].text
    assert 2 == fake.total_calls()


def test_first_token_slower_than_the_timeout_is_retried(start_server) -> None:
    server = start_server()
    events, err = _stream(server.endpoint(timeout=0.5), "hi [[fault:slow_first:1:1500]]")
    assert err is None
    assert "timed out" in events[0].reason
    assert 2 == events[-1].attempts


def test_every_attempt_failing_raises_endpoint_error_with_the_reason(fake) -> None:
    events, err = _stream(fake.endpoint(max_attempts=3), "hi [[fault:500]]")
    assert type(err) is EndpointError
    assert "failed 3 times" in str(err) and "HTTP 500: injected 500" in str(err)
    assert 3 == err.value
    assert 2 == sum(isinstance(e, StreamRetry) for e in events)


def test_client_error_fails_at_once(fake) -> None:
    events, err = _stream(fake.endpoint(), "hi [[fault:400]]")
    assert type(err) is EndpointError
    assert "refused the request: HTTP 400: injected 400" in str(err)
    assert [] == events
    assert 1 == fake.total_calls()


def test_endpoint_down_raises_a_readable_connection_error() -> None:
    from preflab.generate.endpoints import EndpointConfig

    port = fakeserver.find_free_port()  # nothing listens there
    cfg = EndpointConfig(
        name="down",
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        timeout=2.0,
        max_attempts=3,
        backoff_base=0.01,
    )
    events, err = _stream(cfg, "hi")
    assert type(err) is EndpointError
    assert "endpoint 'down' failed 3 times" in str(err)
    assert "connection error" in str(err)
    assert [1, 2] == [e.attempt for e in events if isinstance(e, StreamRetry)]


def test_server_refusing_stream_options_is_asked_again_without_them(start_server) -> None:
    server = start_server()
    server.refuse_stream_options()
    server.script([{"pattern": "x", "reply": "fine thanks"}])
    events, err = _stream(server.endpoint(), "x")
    assert err is None
    done = events[-1]
    assert ("fine thanks", 1, None) == (done.text, done.attempts, done.completion_tokens)
    assert not any(isinstance(e, StreamRetry) for e in events)  # silent
    _stream(server.endpoint(), "x again")
    assert 1 == server.stream_options_refused()  # remembered for this endpoint


def test_limiter_holds_the_endpoint_concurrency(start_server) -> None:
    server = start_server(stream_tokens=10, token_rate=50)
    cfg = server.endpoint(concurrency=2)
    limiter = EndpointLimiter()

    async def one(i: int, client: Any) -> str:
        async with contextlib.aclosing(
            stream_chat(cfg, [{"role": "user", "content": f"q{i}"}], client=client, limiter=limiter)
        ) as it:
            async for ev in it:
                if isinstance(ev, StreamDone):
                    return ev.text
        raise AssertionError("no StreamDone")

    async def go() -> list[str]:
        client = make_client(cfg.model_copy(update={"concurrency": 8}))
        try:
            return await asyncio.gather(*(one(i, client) for i in range(6)))
        finally:
            await client.close()

    texts = asyncio.run(go())
    assert 6 == len(texts) and all(10 == len(t.split()) for t in texts)
    assert 2 == server.max_inflight()
    assert 0 == limiter.active(cfg.name)


def test_limiter_keys_are_separate_and_a_cancelled_waiter_frees_nothing() -> None:
    async def go() -> tuple[int, int, int, int]:
        limiter = EndpointLimiter()
        entered = asyncio.Event()
        release = asyncio.Event()

        async def hold(key: str) -> None:
            async with limiter.slot(key, 1):
                entered.set()
                await release.wait()

        holder = asyncio.create_task(hold("p1:a"))
        await entered.wait()
        other = asyncio.create_task(hold("p2:a"))  # another key: not blocked
        await asyncio.sleep(0)
        waiter = asyncio.create_task(hold("p1:a"))
        await asyncio.sleep(0)
        waiting = limiter.waiting("p1:a")
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        active = limiter.active("p1:a") + limiter.active("p2:a")
        release.set()
        await asyncio.gather(holder, other)
        return waiting, active, limiter.active("p1:a"), limiter.waiting("p1:a")

    assert (1, 2, 0, 0) == asyncio.run(go())


def test_limiter_takes_a_raised_limit_at_once() -> None:
    async def go() -> int:
        limiter = EndpointLimiter()
        inside = 0
        most = 0
        gate = asyncio.Event()

        async def hold(limit: int) -> None:
            nonlocal inside, most
            async with limiter.slot("k", limit):
                inside += 1
                most = max(most, inside)
                await gate.wait()
                inside -= 1

        tasks = [asyncio.create_task(hold(1)) for _ in range(2)]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(hold(3)) for _ in range(2)]
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)
        return most

    assert 3 == asyncio.run(go())


def test_cancelling_the_consumer_closes_the_upstream_stream(start_server) -> None:
    server = start_server(stream_tokens=200, token_rate=20)  # 10 s if nobody hangs up
    cfg = server.endpoint()
    seen: list[str] = []

    async def consume(client: Any) -> None:
        async for ev in stream_chat(cfg, [{"role": "user", "content": "long"}], client=client):
            if isinstance(ev, StreamDelta):
                seen.append(ev.text)

    async def go() -> int:
        client = make_client(cfg)
        try:
            task = asyncio.create_task(consume(client))
            while len(seen) < 2:
                await asyncio.sleep(0.01)
            assert 1 == await asyncio.to_thread(server.inflight)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return await asyncio.to_thread(_wait_until, lambda: server.inflight() == 0, 5.0)
        finally:
            await client.close()

    assert asyncio.run(go()) is True
    assert 1 == server.disconnects()
    assert len(seen) < 200


def test_leaving_the_loop_early_closes_the_upstream_stream(start_server) -> None:
    server = start_server(stream_tokens=200, token_rate=20)
    cfg = server.endpoint()

    async def go() -> None:
        client = make_client(cfg)
        try:
            async with contextlib.aclosing(
                stream_chat(cfg, [{"role": "user", "content": "long"}], client=client)
            ) as it:
                async for ev in it:
                    if isinstance(ev, StreamDelta):
                        break
        finally:
            await client.close()

    asyncio.run(go())
    assert _wait_until(lambda: server.inflight() == 0, 5.0)
    assert 1 == server.disconnects()
