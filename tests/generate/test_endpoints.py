"""Endpoint config files and the chat call with bounded retries, against the loopback server."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from preflab.errors import ConfigError, EndpointError
from preflab.generate.endpoints import EndpointConfig, complete_chat, make_client, read_endpoints


def _call(ep: EndpointConfig, content: str, seed: int = 1):
    async def go():
        client = make_client(ep)
        try:
            return await complete_chat(
                client, ep, [{"role": "user", "content": content}], {}, seed, rng=random.Random(0)
            )
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "eps.yaml",
            "endpoints:\n  - name: a\n    base_url: http://127.0.0.1:1/v1\n    model: m\n    revision: step-10\n    concurrency: 4\n    rate_limit: 2.5\n    params: {temperature: 0.7}\n",
        ),
        (
            "eps.toml",
            '[[endpoints]]\nname = "a"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\nrevision = "step-10"\nconcurrency = 4\nrate_limit = 2.5\nparams = {temperature = 0.7}\n',
        ),
        (
            "eps.json",
            '[{"name": "a", "base_url": "http://127.0.0.1:1/v1", "model": "m", "revision": "step-10", "concurrency": 4, "rate_limit": 2.5, "params": {"temperature": 0.7}}]',
        ),
    ],
)
def test_read_endpoints_reads_yaml_toml_and_json_alike(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    eps = read_endpoints(path)
    assert eps == {
        "a": EndpointConfig(
            name="a",
            base_url="http://127.0.0.1:1/v1",
            model="m",
            revision="step-10",
            concurrency=4,
            rate_limit=2.5,
            params={"temperature": 0.7},
        )
    }


def test_read_endpoints_names_the_bad_field_and_its_index(tmp_path: Path) -> None:
    path = tmp_path / "eps.json"
    path.write_text(
        '[{"name": "a", "base_url": "http://x/v1", "model": "m"}, {"name": "b", "base_url": "ftp://x", "model": "m"}]'
    )
    with pytest.raises(ConfigError) as err:
        read_endpoints(path)
    assert err.value.field == "endpoints[1].base_url"
    assert err.value.path == str(path)
    assert "http://" in str(err.value)


def test_read_endpoints_rejects_a_name_used_twice(tmp_path: Path) -> None:
    path = tmp_path / "eps.json"
    path.write_text(
        '[{"name": "a", "base_url": "http://x/v1", "model": "m"}, {"name": "a", "base_url": "http://y/v1", "model": "n"}]'
    )
    with pytest.raises(ConfigError, match="used twice"):
        read_endpoints(path)


def test_missing_api_key_variable_is_a_config_error() -> None:
    ep = EndpointConfig(
        name="a", base_url="http://x/v1", model="m", api_key_env="PREFLAB_TEST_NO_SUCH_KEY"
    )
    with pytest.raises(ConfigError, match="PREFLAB_TEST_NO_SUCH_KEY"):
        ep.api_key(environ={})
    assert ep.api_key(environ={"PREFLAB_TEST_NO_SUCH_KEY": "sk-1"}) == "sk-1"


def test_plain_reply_counts_tokens(fake) -> None:
    reply = _call(fake.endpoint(), "hello there")
    assert reply.content == "echo[fake-model|seed=1]: hello there"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.attempts) == (2, 3, 1)


def test_429_with_retry_after_is_retried(fake) -> None:
    reply = _call(fake.endpoint(), "busy [[fault:429:2]]")
    assert reply.attempts == 3
    assert reply.errors[0].startswith("HTTP 429")
    assert fake.calls() == {"fake-model|1|busy [[fault:429:2]]": 3}


def test_500_then_success_is_retried(fake) -> None:
    reply = _call(fake.endpoint(), "flaky [[fault:500:1]]")
    assert reply.attempts == 2
    assert reply.content.endswith("flaky [[fault:500:1]]")


def test_persistent_500_fails_after_max_attempts_with_reason(fake) -> None:
    with pytest.raises(EndpointError) as err:
        _call(fake.endpoint(max_attempts=3), "down [[fault:500]]")
    assert "failed 3 times" in str(err.value) and "HTTP 500" in str(err.value)
    assert fake.total_calls() == 3


def test_client_error_is_not_retried(fake) -> None:
    with pytest.raises(EndpointError, match="HTTP 400"):
        _call(fake.endpoint(), "bad [[fault:400]]")
    assert fake.total_calls() == 1


def test_slow_reply_past_timeout_is_retried(fake) -> None:
    reply = _call(fake.endpoint(timeout=0.5), "slow [[fault:slow:1]]")
    assert reply.attempts == 2
    assert "timed out" in reply.errors[0]


def test_malformed_json_is_retried(fake) -> None:
    reply = _call(fake.endpoint(), "garbled [[fault:malformed:1]]")
    assert reply.attempts == 2
    assert reply.errors[0].startswith("malformed reply")


@pytest.mark.parametrize("fault", ["truncated", "truncated_clean"])
def test_truncated_stream_is_retried(fake, fault: str) -> None:
    reply = _call(fake.endpoint(stream=True), f"cut [[fault:{fault}:1]]")
    assert reply.attempts == 2
    assert reply.content == f"echo[fake-model|seed=1]: cut [[fault:{fault}:1]]"
    assert reply.completion_tokens == 3


def test_stream_truncated_every_time_fails_with_reason(fake) -> None:
    with pytest.raises(EndpointError, match="stream"):
        _call(fake.endpoint(stream=True, max_attempts=2), "cut [[fault:truncated_clean]]")
    assert fake.total_calls() == 2


def test_unreachable_endpoint_fails_with_connection_reason() -> None:
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
    with pytest.raises(EndpointError, match="connection error"):
        _call(ep, "anyone there?")


def test_public_api_names_exist() -> None:
    import importlib

    for name in ("preflab.generate", "preflab.generate.judges", "preflab.generate.verifiers"):
        module = importlib.import_module(name)
        assert module.__all__
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.{attr}"


def test_non_openai_error_body_shows_in_the_reason(fake) -> None:
    fake.detail_422()
    with pytest.raises(EndpointError) as err:
        _call(fake.endpoint(), "anything")
    message = str(err.value)
    assert "HTTP 422" in message
    assert "detail" in message and "field required" in message and "messages" in message
    assert fake.total_calls() == 1  # a 422 is the request's fault: not retried
