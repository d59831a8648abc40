"""One error shape for the whole HTTP surface.

API routes (``/api/…``) answer ``{"error": {"code", "message", "field"}}`` with the status of
the error class; pages render ``error.html`` with the same message.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from preflab.errors import AuthError, PreflabError, field_path

__all__ = ["RateLimitedError", "error_body", "install_error_handlers"]


class RateLimitedError(AuthError):
    """Too many failed logins; the client must wait."""

    code = "rate_limited"
    http_status = 429


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


def _respond(request: Request, status: int, code: str, message: str, field: str | None) -> Response:
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
        return _respond(request, exc.http_status, exc.code, str(exc), exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = field_path(err.get("loc", ())) or None
        msg = str(err.get("msg", "invalid request")).removeprefix("Value error, ")
        message = f'field "{field}": {msg}' if field else msg
        return _respond(request, 422, "invalid_field", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return _respond(request, exc.status_code, code, str(exc.detail), None)
