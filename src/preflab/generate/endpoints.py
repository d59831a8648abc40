"""Model endpoints: their config, their clients, and a chat call with bounded retries.

Every OpenAI-compatible server (vLLM, Ollama, llama.cpp, TGI, OpenAI) is configured by its
``base_url``. ``openai.AsyncOpenAI`` (:func:`make_client`) is the client of what needs the SDK:
streamed replies, the batch API, live sessions. A job's plain chat calls go through the lean
transport of :mod:`preflab.generate.chat_transport` (:func:`make_chat_client`: JSON straight
over aiohttp, about a fifth of the SDK's CPU per call and no SDK import), with the same failure
rules. Retries are ours on both paths (the SDK's are off, ``max_retries=0``) so that attempts,
waits and the final reason are ours to count and record: 429, 5xx, timeouts, dropped
connections, malformed bodies and truncated streams are retried with capped exponential backoff
(Retry-After honoured); other 4xx fail at once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import ssl
import time
import tomllib
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from preflab.errors import ConfigError, EndpointError
from preflab.generate.chat_transport import (
    ChatReply,
    ChatTransport,
    Retryable,
    body_reason,
    reply_from_json,
    shorten,
    status_failure,
)

if TYPE_CHECKING:
    import openai

# The SDK (``openai``, and ``httpx2`` under it) is imported on first use, not with this module:
# it takes about a second to import, and a job whose requests are all cached never needs it.

__all__ = [
    "ChatClient",
    "ChatClientFactory",
    "ChatReply",
    "ChatTransport",
    "ClientFactory",
    "EndpointConfig",
    "RateLimiter",
    "Retryable",
    "attempt_chat",
    "attempt_error",
    "backoff_wait",
    "complete_chat",
    "make_chat_client",
    "make_client",
    "parse_endpoints",
    "read_endpoints",
    "reply_from_json",
    "shorten",
]

# Parameters the chat completions API names; anything else (top_k, min_p, repetition_penalty
# for vLLM/TGI) goes through ``extra_body``.
_OPENAI_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "user",
    }
)


class EndpointConfig(BaseModel):
    """One model behind an OpenAI-compatible endpoint.

    Example (YAML)::

        endpoints:
          - name: policy-ckpt-1200
            base_url: http://127.0.0.1:8001/v1
            model: my-org/policy
            revision: step-1200
            api_key_env: VLLM_API_KEY
            params: {temperature: 0.7, max_tokens: 512}
            concurrency: 32
            rate_limit: 20
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Name used on the command line and in jobs.")
    base_url: str = Field(description="Base URL of the OpenAI-compatible API, ending in /v1.")
    model: str = Field(min_length=1, description="Model id sent in each request.")
    revision: str | None = Field(default=None, description="Checkpoint or revision tag.")
    api_key_env: str | None = Field(
        default=None,
        description="Environment variable holding the API key (none for local servers).",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Default sampling parameters.")
    concurrency: int = Field(
        default=8, ge=1, le=4096, description="Requests in flight at most (per replica)."
    )
    replicas: list[str] = Field(
        default_factory=list,
        description="More base URLs serving the same model (vLLM replicas); requests go to the "
        "least busy one. Cache keys use base_url, so adding a replica never re-runs a request.",
    )
    rate_limit: float | None = Field(default=None, gt=0, description="Requests per second at most.")
    timeout: float = Field(default=120.0, gt=0, description="Seconds before one attempt times out.")
    max_attempts: int = Field(
        default=5, ge=1, le=50, description="Attempts before a request fails."
    )
    backoff_base: float = Field(default=0.5, ge=0, description="First backoff wait, seconds.")
    backoff_max: float = Field(default=30.0, ge=0, description="Longest single wait, seconds.")
    stream: bool = Field(default=False, description="Read replies as server-sent event streams.")

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")

    @field_validator("replicas")
    @classmethod
    def _http_all(cls, v: list[str]) -> list[str]:
        return [cls._http(u) for u in v]

    def replica_configs(self) -> list[EndpointConfig]:
        """Return one config per server of this endpoint (``base_url`` first, then replicas)."""
        return [self] + [
            self.model_copy(update={"base_url": u, "replicas": []}) for u in self.replicas
        ]

    def api_key(self, environ: Mapping[str, str] | None = None) -> str:
        """Return the API key from ``api_key_env`` ("EMPTY" for keyless local servers).

        Raises:
            ConfigError: the variable is named but not set.
        """
        if not self.api_key_env:
            return "EMPTY"
        env = os.environ if environ is None else environ
        key = env.get(self.api_key_env)
        if not key:
            raise ConfigError(
                f"endpoint {self.name!r}: environment variable {self.api_key_env} is not set. "
                f"Export it or remove api_key_env for a keyless local server.",
                field="api_key_env",
            )
        return key


def read_endpoints(path: str | Path) -> dict[str, EndpointConfig]:
    """Return the endpoints of a YAML, TOML or JSON file, by name.

    The file holds either a list of endpoints or ``{"endpoints": [...]}``.

    Raises:
        ConfigError: unreadable file, unknown suffix, bad field (named with its index) or a
            name used twice.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read endpoints file: {exc.strerror}", path=str(p)) from None
    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data: Any = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(
                f"unknown endpoints file type {suffix!r}; use .yaml, .toml or .json", path=str(p)
            )
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - YAML/TOML/JSON errors share no base class
        raise ConfigError(f"cannot parse endpoints file: {shorten(exc)}", path=str(p)) from None
    entries = data.get("endpoints") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConfigError(
            "expected a list of endpoints or a mapping with an 'endpoints' list", path=str(p)
        )
    return parse_endpoints(entries, path=str(p))


def parse_endpoints(
    entries: Sequence[Mapping[str, Any]], *, path: str | None = None
) -> dict[str, EndpointConfig]:
    """Return validated endpoints by name from plain mappings (see :func:`read_endpoints`)."""
    out: dict[str, EndpointConfig] = {}
    for i, entry in enumerate(entries):
        try:
            cfg = EndpointConfig.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise ConfigError(
                f"{err['msg'].removeprefix('Value error, ')}",
                path=path,
                field=f"endpoints[{i}].{loc}" if loc else f"endpoints[{i}]",
                value=err.get("input"),
            ) from None
        if cfg.name in out:
            raise ConfigError(
                f"endpoint name {cfg.name!r} is used twice", path=path, field=f"endpoints[{i}].name"
            )
        out[cfg.name] = cfg
    return out


ClientFactory = Callable[[EndpointConfig], "openai.AsyncOpenAI"]
"""Builds the SDK client of an endpoint (streaming, the batch API, live sessions)."""

ChatClient: TypeAlias = "openai.AsyncOpenAI | ChatTransport"
"""What a job's chat call goes through: the lean transport, or an SDK client."""

ChatClientFactory: TypeAlias = Callable[[EndpointConfig], ChatClient]
"""Builds the client of a job's chat calls (default :func:`make_chat_client`)."""


def make_chat_client(config: EndpointConfig) -> ChatClient:
    """Return the client of a job's chat calls to one server: the lean transport by default.

    A streamed endpoint (``stream: true``) gets the SDK client (:func:`make_client`), which
    reads event streams; every other one a :class:`ChatTransport`, which posts the same JSON
    without importing the SDK.

    Raises:
        ConfigError: the endpoint's API key variable is unset.
    """
    if config.stream:
        return make_client(config)
    tls = _ssl_context() if config.base_url.startswith("https://") else None
    return ChatTransport(config, api_key=config.api_key(), ssl_context=tls)


def make_client(config: EndpointConfig) -> openai.AsyncOpenAI:
    """Return the async client of an endpoint (no SDK retries: :func:`complete_chat` retries).

    The aiohttp transport (``openai[aiohttp]``) is used when installed: it costs about half the
    CPU per request of the default one, which matters at hundreds of requests per second. Its
    connection pool holds ``concurrency`` connections (the SDK's default is 100), and the TLS
    context (the same trust store the SDK would load, ~20 ms to build) is made once per process.
    The SDK's telemetry headers (``X-Stainless-*``: OS, arch, runtime, package version) are
    left out: each header is parsed, merged and encoded again on every call.
    """
    import httpx2
    import openai

    http_client = None
    try:
        import aiohttp  # noqa: F401

        http_client = openai.DefaultAioHttpClient(
            timeout=config.timeout,
            verify=_ssl_context(),
            limits=httpx2.Limits(
                max_connections=config.concurrency, max_keepalive_connections=config.concurrency
            ),
        )
    except ImportError:
        pass
    return openai.AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key(),
        max_retries=0,
        timeout=config.timeout,
        http_client=http_client,
        default_headers=_no_telemetry_headers(),
    )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Return the default TLS context (system or ``SSL_CERT_FILE`` trust store), built once."""
    import httpx2

    return httpx2.create_ssl_context(verify=True, trust_env=True)


@functools.cache
def _no_telemetry_headers() -> dict[str, Any]:
    """Return the client headers that drop the SDK's telemetry (``X-Stainless-*``).

    ``openai.omit`` as a header value is the SDK's documented way to drop a header it would
    send (Any: the SDK types header values as str but accepts Omit).
    """
    import openai

    return {
        name: openai.omit
        for name in (
            "X-Stainless-Lang",
            "X-Stainless-Package-Version",
            "X-Stainless-OS",
            "X-Stainless-Arch",
            "X-Stainless-Runtime",
            "X-Stainless-Runtime-Version",
            "X-Stainless-Async",
        )
    }


@functools.cache
def _call_options() -> dict[str, Any]:
    """Return the per-call options that leave out the SDK's retry count and read timeout.

    The SDK adds them to every call (its own retry count, always 0 here, and the read timeout
    it was given); they are left out the same way.
    """
    import openai

    return {
        "headers": {"X-Stainless-Retry-Count": openai.omit, "X-Stainless-Read-Timeout": openai.omit}
    }


# The absolute chat URL of each client: an absolute path skips the SDK's URL merge per call.
_CHAT_URLS: weakref.WeakKeyDictionary[openai.AsyncOpenAI, str] = weakref.WeakKeyDictionary()


def _chat_url(client: openai.AsyncOpenAI) -> str:
    url = _CHAT_URLS.get(client)
    if url is None:
        url = _CHAT_URLS[client] = str(client.base_url).rstrip("/") + "/chat/completions"
    return url


class RateLimiter:
    """Space requests at least ``1 / rate`` seconds apart (``rate`` requests per second).

    Args:
        rate: requests per second; None or 0 means no limit.
        clock: monotonic clock (injectable for tests).
        sleep: async sleep (injectable for tests).
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    async def wait(self) -> None:
        """Sleep until this caller's slot comes."""
        if not self._interval:
            return
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


