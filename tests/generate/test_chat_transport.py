"""The lean chat transport (JSON over aiohttp) against the loopback server, beside the SDK path.

A job's online calls go through :class:`ChatTransport` instead of ``openai.AsyncOpenAI``; these
tests hold it to the same failure rules: the same retries, waits and reasons as the SDK path
for each fault the server can inject, and no SDK import on the way.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from preflab.errors import EndpointError
from preflab.generate.chat_transport import ChatTransport, Retryable
from preflab.generate.endpoints import (
    EndpointConfig,
    complete_chat,
    make_chat_client,
    make_client,
)


def _call(ep: EndpointConfig, content: str, *, sdk: bool = False, seed: int = 1) -> Any:
    """Return the reply of ``complete_chat`` through the lean transport (or the SDK)."""

    async def go() -> Any:
        client = make_client(ep) if sdk else make_chat_client(ep)
        try:
            return await complete_chat(
                client, ep, [{"role": "user", "content": content}], {}, seed, rng=random.Random(0)
            )
        finally:
            await client.close()

    return asyncio.run(go())


def _attempt(ep: EndpointConfig, content: str) -> Any:
    """Return the reply of one attempt through the lean transport, or the error it raised."""

    async def go() -> Any:
        client = make_chat_client(ep)
        assert isinstance(client, ChatTransport)
        try:
            return await client.attempt(ep, ({"role": "user", "content": content},), {}, 1)
        except (Retryable, EndpointError) as exc:
            return exc
        finally:
            await client.close()

    return asyncio.run(go())


def _failure(ep: EndpointConfig, content: str, *, sdk: bool) -> str:
    with pytest.raises(EndpointError) as err:
        _call(ep, content, sdk=sdk)
    return str(err.value)


def test_plain_endpoint_gets_the_lean_transport_and_streamed_one_the_sdk(fake) -> None:
    import openai

    assert isinstance(make_chat_client(fake.endpoint()), ChatTransport)
    assert isinstance(make_chat_client(fake.endpoint(stream=True)), openai.AsyncOpenAI)


def test_plain_reply_counts_tokens(fake) -> None:
    reply = _call(fake.endpoint(), "hello there")
    assert reply.content == "echo[fake-model|seed=1]: hello there"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.attempts) == (2, 3, 1)
    assert reply.finish_reason == "stop"


def test_model_and_seed_reach_the_server(fake) -> None:
    fake.script([{"pattern": "^p$", "reply": "model={model} seed={seed}"}])
    ep = fake.endpoint(model="m-7")
    reply = _call(ep, "p", seed=42)
    assert reply.content == "model=m-7 seed=42"


def test_429_with_retry_after_waits_what_the_server_asks(fake) -> None:
    failure = _attempt(fake.endpoint(), "busy [[fault:429:1]]")
    assert isinstance(failure, Retryable)
    assert (failure.status, failure.wait) == (429, 0.2)
    assert failure.reason == "HTTP 429: slow down"


def test_429_is_retried_until_it_passes(fake) -> None:
    reply = _call(fake.endpoint(), "busy [[fault:429:2]]")
    assert reply.attempts == 3
    assert reply.errors == ["HTTP 429: slow down", "HTTP 429: slow down"]
    assert fake.calls() == {"fake-model|1|busy [[fault:429:2]]": 3}


def test_500_then_success_is_retried(fake) -> None:
    reply = _call(fake.endpoint(), "flaky [[fault:500:1]]")
    assert reply.attempts == 2
    assert reply.errors == ["HTTP 500: injected 500"]
    assert reply.content.endswith("flaky [[fault:500:1]]")


def test_persistent_503_fails_after_max_attempts_with_reason(fake) -> None:
    fake.fail(503)
    try:
        message = _failure(fake.endpoint(max_attempts=3), "down", sdk=False)
    finally:
        fake.fail(None)
    assert "failed 3 times" in message and "HTTP 503" in message
    assert fake.total_calls() == 3


def test_client_error_is_not_retried(fake) -> None:
    message = _failure(fake.endpoint(), "bad [[fault:400]]", sdk=False)
    assert message == "endpoint 'fake' refused the request: HTTP 400: injected 400"
    assert fake.total_calls() == 1


def test_malformed_body_is_retried(fake) -> None:
    reply = _call(fake.endpoint(), "garbled [[fault:malformed:1]]")
    assert reply.attempts == 2
    assert reply.errors[0].startswith("malformed reply")


def test_slow_reply_past_timeout_is_retried(fake) -> None:
    reply = _call(fake.endpoint(timeout=0.5), "slow [[fault:slow:1]]")
    assert reply.attempts == 2
    assert reply.errors == ["timed out after 0.5 s"]


def test_fastapi_422_detail_body_shows_in_the_reason(fake) -> None:
    fake.detail_422()
    message = _failure(fake.endpoint(), "anything", sdk=False)
    assert message.startswith("endpoint 'fake' refused the request: HTTP 422: detail: [")
    assert "field required" in message and "messages" in message
    assert fake.total_calls() == 1


def test_unreachable_server_fails_with_connection_reason() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ep = EndpointConfig(
        name="gone",
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        max_attempts=2,
        backoff_base=0.01,
        timeout=2,
    )
    message = _failure(ep, "anyone there?", sdk=False)
    assert "failed 2 times" in message and "connection error" in message


@pytest.mark.parametrize(
    "content",
    ["bad [[fault:400]]", "down [[fault:500]]", "busy [[fault:429]]", "x [[fault:malformed]]"],
)
def test_lean_and_sdk_paths_fail_with_the_same_reason(fake, content: str) -> None:
    ep = fake.endpoint(max_attempts=2, backoff_max=0.05)
    lean = _failure(ep, content, sdk=False)
    fake.reset()
    sdk = _failure(ep, content, sdk=True)
    assert lean == sdk


def test_lean_and_sdk_paths_show_a_422_detail_body_alike(fake) -> None:
    fake.detail_422()
    ep = fake.endpoint()
    assert _failure(ep, "x", sdk=False) == _failure(ep, "x", sdk=True)


def test_lean_and_sdk_paths_store_the_same_reply(fake) -> None:
    ep = fake.endpoint()
    lean = _call(ep, "same [[fault:500:1]]")
    fake.reset()
    sdk = _call(ep, "same [[fault:500:1]]", sdk=True)
    assert (lean.to_json(), lean.attempts, lean.errors) == (sdk.to_json(), sdk.attempts, sdk.errors)


def test_a_job_through_the_lean_transport_never_imports_the_sdk(fake, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from preflab.generate.cache import open_engine\n"
        "from preflab.generate.endpoints import EndpointConfig\n"
        "from preflab.generate.jobs import make_request, run_job\n"
        f"ep = EndpointConfig(name='fake', base_url={fake.base_url!r}, model='fake-model')\n"
        f"engine = open_engine({'sqlite:///' + str(tmp_path / 'ws.sqlite')!r})\n"
        "reqs = [make_request(ep, [{'role': 'user', 'content': f'q{i}'}], seed=1)"
        " for i in range(5)]\n"
        "for _ in range(2):\n"
        "    s = run_job(engine, {'fake': ep}, reqs, processes=1).summary\n"
        "    print(s.done, s.cached, s.failed)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'httpx2')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["5 0 0", "0 5 0", "[]"]
    assert fake.total_calls() == 5
