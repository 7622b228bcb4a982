"""The JSON API, used by the pages' download links and by scripts.

POST /api/login                     {"username": ..., "password": ...} -> session cookie
POST /api/logout
GET  /api/me
GET  /api/lists                     this user's lists
GET  /api/lists/{list_id}/download  the CSV as stored
POST /api/outcomes                  multipart field `file`: an outcomes CSV
GET  /api/report[?team=]            effectiveness rows (leads, managers)
GET  /api/audit[?event=&user=&limit=]  audit entries (leads: own team, managers: all)
"""

from __future__ import annotations

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from dagster_project.portal import access, audit
from dagster_project.portal.access import Refused
from dagster_project.portal.web import (
    client_of,
    config_of,
    refusals_of,
    start_session,
    stop_session,
    user_of,
)

router = APIRouter(prefix="/api")

NO_STORE = {"Cache-Control": "no-store"}


class LoginBody(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=2048)


def _user_dict(request: Request) -> dict[str, object]:
    user = user_of(request)
    return {"username": user.username, "team": user.team, "role": user.role}


@router.post("/login")
def api_login(request: Request, body: LoginBody) -> JSONResponse:
    user = access.login(config_of(request), refusals_of(request), body.username, body.password, client_of(request))
    start_session(request, user)
    request.state.user = user
    return JSONResponse(_user_dict(request))


@router.post("/logout")
def api_logout(request: Request) -> JSONResponse:
    user = user_of(request)
    stop_session(request)
    audit.record(config_of(request).portal_dir, "logout", "ok", user=user, client=client_of(request))
    return JSONResponse({"signed_out": True})


@router.get("/me")
def api_me(request: Request) -> JSONResponse:
    return JSONResponse(_user_dict(request))


@router.get("/lists")
def api_lists(request: Request) -> JSONResponse:
    lists = access.visible_lists(config_of(request), user_of(request), client_of(request))
    return JSONResponse({"lists": [info.as_dict() for info in lists]}, headers=NO_STORE)


@router.get("/lists/{list_id}/download")
def api_download(request: Request, list_id: str) -> Response:
    manifest, entry, data = access.fetch_list(
        config_of(request), user_of(request), list_id, client_of(request), "download"
    )
    filename = f"{manifest.list_date.isoformat()}_{entry.team}.csv"  # team and date are validated codes
    return Response(
        content=data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={filename}", **NO_STORE},
    )


@router.api_route("/lists/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def api_lists_other(request: Request, rest: str) -> Response:
    """Anything else under /api/lists/ (ids with slashes, traversal attempts): refused and audited."""
    raise access.refuse(
        config_of(request),
        user_of(request),
        client_of(request),
        f"{request.method} {request.url.path}",
        "No such list.",
        status=404,
    )


@router.post("/outcomes")
async def api_outcomes(request: Request, file: UploadFile | None = File(None)) -> JSONResponse:  # noqa: B008
    config, user, client = config_of(request), user_of(request), client_of(request)
    if file is None:
        raise Refused(400, "Send the outcomes CSV as the multipart form field 'file'.")
    data = await file.read(config.max_upload_bytes + 1)
    result = await run_in_threadpool(
        access.upload_outcomes, config, request.app.state.cache, user, data, file.filename or "upload.csv", client
    )
    status = 422 if result.status == "rejected" else 200
    return JSONResponse(result.as_dict(), status_code=status)


@router.get("/report")
def api_report(request: Request, team: str | None = None) -> JSONResponse:
    report, scope = access.report_for(config_of(request), user_of(request), team, client_of(request))
    return JSONResponse(
        jsonable_encoder(
            {
                "status": report.status,
                "message": report.message,
                "team": scope,
                "rows": report.rows,
                "truncated": report.truncated,
            }
        ),
        headers=NO_STORE,
    )


@router.get("/audit")
def api_audit(request: Request, event: str | None = None, user: str | None = None, limit: int = 200) -> JSONResponse:
    found = access.audit_for(
        config_of(request), user_of(request), client_of(request), event=event, username=user, limit=limit
    )
    return JSONResponse({"entries": [e.__dict__ for e in found]}, headers=NO_STORE)
