"""Request limits at the door: body size caps, capped decompression, text a store can keep.

One pure ASGI middleware, :class:`RequestLimits`, runs before routing so that every route, page
or API, gets the same answer without each handler checking:

- **Size.** A body larger than ``max_body_bytes`` (``max_upload_bytes`` for
  ``multipart/form-data``, the import uploads) is refused with 413 before it is read: from its
  ``Content-Length`` at once, else while it streams in, so nothing over the cap is buffered.
- **Compression.** A body sent with ``Content-Encoding: gzip`` or ``deflate`` is inflated here
  in bounded steps, and refused with 413 once the inflated size passes the same cap: a gzip bomb
  costs the server at most the cap, never its memory. Other encodings answer 415.
- **Text.** PostgreSQL cannot store NUL in text and no database can store a lone UTF-16
  surrogate, while JSON (``\\u0000``, ``\\ud800``), forms (``%00``), query strings and paths can
  carry both. Such a value is refused with 422 naming its field (``body.comment``, the query
  parameter, the path parameter) on every database alike, instead of being stored on SQLite and
  failing with a 500 on PostgreSQL. JSON bodies are scanned for the escapes at C speed and only
  parsed here when one is present.

Refusals use the app's one error shape (:func:`preflab.server.errors.respond`).
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from preflab.errors import field_path
from preflab.settings import Settings

__all__ = ["RequestLimits", "text_problem"]

# \u0000, or a \uD800–\uDFFF escape (half of a surrogate pair, or a lone one): only then is a
# JSON body parsed here, to tell a lone surrogate from a pair and to name the field.
_SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_INFLATE_STEP = 1 << 16
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class _Refusal(Exception):
    """A request refused at the door: status, code, message and the field (or ``body``)."""

    def __init__(self, status: int, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def text_problem(value: str) -> str | None:
    """Return why ``value`` cannot be stored as text (NUL, lone surrogate), or None if it can.

    >>> text_problem("fine"), text_problem("a\\x00b") is not None
    (None, True)
    """
    if "\x00" in value:
        return ("contains a NUL character (\\u0000), which the database cannot store as text; "
                "remove it and send again")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return ("contains a lone UTF-16 surrogate (\\ud800–\\udfff without its pair), which is "
                "not Unicode text; send valid UTF-8")
    return None


def _json_problem(doc: Any) -> tuple[str, str] | None:
    """Return ``(field, problem)`` of the first string (key or value) that cannot be stored."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [(("body",), doc)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if (problem := text_problem(value)) is not None:
                return field_path(loc), problem
        elif isinstance(value, dict):
            for key, item in value.items():
                if (problem := text_problem(key)) is not None:
                    return field_path(loc), f"has a key that {problem}"
                stack.append(((*loc, key), item))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item) for i, item in enumerate(value))
    return None


def _pairs_problem(pairs: list[tuple[str, str]], kind: str) -> tuple[str, str] | None:
    for key, value in pairs:
        for text in (key, value):
            if (problem := text_problem(text)) is not None:
                return key, f"{kind} {problem}"
    return None


def _query_problem(query: bytes) -> tuple[str, str] | None:
    if b"%00" not in query and b"\x00" not in query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    found = _pairs_problem(pairs, "the query parameter")
    return (f"query.{found[0]}", found[1]) if found else None


def _path_problem(scope: Scope) -> tuple[str, str] | None:
    path = scope.get("path", "")
    if "\x00" not in path:
        return None
    problem = "the path parameter " + (text_problem(path) or "")
    openapi = getattr(scope.get("app"), "openapi", None)
    for template in (openapi() if callable(openapi) else {}).get("paths", {}):
        match = _template_regex(template).match(path)
        for name, value in (match.groupdict() if match else {}).items():
            if "\x00" in value:
                return f"path.{name}", problem
    return "path", problem


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    """Return the regex of an OpenAPI path template (``/projects/{project_id}``)."""
    parts = re.split(r"\{(\w+)\}", template)
    out = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(out + "$")


def _body_problem(content_type: str, body: bytes) -> tuple[str, str] | None:
    if content_type == "application/x-www-form-urlencoded":
        if b"%00" not in body and b"\x00" not in body:
            return None
        return _pairs_problem(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True),
                              "the form field")
    if (content_type == "application/json" or content_type.endswith("+json")
            or not content_type) and _SUSPECT_JSON.search(body):
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            return None  # unparseable: the route's own parsing answers 400 naming the body
        return _json_problem(doc)
    return None