def _status_reason(exc: openai.APIStatusError) -> str:
    """Return what the server said in an SDK error reply, whatever its shape.

    OpenAI-style bodies carry ``{"error": {"message": ...}}``; others do not (FastAPI's
    ``{"detail": ...}`` 422, plain-text proxies), and the SDK's message then holds only the
    status code, so the body is shown instead (see :func:`body_reason`).
    """
    reason = body_reason(exc.body)
    if reason is not None:
        return reason
    try:
        text = exc.response.text.strip()
    except Exception:  # noqa: BLE001 - a streamed body may be unreadable here; fall back
        text = ""
    return shorten(text) if text else shorten(exc)


def _split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    known = {k: v for k, v in params.items() if k in _OPENAI_PARAMS}
    extra = {k: v for k, v in params.items() if k not in _OPENAI_PARAMS}
    return known, extra


async def attempt_chat(
    client: ChatClient,
    config: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any],
    seed: int | None,
) -> ChatReply:
    """Return the reply of one attempt (no retry).

    Raises:
        Retryable: the attempt failed in a way another attempt may not (429, 5xx, timeout…).
        EndpointError: the server refused the request (4xx other than 408 and 429).
    """
    if isinstance(client, ChatTransport):
        return await client.attempt(config, messages, params, seed)
    import httpx2
    import openai

    try:
        if config.stream:
            known, extra = _split_params(params)
            kwargs: dict[str, Any] = {"model": config.model, "messages": list(messages), **known}
            if seed is not None:
                kwargs["seed"] = seed
            if extra:
                kwargs["extra_body"] = extra
            return await _attempt_stream(client, kwargs)
        # The plain POST skips the SDK's per-field request transform and response model
        # building (most of its CPU per call): the body is the same JSON, encoded here, and the
        # reply comes back as the HTTP response (status errors are still raised by the SDK),
        # its JSON decoded once below.
        body: dict[str, Any] = {"model": config.model, "messages": list(messages), **params}
        if seed is not None:
            body["seed"] = seed
        response = await client.post(
            _chat_url(client),
            content=json.dumps(body, ensure_ascii=False).encode(),
            cast_to=httpx2.Response,
            options=_call_options(),
        )
        data = json.loads(response.content)
    except (
        openai.APIStatusError,
        openai.APIConnectionError,
        openai.APIResponseValidationError,
        ValueError,  # JSONDecodeError is a ValueError
    ) as exc:
        raise attempt_error(exc, config) from None
    return reply_from_json(data)


