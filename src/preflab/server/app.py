"""The FastAPI app: pages under ``/``, the JSON API under ``/api/v1``, OpenAPI at ``/docs``.

``create_app(settings)`` wires everything; ``preflab serve`` runs it with uvicorn.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from preflab.server.accounts import LoginLimiter
from preflab.server.cookies import SecureCookies
from preflab.server.db import Database, open_database
from preflab.server.errors import install_error_handlers
from preflab.server.limits import RequestLimits
from preflab.server.live import LiveHub
from preflab.server.render import render_markdown
from preflab.settings import Settings

__all__ = ["create_app", "load_secret_key"]

HERE = Path(__file__).parent

# No inline script, no outside resources, no plugins: a response that slipped past the
# sanitizer still could not run or load anything.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


_DOCS_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
_HEADERS = ((b"content-security-policy", CSP.encode()), *_DOCS_HEADERS)


class SecurityHeaders:
    """Pure ASGI middleware adding CSP and friends to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope["path"] in ("/docs", "/redoc")

        extra = _DOCS_HEADERS if is_docs else _HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def load_secret_key(settings: Settings) -> str:
    """Return the session-signing key: the setting, or one kept in ``<workspace>/secret_key``."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.workspace) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["md"] = render_markdown
    env.globals["csrf"] = lambda request: request.session.get("csrf", "")

    def fmt_time(ts: Any) -> str:
        return ts.strftime("%Y-%m-%d %H:%M") if ts else ""

    env.filters["time"] = fmt_time
    return templates


# Request threads running database work. Fewer threads than anyio's default 40 keep the GIL
# and the connection pool from being fought over under load: tail latency drops, throughput holds.
REQUEST_THREADS = 12


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
    app.state.live.start()
    try:
        yield
    finally:
        # cancel live generation: its candidates are marked cancelled, to be generated again
        await app.state.live.shutdown()


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    """Return the preflab web app for a workspace.

    Args:
        settings: effective settings (database URL, secret key, reservation timeout).
        db: an already opened database (tests); opened from the settings when omitted.
    """
    from preflab.server.api.v1 import hot_router as api_hot_router
    from preflab.server.api.v1 import router as api_router
    from preflab.server.pages import router as pages_router

    settings = settings or Settings()
    # FastAPIOffline: FastAPI whose /docs loads Swagger UI from files the app serves
    # (package fastapi-offline), so the docs work with no outside network
    app = FastAPIOffline(
        title="preflab",
        version="0.1.0",
        description="Collect, check and ship preference judgments. Authenticate API calls "
        "with `Authorization: Bearer <token>` (create one with `POST /api/v1/tokens` or "
        "`preflab users token NAME`).",
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs-assets",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.db = db or open_database(settings.effective_database_url())
    app.state.templates = _templates()
    app.state.login_limiter = LoginLimiter(app.state.db)
    app.state.live = LiveHub(app.state.db, settings)
    # inside the session middleware: a refused request still gets the usual error page
    app.add_middleware(RequestLimits, settings=settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=load_secret_key(settings),
        session_cookie="preflab_session",
        max_age=14 * 24 * 3600,
        same_site="lax",
        https_only=False,  # decided per request by SecureCookies (setting secure_cookies)
    )
    app.add_middleware(SecureCookies, mode=settings.secure_cookies)
    app.add_middleware(SecurityHeaders)
    if settings.trust_proxy_headers:  # outermost: everything inside sees the real client
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api_hot_router)
    app.include_router(api_router)
    app.include_router(pages_router)
    return app
