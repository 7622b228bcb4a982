"""Request helpers shared by the API and the pages: who is asking, sessions, CSRF, templates."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates

from dagster_project.portal.access import Refused
from dagster_project.portal.audit import RefusalLimiter
from dagster_project.portal.config import PortalConfig
from dagster_project.portal.users import User, create_session, end_session

HERE = Path(__file__).parent


def client_of(request: Request) -> str | None:
    """The peer address; a proxy's X-Forwarded-For only counts with `serve --trust-proxy`."""
    return request.client.host if request.client else None


def refusals_of(request: Request) -> RefusalLimiter:
    return request.app.state.refusals


def config_of(request: Request) -> PortalConfig:
    return request.app.state.config


def user_of(request: Request) -> User:
    """The signed-in user; the gate guarantees one on every non-public route."""
    user = getattr(request.state, "user", None)
    if user is None:
        raise Refused(401, "Sign in first.")
    return user


def start_session(request: Request, user: User) -> None:
    """Replace any previous session (no fixation) with a new server-side session."""
    config = config_of(request)
    old = request.session.get("sid")
    if isinstance(old, str):
        end_session(config.portal_dir, old)
    request.session.clear()
    request.session["sid"] = create_session(config.portal_dir, user.username, config.session_seconds)
    request.session["csrf"] = secrets.token_urlsafe(24)


def stop_session(request: Request) -> None:
    sid = request.session.get("sid")
    if isinstance(sid, str):
        end_session(config_of(request).portal_dir, sid)
    request.session.clear()


def csrf_ok(request: Request, token: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(token) and isinstance(expected, str) and hmac.compare_digest(str(token), expected)


def same_origin(request: Request) -> bool:
    """False for a browser request sent from another site; scripts send neither header.

    Browsers mark every request with Sec-Fetch-Site, which a page cannot forge; older ones only
    send Origin, which must then name this host.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def _localtime(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _pct(value: object) -> str:
    if value is None:
        return ""
    return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["localtime"] = _localtime
    templates.env.filters["pct"] = _pct
    return templates
