"""The lean chat transport: a job's chat completions posted as JSON over one aiohttp session.

Why it exists (issue 14, "speed as a user runs it"): a job's hot path is thousands of POSTs of
the same shape. Through the OpenAI SDK each one costs about 1 ms of CPU (request options,
header merging, the httpx-shaped transport, response wrapping) and importing the SDK takes
0.5–1 s; the same POST on a bare aiohttp session costs about 0.2 ms and aiohttp loads in a
fraction of that. So the SDK stays the client of what needs it (streamed replies, the batch
API, live sessions, a caller's own client factory), and a job's online calls go through
:class:`ChatTransport`, which fails the same way as the SDK path
(:func:`preflab.generate.endpoints.attempt_error`):

- 429, 408 and 5xx are :class:`Retryable`, keeping ``Retry-After`` / ``retry-after-ms``;
- any other HTTP error status is an ``EndpointError`` naming the endpoint and what the server
  said, whatever the body's shape (OpenAI's ``{"error": {"message"}}``, FastAPI's
  ``{"detail": [...]}``, plain text);
- a timeout, a refused or dropped connection and a body that is not a chat completion are
  :class:`Retryable`.

This module holds the pieces both paths share (the reply, the retryable failure, reading an
error body) and imports neither the SDK nor aiohttp until a call is made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from preflab.errors import EndpointError

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from preflab.generate.endpoints import EndpointConfig

__all__ = [
    "ChatReply",
    "ChatTransport",
    "Retryable",
    "body_reason",
    "reply_from_json",
    "retry_after",
    "shorten",
    "status_failure",
]


@dataclass(slots=True)
class ChatReply:
    """What one successful chat call returned, with the attempts it took."""

    content: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON stored as the cached result."""
        return {
            "content": self.content,
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            },
        }


class Retryable(Exception):
    """A failed attempt worth another one (429, 5xx, timeout, dropped connection, bad body)."""

    def __init__(self, reason: str, wait: float | None = None, *, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.status = status  # HTTP status, when the server answered


def shorten(obj: object, limit: int = 200) -> str:
    """Return ``str(obj)`` on one line, cut to ``limit`` characters (for failure reasons).

    >>> shorten("a\\nb")
    'a b'
    """
    text = str(obj).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body_reason(body: Any) -> str | None:
    """Return what an error body says, or None when it is empty.

    ``body`` is the decoded JSON with an OpenAI-style ``"error"`` object already taken out of
    it (as the SDK hands it over), or the text of a body that is not JSON. FastAPI's
    ``{"detail": ...}`` and other shapes are shown as they are.

    >>> body_reason({"message": "slow down"})
    'slow down'
    >>> body_reason({"detail": [{"loc": ["body", "messages"], "msg": "field required"}]})
    'detail: [{"loc": ["body", "messages"], "msg": "field required"}]'
    """
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return shorten(err["message"])
        if isinstance(err, str) and err:
            return shorten(err)
        if isinstance(body.get("message"), str) and body["message"]:
            return shorten(body["message"])
        if "detail" in body:
            detail = body["detail"]
            text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
            return shorten(f"detail: {text}")
        return shorten(json.dumps(body, ensure_ascii=False))
    if isinstance(body, str) and body.strip():
        return shorten(body.strip())
    if body is not None and not isinstance(body, str):
        return shorten(json.dumps(body, ensure_ascii=False))
    return None


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Return the wait a reply's ``retry-after-ms`` or ``Retry-After`` header asks for, if any.

    >>> retry_after({"retry-after": "2"})
    2.0
    >>> retry_after({"retry-after-ms": "250", "retry-after": "9"})
    0.25
    """
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def status_failure(
    status: int, reason: str, headers: Mapping[str, str] | None, endpoint: str
) -> Retryable | EndpointError:
    """Return what an HTTP error status means: worth another attempt, or final.

    >>> status_failure(503, "busy", {"retry-after": "1"}, "ckpt").wait
    1.0
    >>> str(status_failure(422, "detail: bad", None, "ckpt"))
    "endpoint 'ckpt' refused the request: HTTP 422: detail: bad"
    """
    if status == 429 or status >= 500 or status == 408:
        return Retryable(f"HTTP {status}: {reason}", retry_after(headers), status=status)
    return EndpointError(f"endpoint {endpoint!r} refused the request: HTTP {status}: {reason}")


def reply_from_json(data: Any) -> ChatReply:
    """Return the reply in a chat completion body (a batch output line's ``body``, too).

    Raises:
        Retryable: the body has no ``choices[0].message.content`` text.
    """
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise Retryable(
            f"malformed reply: no choices[0].message.content in {shorten(data)}"
        ) from None
    if not isinstance(content, str):
        raise Retryable(f"malformed reply: content is {type(content).__name__}, not text")
    return ChatReply(content, choice.get("finish_reason"), prompt_tokens, completion_tokens)


def _error_reason(status: int, raw: bytes) -> str:
    """Return the reason of an error reply read as the SDK reads it (``error`` unwrapped)."""
    text = raw.decode("utf-8", errors="replace").strip()
    body: Any = text
    try:
        body = json.loads(text)
    except ValueError:
        pass
    if isinstance(body, dict) and "error" in body:
        body = body["error"]
    return body_reason(body) or f"Error code: {status}"


class ChatTransport:
    """POST chat completions of one server as JSON on one aiohttp session (see module doc).

    The session (a pool of ``concurrency`` keep-alive connections) is opened on the first
    call, inside the event loop that makes it; :meth:`close` closes it. A streamed endpoint
    (``stream: true``) is not served here: :func:`preflab.generate.endpoints.make_chat_client`
    gives it the SDK client.

    Args:
        config: the server's endpoint config (its ``base_url``, ``concurrency``, ``timeout``).
        api_key: sent as ``Authorization: Bearer``, as the SDK sends it.
        ssl_context: TLS context for an ``https`` URL (None: aiohttp's default).
    """

    def __init__(
        self,
        config: EndpointConfig,
        *,
        api_key: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "preflab",
        }
        self._limit = config.concurrency
        self._timeout = config.timeout
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._errors: tuple[type[BaseException], ...] = ()

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=0, ssl=self._ssl if self._ssl is not None else True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        # dropped, refused and reset connections, bad HTTP from the server
        self._errors = (aiohttp.ClientError, OSError)
        return self._session

    async def attempt(
        self,
        config: EndpointConfig,
        messages: Sequence[Mapping[str, str]],
        params: Mapping[str, Any],
        seed: int | None,
    ) -> ChatReply:
        """Return the reply of one attempt (no retry).

        Raises:
            Retryable: 429, 408, 5xx, timeout, connection error or a malformed body.
            EndpointError: the server refused the request (another 4xx).
        """
        body: dict[str, Any] = {"model": config.model, "messages": messages, **params}
        if seed is not None:
            body["seed"] = seed
        payload = json.dumps(body, ensure_ascii=False).encode()
        session = self._session or self._open()
        try:
            async with session.post(self.url, data=payload) as response:
                raw = await response.read()
                status = response.status
                headers = response.headers
        except TimeoutError:  # aiohttp's timeouts are TimeoutError (and some ClientError)
            raise Retryable(f"timed out after {config.timeout:g} s") from None
        except self._errors as exc:
            raise Retryable(f"connection error: {shorten(exc)}") from None
        if not 200 <= status < 300:
            raise status_failure(status, _error_reason(status, raw), headers, config.name)
        try:
            data = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise Retryable(f"malformed reply: {shorten(exc)}") from None
        return reply_from_json(data)

    async def close(self) -> None:
        """Close the session and its connections (nothing to do if no call was made)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
