"""The retention team portal: app factory, sign-in gate and security headers.

Deny by default: every request needs a live session except the few routes in `PUBLIC_ROUTES`
(the sign-in page and API, the stylesheet, a health probe). Unauthenticated API calls get 401,
unauthenticated page requests are sent to the sign-in page; both are audited.

Sessions: the cookie (Starlette's SessionMiddleware, signed with itsdangerous using a secret kept
in the portal folder) carries only a random session id and a CSRF token; the id is looked up in
the portal database on every request, so sign-out, a password change or removing the user ends
the session at once. Cookie flags: HttpOnly, SameSite=Lax, Max-Age = session length, Secure when
`https_only`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from dagster_project.portal import api, audit, pages
from dagster_project.portal.access import Refused
from dagster_project.portal.config import PortalConfig
from dagster_project.portal.db import init_db
from dagster_project.portal.outcomes import MAX_UPLOAD_BYTES, ListCache
from dagster_project.portal.secret import load_or_create_secret
from dagster_project.portal.users import User, session_user
from dagster_project.portal.web import client_of, make_templates, same_origin

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
# Largest request body accepted: an outcomes file plus multipart overhead. Checked before the
# body is read, so a huge upload is refused without being spooled to disk.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024
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


def _too_large(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES)


def create_app(config: PortalConfig | None = None) -> FastAPI:
    """Build the portal. Without `config`, every path comes from `settings` (environment)."""
    config = config or PortalConfig.from_settings()
    init_db(config.portal_dir)
    secret = load_or_create_secret(config.portal_dir)

    app = FastAPI(title="CRM retention portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.cache = ListCache()
    app.state.templates = make_templates()

    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(Refused)
    async def refused_handler(request: Request, exc: Refused) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return pages.error_page(request, exc.status, exc.message)

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

        if method not in ("GET", "OPTIONS") and not same_origin(request):
            await run_in_threadpool(
                audit.record,
                config.portal_dir,
                "refused",
                "refused",
                user=user,
                target=f"{method} {path}",
                client=client,
                detail="cross-site request",
            )
            response: Response = JSONResponse({"detail": "Cross-site request refused."}, status_code=403)
        elif _too_large(request):
            response = JSONResponse(
                {"detail": f"The upload is larger than {MAX_BODY_BYTES // 2**20} MB."}, status_code=413
            )
        elif (method, path) not in PUBLIC_ROUTES and user is None:
            if path != "/":
                await run_in_threadpool(
                    audit.record,
                    config.portal_dir,
                    "unauthenticated",
                    "refused",
                    target=f"{method} {path}",
                    client=client,
                )
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
    log.info("portal ready: data from %s, state in %s", config.exports_dir, config.portal_dir)
    return app