def attempt_error(exc: Exception, config: EndpointConfig) -> Retryable | EndpointError:
    """Return what a failed attempt's SDK error means: worth another attempt, or final.

    429, 408 and 5xx (Retry-After kept), timeouts, connection errors and malformed bodies are
    :class:`Retryable`; other HTTP statuses are an :class:`EndpointError` naming the endpoint
    and what the server said. Shared by :func:`attempt_chat` and the streaming client.

    Args:
        exc: an ``openai.APIStatusError``, ``APIConnectionError`` (``APITimeoutError``),
            ``APIResponseValidationError`` or ``ValueError`` (a body that is not JSON).
        config: the endpoint the attempt went to.
    """
    import openai

    if isinstance(exc, openai.APIStatusError):
        return status_failure(
            exc.status_code, _status_reason(exc), exc.response.headers, config.name
        )
    if isinstance(exc, openai.APITimeoutError):
        refused = _refused(exc)
        if refused is not None:  # the aiohttp transport reports refused connections as timeouts
            return Retryable(f"connection error: {shorten(refused)}")
        return Retryable(f"timed out after {config.timeout:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return Retryable(f"connection error: {shorten(exc.__cause__ or exc)}")
    return Retryable(f"malformed reply: {shorten(exc)}")


def backoff_wait(
    config: EndpointConfig, attempt: int, hint: float | None, rng: random.Random | None = None
) -> float:
    """Return the seconds to wait after failed attempt number ``attempt`` (1-based).

    The server's Retry-After (``hint``) when it sent one, else capped exponential backoff with
    full jitter (``uniform(0, backoff_base * 2**(attempt-1))``); never more than
    ``backoff_max``.
    """
    wait = hint
    if wait is None:
        top = config.backoff_base * 2 ** (attempt - 1)
        wait = rng.uniform(0, top) if rng else random.uniform(0, top)
    return min(wait, config.backoff_max)


async def _attempt_stream(client: openai.AsyncOpenAI, kwargs: dict[str, Any]) -> ChatReply:
    import openai

    parts: list[str] = []
    finish: str | None = None
    prompt_tokens = completion_tokens = 0
    stream = await client.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}
    )
    try:
        async for chunk in stream:
            if chunk.usage is not None:
                prompt_tokens = chunk.usage.prompt_tokens
                completion_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                if choice.delta is not None and choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
    except openai.APIError as exc:
        raise Retryable(f"stream broken: {shorten(exc)}") from None
    except Exception as exc:  # the transport's own errors (dropped connection mid-stream)
        if type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "h11"}:
            raise Retryable(f"stream truncated: {type(exc).__name__}: {shorten(exc)}") from None
        raise
    if finish is None:
        raise Retryable("stream truncated: it ended without a finish_reason")
    return ChatReply("".join(parts), finish, prompt_tokens, completion_tokens)


