"""The session cookie's ``Secure`` flag, decided per request (setting ``secure_cookies``).

Starlette's SessionMiddleware sets ``Secure`` for every response or for none; a workspace
served both on loopback (http) and behind an https proxy needs it decided by the request's
scheme, which :class:`uvicorn.middleware.proxy_headers.ProxyHeadersMiddleware` sets from
X-Forwarded-Proto when ``trust_proxy_headers`` is on.
"""

from __future__ import annotations

from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecureCookies"]


class SecureCookies:
    """Pure ASGI middleware adding ``; Secure`` to the app's Set-Cookie headers when due.

    Args:
        app: the wrapped app (the session middleware and everything inside it).
        mode: ``auto`` (when the request's scheme is https), ``always`` or ``never``.
    """

    def __init__(self, app: ASGIApp, mode: Literal["auto", "always", "never"] = "auto") -> None:
        self.app = app
        self.mode = mode

    def _is_due(self, scope: Scope) -> bool:
        if self.mode == "auto":
            return scope.get("scheme") in ("https", "wss")
        return self.mode == "always"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._is_due(scope):
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (k, v + b"; Secure" if k == b"set-cookie" and b"secure" not in v.lower()
                     else v)
                    for k, v in message.get("headers", ())
                ]
            await send(message)

        await self.app(scope, receive, send_secure)
