"""Server-rendered pages: sign-in, my lists, one list, upload outcomes, report, audit.

No JavaScript: plain forms and links, so the portal works in any browser an agent has, and the
Content-Security-Policy can forbid scripts outright. Forms that change something carry the
session's CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dagster_project.exports.lists import LIST_COLUMNS, list_manifests
from dagster_project.extracts.spec import OUTCOME_VALUES
from dagster_project.portal import access, audit
from dagster_project.portal.access import Refused
from dagster_project.portal.audit import EVENTS
from dagster_project.portal.config import PortalConfig
from dagster_project.portal.outcomes import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
)
from dagster_project.portal.report import COLUMNS as REPORT_COLUMNS
from dagster_project.portal.web import (
    HERE,
    client_of,
    config_of,
    csrf_ok,
    refusals_of,
    start_session,
    stop_session,
    user_of,
)

router = APIRouter()

MAX_ROWS_SHOWN = 1000


def render(request: Request, name: str, context: dict[str, object] | None = None, status: int = 200) -> Response:
    values: dict[str, object] = {
        "user": getattr(request.state, "user", None),
        "csrf": request.session.get("csrf", ""),
        "path": request.url.path,
    }
    values.update(context or {})
    return request.app.state.templates.TemplateResponse(request, name, values, status_code=status)


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", {"status": status, "message": message}, status)


@router.get("/healthz", include_in_schema=False)
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/static/portal.css", include_in_schema=False)
def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "portal.css", media_type="text/css")


@router.get("/login")
def login_page(request: Request) -> Response:
    if getattr(request.state, "user", None) is not None:
        return RedirectResponse("/lists", status_code=303)
    return render(request, "login.html")


@router.post("/login")
def login_form(request: Request, username: str = Form(""), password: str = Form("")) -> Response:
    try:
        user = access.login(
            config_of(request), refusals_of(request), username[:200], password[:2048], client_of(request)
        )
    except Refused as refused:
        return render(request, "login.html", {"error": refused.message, "username": username[:64]}, refused.status)
    start_session(request, user)
    return RedirectResponse("/lists", status_code=303)


@router.post("/logout")
def logout_form(request: Request, csrf: str = Form("")) -> Response:
    user = user_of(request)
    if not csrf_ok(request, csrf):
        raise access.refuse(
            config_of(request), user, client_of(request), "logout", "The form expired; reload the page."
        )
    stop_session(request)
    audit.record(config_of(request).portal_dir, "logout", "ok", user=user, client=client_of(request))
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    user_of(request)
    return RedirectResponse("/lists", status_code=303)


@router.get("/lists")
def lists_page(request: Request) -> Response:
    user = user_of(request)
    lists = access.visible_lists(config_of(request), user, client_of(request))
    return render(request, "lists.html", {"lists": lists})


@router.get("/lists/{list_id}")
def list_page(request: Request, list_id: str) -> Response:
    user = user_of(request)
    manifest, entry, data = access.fetch_list(config_of(request), user, list_id, client_of(request), "view")
    rows = access.list_rows_for(user, entry, data)
    return render(
        request,
        "list.html",
        {
            "manifest": manifest,
            "entry": entry,
            "columns": [c for c in LIST_COLUMNS if c != "list_id"],
            "rows": rows[:MAX_ROWS_SHOWN],
            "total": len(rows),
            "downloadable": user.can_download_team(entry.team),
            "masked": not user.can_download_team(entry.team),
        },
    )


@router.api_route("/lists/{rest:path}", methods=["GET", "POST"])
def list_other(request: Request, rest: str) -> Response:
    raise access.refuse(
        config_of(request),
        user_of(request),
        client_of(request),
        f"{request.method} {request.url.path}",
        "No such list.",
        status=404,
    )


def _upload_context(config: PortalConfig) -> dict[str, object]:
    return {
        "required": REQUIRED_COLUMNS,
        "optional": OPTIONAL_COLUMNS,
        "outcomes": OUTCOME_VALUES,
        "max_mb": f"{config.max_upload_bytes / 2**20:g}",
    }


@router.get("/outcomes")
def upload_page(request: Request) -> Response:
    user = user_of(request)
    if not user.can_upload():
        raise access.refuse(
            config_of(request), user, client_of(request), "upload", "Only a team's agents and lead upload outcomes."
        )
    return render(request, "upload.html", _upload_context(config_of(request)))


@router.post("/outcomes")
async def upload_form(
    request: Request,
    file: UploadFile | None = File(None),  # noqa: B008
    csrf: str = Form(""),
) -> Response:
    config, user, client = config_of(request), user_of(request), client_of(request)
    if not csrf_ok(request, csrf):
        raise access.refuse(config, user, client, "upload", "The form expired; reload the page and upload again.")
    if file is None or not file.filename:
        return render(
            request, "upload.html", {**_upload_context(config), "form_error": "Choose a CSV file first."}, 400
        )
    data = await file.read(config.max_upload_bytes + 1)
    result = await run_in_threadpool(
        access.upload_outcomes, config, request.app.state.cache, user, data, file.filename, client
    )
    status = 422 if result.status == "rejected" else 200
    return render(
        request, "upload.html", {**_upload_context(config), "result": result, "filename": file.filename}, status
    )


@router.get("/report")
def report_page(request: Request, team: str | None = None) -> Response:
    config, user = config_of(request), user_of(request)
    team = team or None
    report, scope = access.report_for(config, user, team, client_of(request))
    teams = sorted({t.team for m in list_manifests(config.exports_dir) for t in m.teams}) if user.is_manager else []
    return render(
        request,
        "report.html",
        {"report": report, "scope": scope, "teams": teams, "columns": REPORT_COLUMNS},
    )


@router.get("/audit")
def audit_page(request: Request, event: str | None = None, user: str | None = None) -> Response:
    viewer = user_of(request)
    entries = access.audit_for(config_of(request), viewer, client_of(request), event=event, username=user, limit=500)
    return render(
        request, "audit.html", {"entries": entries, "events": EVENTS, "event": event or "", "who": user or ""}
    )