def _refused(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ConnectionError) or type(seen).__name__ == "ClientConnectorError":
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def complete_chat(
    client: ChatClient,
    config: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    *,
    rng: random.Random | None = None,
) -> ChatReply:
    """Return the reply to one chat request, retrying transient failures a bounded number of times.

    Waits follow capped exponential backoff with full jitter (``backoff_base * 2**k``, at most
    ``backoff_max``); a Retry-After header, when sent, sets the wait instead.

    Args:
        client: the endpoint's client (:func:`make_chat_client` or :func:`make_client`).
        config: the endpoint.
        messages: chat messages, ``{"role", "content"}`` each.
        params: sampling parameters (the endpoint's defaults are *not* merged here).
        seed: sampling seed sent to the server.
        rng: jitter source (seeded in tests).

    Raises:
        EndpointError: every attempt failed, or the server refused the request (4xx); the
            message names the last reason and ``value`` holds the attempt count.
    """
    errors: list[str] = []
    for attempt in range(1, config.max_attempts + 1):
        try:
            reply = await attempt_chat(client, config, messages, params or {}, seed)
        except Retryable as exc:
            errors.append(exc.reason)
            if attempt == config.max_attempts:
                break
            await asyncio.sleep(backoff_wait(config, attempt, exc.wait, rng))
            continue
        except EndpointError as exc:
            exc.value = attempt
            raise
        reply.attempts = attempt
        reply.errors = errors
        return reply
    raise EndpointError(
        f"endpoint {config.name!r} failed {config.max_attempts} times; last: {errors[-1]}",
        value=config.max_attempts,
    )
