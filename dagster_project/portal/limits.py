"""Request-body size limits, enforced while the body streams in.

A Content-Length check alone is not enough: a chunked request has none, and the framework would
buffer (or spool to disk) the whole body before a handler could look at its size. `BodySizeLimit`
is an ASGI middleware. A request whose declared Content-Length is over the route's limit gets 413
before the app sees it (also on routes that never read their body). Otherwise it wraps `receive`
and counts the bytes of every body message; as soon as the count passes the limit it answers 413
itself and tells the app the client has gone (`http.disconnect`), so no further byte is read;
whatever the app answers after that is dropped.
Answering from here rather than raising keeps the behaviour independent of the middleware and
task groups between this layer and the route.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_DISCONNECT: Message = {"type": "http.disconnect"}


def describe_size(limit: int) -> str:
    return f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 1024} KB"


def too_large_message(limit: int) -> str:
    return f"The request is larger than {describe_size(limit)}; nothing was saved."


def _content_length(scope: Scope) -> int | None:
    """The declared length; -1 for a malformed value (treated as too large)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


def _answer(path: str, limit: int, headers: Mapping[str, str]) -> Response:
    message = too_large_message(limit)
    all_headers = {**headers, "Connection": "close"}
    if path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=413, headers=all_headers)
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>413</title>'
        '<link rel="stylesheet" href="/static/portal.css"></head><body><main><section class="card narrow">'
        f'<h1>Too large</h1><p class="error" id="refusal">{html.escape(message)}</p>'
        '<p><a href="/lists">Back to my lists</a></p></section></main></body></html>'
    )
    return HTMLResponse(page, status_code=413, headers=all_headers)


class BodySizeLimit:
    """At most `default_limit` body bytes per request; `route_limits[(method, path)]` overrides it.

    `headers` are added to the 413 answer (the app's security headers).
    """

    def __init__(
        self,
        app: ASGIApp,
        default_limit: int,
        route_limits: Mapping[tuple[str, str], int],
        headers: Mapping[str, str],
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.route_limits = dict(route_limits)
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.route_limits.get((scope["method"], scope["path"]), self.default_limit)
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            log.warning(
                "%s %s: declared body of %d bytes over %d refused", scope["method"], scope["path"], declared, limit
            )
            await _answer(scope["path"], limit, self.headers)(scope, receive, send)
            return
        received = 0
        started = False
        refused = False

        async def refuse() -> Message:
            nonlocal refused
            refused = True
            log.warning("%s %s: request body over %d bytes refused", scope["method"], scope["path"], limit)
            if not started:
                await _answer(scope["path"], limit, self.headers)(scope, receive, send)
            return _DISCONNECT

        async def counting_receive() -> Message:
            nonlocal received
            if refused:
                return _DISCONNECT
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    return await refuse()
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; the app's late answer goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, watching_send)
