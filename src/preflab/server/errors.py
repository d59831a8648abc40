"""One error shape for the whole HTTP surface.

API routes (``/api/…``) answer ``{"error": {"code", "message", "field"}}`` with the status of
the error class; pages render ``error.html`` with the same message. Every 4xx names what was
wrong: the field (``body.comment``, a query or path parameter) or, for a body that could not be
read at all (not JSON, not UTF-8, nested too deeply, too large), ``"body"``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError as DBAPIDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from preflab.errors import AuthError, InputError, PreflabError, field_path

__all__ = [
    "BodyTooLargeError",
    "RateLimitedError",
    "UploadTooLargeError",
    "error_body",
    "install_error_handlers",
    "respond",
]


class RateLimitedError(AuthError):
    """Too many failed logins; the client must wait."""

    code = "rate_limited"
    http_status = 429
    retry_after: int | None = None  # seconds, sent as the Retry-After header


class UploadTooLargeError(InputError):
    """An uploaded file over its cap, as sent or once decompressed."""

    code = "too_large"
    http_status = 413


class BodyTooLargeError(StarletteHTTPException):
    """A request body passed its cap while streaming in (raised by :mod:`.limits`).

    An HTTPException so that FastAPI's body reading passes it on instead of answering 400.
    """

    field = "body"

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """Return the one JSON error shape: ``{"error": {"code", "message", "field"}}``."""
    return {"error": {"code": code, "message": message, "field": field}}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_field",
    429: "rate_limited",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def respond(request: Request, status: int, code: str, message: str, field: str | None) -> Response:
    """Return the error response: the JSON shape under ``/api/``, the error page elsewhere."""
    if _is_api(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)
    if status == 401:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "code": code, "message": message, "field": field},
        status_code=status,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into the one shape."""

    @app.exception_handler(PreflabError)
    async def _preflab(request: Request, exc: PreflabError) -> Response:
        response = respond(request, exc.http_status, exc.code, str(exc), exc.field)
        if (retry := getattr(exc, "retry_after", None)) is not None:
            response.headers["Retry-After"] = str(retry)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if (unreadable := _unreadable_json(request, err)) is not None:
            return respond(request, 400, "bad_request", unreadable, "body")
        field = field_path(err.get("loc", ())) or None
        msg = str(err.get("msg", "invalid request")).removeprefix("Value error, ")
        message = f'field "{field}": {msg}' if field else msg
        return respond(request, 422, "invalid_field", message, field)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        # SQLite binds integers as 64-bit: a bigger one in a query or path fails there
        field = _oversized_int(request, 2**63 - 1)
        if field is None:
            raise exc  # not the request's number: a real bug, a 500 with its traceback
        return respond(request, 422, "invalid_field", f'field "{field}": {_OUT_OF_RANGE}', field)

    @app.exception_handler(DBAPIDataError)
    async def _data_error(request: Request, exc: DBAPIDataError) -> Response:
        # the database refused a value (PostgreSQL: integer out of range, bad text): a value of
        # the request, named when it is a query or path number, else the body
        field = _oversized_int(request, 2**31 - 1) or "body"
        return respond(request, 422, "invalid_field", f'field "{field}": {_OUT_OF_RANGE}', field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "error")
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_ERROR:
            return respond(request, 400, code, _body_error_message(exc.__cause__), "body")
        return respond(request, exc.status_code, code, str(exc.detail),
                       getattr(exc, "field", None))


_OUT_OF_RANGE = ("a value is out of the range the database can store (integers: 64-bit at "
                 "most); send a smaller one")


def _oversized_int(request: Request, limit: int) -> str | None:
    """Return the query or path parameter holding an integer beyond ``limit``, if any."""
    values = [(f"query.{k}", v) for k, v in request.query_params.multi_items()]
    values += [(f"path.{k}", str(v)) for k, v in request.path_params.items()]
    for name, value in values:
        text = value.strip().removeprefix("-").removeprefix("+")
        # by length first: int() of a 5,000-digit string is refused by Python itself
        if text.isascii() and text.isdigit() and (len(text) > 20 or int(text) > limit):
            return name
    return None


# FastAPI's answer to a body its JSON parsing raised on (other than a JSON syntax error)
_FASTAPI_BODY_ERROR = "There was an error parsing the body"
_OBJECT_TYPES = {"model_attributes_type", "dict_type", "model_type", "list_type"}


def _unreadable_json(request: Request, err: Any) -> str | None:
    """Return the message for a body that is not JSON at all, or None for a field's error.

    ``err`` is pydantic's first error (a dict; Any as FastAPI types it).
    """
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "json_invalid":
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = (err.get("ctx") or {}).get("error", "JSON decode error")
        return f"the body is not valid JSON ({reason}{where}); send one JSON document"
    ctype = request.headers.get("content-type", "")
    if loc == ("body",) and err.get("type") in _OBJECT_TYPES and "json" not in ctype.lower():
        return (f"the body must be JSON sent with Content-Type: application/json (got "
                f"{ctype or 'no Content-Type'})")
    return None


def _body_error_message(cause: BaseException | None) -> str:
    """Say why FastAPI could not parse a body (the exception it re-raised from)."""
    if isinstance(cause, RecursionError):
        return "the JSON body is nested too deeply to read; send a flatter document"
    if isinstance(cause, UnicodeDecodeError):
        return (f"the body is not valid UTF-8 (byte {cause.start}: {cause.reason}); send JSON "
                "encoded as UTF-8")
    reason = f"{type(cause).__name__}: {str(cause)[:200]}" if cause else "unknown error"
    return f"the body could not be read as JSON ({reason}); send one JSON document"
