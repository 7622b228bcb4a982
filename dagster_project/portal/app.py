"""The retention team portal: app factory, sign-in gate and security headers.

Deny by default: every request needs a live session except the few routes in `PUBLIC_ROUTES`
(the sign-in page and API, the stylesheet, a health probe). Unauthenticated API calls get 401,
unauthenticated page requests are sent to the sign-in page; both are audited.

Request bodies are counted as they stream in (`limits.BodySizeLimit`, an ASGI middleware in
front of every route): more than `config.max_request_bytes` (the two upload routes:
`config.max_upload_request_bytes`) gets 413 at once, with a Content-Length or a chunked body alike.
Malformed requests get a generic 422 that never echoes what was sent (it may be a password),
and are audited. Refusals of requests without a session are audited through
`audit.RefusalLimiter`, so a flood is counted rather than stored row by row. With
`config.audit_keep_days`, old audit entries are deleted at start and then every hour.

Sessions: the cookie (Starlette's SessionMiddleware, signed with itsdangerous using a secret kept
in the portal folder) carries only a random session id and a CSRF token; the id is looked up in
the portal database on every request, so sign-out, a password change or removing the user ends
the session at once. Cookie flags: HttpOnly, SameSite=Lax, Max-Age = session length, Secure when
`https_only`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from dagster_project.portal import api, audit, pages
from dagster_project.portal.access import Refused
from dagster_project.portal.config import PortalConfig
from dagster_project.portal.db import init_db
from dagster_project.portal.limits import BodySizeLimit
from dagster_project.portal.outcomes import ListCache
from dagster_project.portal.secret import load_or_create_secret
from dagster_project.portal.users import User, session_user
from dagster_project.portal.web import (
    client_of,
    make_templates,
    same_origin,
)

log = logging.getLogger(__name__)

SESSION_COOKIE = "crm_portal_session"
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/api/login"),
        ("GET", "/static/portal.css"),
        ("GET", "/healthz"),
        ("GET", "/favicon.ico"),
    }
)
CACHEABLE_PATHS = frozenset({"/static/portal.css", "/favicon.ico"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
UPLOAD_ROUTES = (("POST", "/api/outcomes"), ("POST", "/outcomes"))
MALFORMED = "The request is malformed; nothing was done."


def _malformed_detail(exc: RequestValidationError) -> str:
    """Where and what kind of error, from the field names only: never the submitted values."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('type', 'invalid')}")
    return "malformed request (" + "; ".join(parts) + ")"


def create_app(config: PortalConfig | None = None) -> FastAPI:
    """Build the portal. Without `config`, every path comes from `settings` (environment)."""
    config = config or PortalConfig.from_settings()
    init_db(config.portal_dir)
    secret = load_or_create_secret(config.portal_dir)

    refusals = audit.RefusalLimiter(
        config.portal_dir, per_client=config.refusals_logged_per_client, total=config.refusals_logged_total
    )

    pruned_at = [time.monotonic()]  # the start; serve prunes then (see commands/serve.py)

    def prune_audit() -> None:
        if config.audit_keep_days is not None:
            audit.prune_recorded(
                config.portal_dir,
                config.audit_keep_days,
                actor="portal",
                client="portal",
                via="hourly, --audit-keep-days",
            )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(refusals.flush)  # counts of suppressed refusals, at shutdown

    app = FastAPI(
        title="CRM retention portal",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.cache = ListCache()
    app.state.templates = make_templates()
    app.state.refusals = refusals

    app.include_router(api.router)
    app.include_router(pages.router)

    def answer(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status)
        return pages.error_page(request, status, message)

    @app.exception_handler(Refused)
    async def refused_handler(request: Request, exc: Refused) -> Response:
        return answer(request, exc.status, exc.message)

    async def record_refusal(
        user: User | None, event: str, client: str | None, target: str, detail: str | None = None
    ) -> None:
        """Audit a refusal: one by one for a signed-in user; through the limiter for anyone else."""
        if user is None:
            await run_in_threadpool(refusals.record, event, "refused", client=client, target=target, detail=detail)
        else:
            await run_in_threadpool(
                audit.record,
                config.portal_dir,
                event,
                "refused",
                user=user,
                target=target,
                client=client,
                detail=detail,
            )

    @app.exception_handler(RequestValidationError)
    async def malformed_handler(request: Request, exc: RequestValidationError) -> Response:
        user: User | None = getattr(request.state, "user", None)
        target = f"{request.method} {request.url.path}"
        await record_refusal(user, "refused", client_of(request), target, _malformed_detail(exc))
        return answer(request, 422, MALFORMED)

    @app.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        user: User | None = None
        sid = request.session.get("sid")
        if isinstance(sid, str):
            user = await run_in_threadpool(session_user, config.portal_dir, sid)
            if user is None:
                request.session.clear()  # expired or revoked: drop the cookie
        request.state.user = user
        path = request.url.path
        method = "GET" if request.method == "HEAD" else request.method
        client = client_of(request)

        if refusals.pending():
            await run_in_threadpool(refusals.flush, time.time())
        if config.audit_keep_days is not None and time.monotonic() - pruned_at[0] >= config.audit_prune_every_seconds:
            pruned_at[0] = time.monotonic()
            await run_in_threadpool(prune_audit)

        if method not in ("GET", "OPTIONS") and not same_origin(request):
            await record_refusal(user, "refused", client, f"{method} {path}", "cross-site request")
            response: Response = JSONResponse({"detail": "Cross-site request refused."}, status_code=403)
        elif (method, path) not in PUBLIC_ROUTES and user is None:
            if path != "/":
                await record_refusal(None, "unauthenticated", client, f"{method} {path}")
            if path.startswith("/api/") or method != "GET":
                response = JSONResponse({"detail": "Sign in first."}, status_code=401)
            else:
                response = RedirectResponse("/login", status_code=303)
        else:
            response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if path not in CACHEABLE_PATHS:
            response.headers["Cache-Control"] = "no-store"  # pages, lists, downloads, API answers
        return response

    # Added last, so it runs first: the gate above sees the decoded, verified session.
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=config.session_seconds,
        same_site="lax",
        https_only=config.https_only,
    )
    # Outermost: counts body bytes before anything else can read (or buffer) them.
    app.add_middleware(
        BodySizeLimit,
        default_limit=config.max_request_bytes,
        route_limits={route: config.max_upload_request_bytes for route in UPLOAD_ROUTES},
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )
    log.info("portal ready: data from %s, state in %s", config.exports_dir, config.portal_dir)
    return app