def _inflate(data: bytes, encoding: str, cap: int) -> bytes:
    """Return ``data`` decompressed; refuse (413) as soon as the output would pass ``cap``."""
    inflater = zlib.decompressobj(_DECODERS[encoding])
    out = bytearray()
    chunk = data
    try:
        while chunk or inflater.unconsumed_tail:
            out += inflater.decompress(chunk or inflater.unconsumed_tail, _INFLATE_STEP)
            if len(out) > cap:
                raise _too_large(cap, inflated=True)
            chunk = b""
            if inflater.eof:
                break
        out += inflater.flush()
    except zlib.error as exc:
        raise _Refusal(400, "bad_request", f"the body is not valid {encoding} data ({exc}); "
                       "send it compressed as its Content-Encoding says, or uncompressed",
                       "body") from None
    if len(out) > cap:
        raise _too_large(cap, inflated=True)
    if inflater.unused_data or not inflater.eof:
        raise _Refusal(400, "bad_request", f"the {encoding} body is cut off or has data after "
                       "its end (several gzip members are not accepted); send one stream",
                       "body")
    return bytes(out)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"


def _too_large(cap: int, *, inflated: bool = False) -> _Refusal:
    what = "once decompressed" if inflated else ""
    return _Refusal(
        413, "too_large",
        f"the request body is larger than {_mib(cap)} {what}".replace("  ", " ").strip()
        + "; send less per request (split the batch), or import big files with "
        "`preflab import` on the server",
        "body")


class RequestLimits:
    """Pure ASGI middleware enforcing body caps, capped decompression and storable text.

    Args:
        app: the ASGI app to protect.
        settings: ``max_body_bytes`` and ``max_upload_bytes`` are read from here.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_upload = settings.max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if (problem := _query_problem(scope.get("query_string", b""))
                    or _path_problem(scope)) is not None:
                raise _Refusal(422, "invalid_field", f'field "{problem[0]}": {problem[1]}',
                               problem[0])
            receive = await self._limited(scope, receive)
        except _Refusal as refusal:
            await _refuse(scope, receive, send, refusal)
            return
        await self.app(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """Return the ``receive`` the app should use, or raise :class:`_Refusal`."""
        headers = _headers(scope)
        length, chunked = headers.get(b"content-length"), b"transfer-encoding" in headers
        if length is None and not chunked:
            return receive  # no body (GET and friends): nothing to check or count
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode(
            "latin-1")
        multipart = content_type.startswith("multipart/")
        cap = self.max_upload if multipart else self.max_body
        if length is not None and length.isdigit() and int(length) > cap:
            raise _too_large(cap)
        encoding = headers.get(b"content-encoding", b"identity").strip().lower().decode("latin-1")
        if encoding not in ("identity", "", *_DECODERS) or (multipart and encoding in _DECODERS):
            raise _Refusal(415, "unsupported_encoding",
                           f"Content-Encoding {encoding!r} is not accepted here; send the body "
                           "uncompressed, or gzip/deflate for JSON and form bodies", "body")
        if multipart:
            return _counting(receive, cap)  # streamed to disk by the form parser, counted here
        body = await _read_all(receive, cap)
        if encoding in _DECODERS:
            body = _inflate(body, encoding, cap)
            _replace_headers(scope, body)
        if (problem := _body_problem(content_type, body)) is not None:
            raise _Refusal(422, "invalid_field", f'field "{problem[0]}": {problem[1]}',
                           problem[0])
        return _replay(body, receive)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", ())}


def _replace_headers(scope: Scope, body: bytes) -> None:
    """Make the inflated body look as if it had been sent uncompressed."""
    kept = [(k, v) for k, v in scope.get("headers", ())
            if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")]
    scope["headers"] = [*kept, (b"content-length", str(len(body)).encode())]


async def _read_all(receive: Receive, cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Refusal(400, "bad_request", "the client went away before sending the body",
                           "body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # http.disconnect, when it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _counting(receive: Receive, cap: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > cap:
                from preflab.server.errors import BodyTooLargeError

                raise BodyTooLargeError(_too_large(cap).message)
        return message

    return counted


async def _refuse(scope: Scope, receive: Receive, send: Send, refusal: _Refusal) -> None:
    from preflab.server.errors import respond

    response = respond(Request(scope, receive), refusal.status, refusal.code, refusal.message,
                       refusal.field)
    await response(scope, receive, send)

