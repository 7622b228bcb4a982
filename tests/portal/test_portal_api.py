"""The HTTP API against a real `crm-warehouse serve` process: access control, downloads, audit."""

from __future__ import annotations

import httpx
import pytest
from portal_testkit import (
    USERS,
    LiveServer,
    PortalEnv,
    cookie_header,
    login,
    raw_get,
    send_chunked,
    sign_in,
)

from dagster_project.portal import audit
from dagster_project.portal.db import db_path

API_ROUTES = [
    ("GET", "/api/me"),
    ("GET", "/api/lists"),
    ("GET", "/api/lists/TL-20240502-north-23c09ca7/download"),
    ("POST", "/api/outcomes"),
    ("GET", "/api/report"),
    ("GET", "/api/audit"),
    ("POST", "/api/logout"),
    ("GET", "/api/no-such-route"),
]


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_every_api_route_needs_a_session(server: LiveServer, method: str, path: str) -> None:
    response = httpx.request(method, server.url + path, timeout=30)
    assert response.status_code == 401
    assert response.json() == {"detail": "Sign in first."}


def test_the_real_route_table_is_covered(server: LiveServer) -> None:
    """A guard for the list above: every API route the app has must appear in API_ROUTES."""
    from dagster_project.portal.app import create_app
    from dagster_project.portal.config import PortalConfig

    app = create_app(PortalConfig.from_settings())
    covered = {p.split("/")[2] for _, p in API_ROUTES}
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/") and path != "/api/login":
            assert path.split("/")[2] in covered, path


@pytest.mark.parametrize("path", ["/lists", "/outcomes", "/report", "/audit", "/lists/anything"])
def test_pages_without_a_session_go_to_sign_in(server: LiveServer, path: str) -> None:
    response = httpx.get(server.url + path, timeout=30)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_agent_sees_only_own_team_lists(server: LiveServer, portal_env: PortalEnv) -> None:
    with sign_in(server, "alice") as client:
        response = client.get("/api/lists")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        lists = response.json()["lists"]
    assert {entry["team"] for entry in lists} == {"north"}
    assert [entry["list_id"] for entry in lists] == [
        portal_env.list_id("north", "new"),
        portal_env.list_id("north", "old"),
    ]
    newest = lists[0]
    assert newest["list_date"] == portal_env.new_date.isoformat()
    assert newest["rows"] == 4
    assert newest["control"] == 2
    assert newest["download_url"] == f"/api/lists/{newest['list_id']}/download"


def test_download_returns_the_stored_bytes(server: LiveServer, portal_env: PortalEnv) -> None:
    list_id = portal_env.list_id("north")
    with sign_in(server, "alice") as client:
        response = client.get(f"/api/lists/{list_id}/download")
    assert response.status_code == 200
    assert response.content == portal_env.list_bytes("north")
    assert (
        response.headers["content-disposition"] == f"attachment; filename={portal_env.new_date.isoformat()}_north.csv"
    )
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    entries = audit.entries(portal_env.portal_dir, event="download", username="alice")
    assert any(e.outcome == "ok" and e.target == list_id and e.rows == 4 for e in entries)


def test_other_teams_list_is_refused_and_audited(server: LiveServer, portal_env: PortalEnv) -> None:
    south = portal_env.list_id("south")
    with sign_in(server, "alice") as client:
        download = client.get(f"/api/lists/{south}/download")
        page = client.get(f"/lists/{south}")
    assert download.status_code == 403
    assert b"rank,customer_id" not in download.content
    assert page.status_code == 403
    assert "S000001" not in page.text
    refused = [
        e for e in audit.entries(portal_env.portal_dir, username="alice", outcome="refused") if e.target == south
    ]
    assert {e.event for e in refused} == {"download", "view"}
    assert all(e.client == "127.0.0.1" and e.team == "north" for e in refused)


TRAVERSALS = [
    "/api/lists/../../../etc/passwd/download",
    "/api/lists/..%2f..%2f..%2fetc%2fpasswd/download",
    "/api/lists/%2e%2e%2f%2e%2e%2ftarget_lists%2f{day}%2fsouth.csv/download",
    "/api/lists/%2Fetc%2Fpasswd/download",
    "/api/lists//etc/passwd/download",
    "/api/lists/..%5c..%5csouth.csv/download",
    "/api/lists/south.csv/download",
    "/api/lists/{day}%2Fsouth.csv/download",
    "/api/lists/{north}%2F..%2F..%2F{day}%2Fsouth.csv/download",
    "/api/lists/{north}/../{south}/download",
    "/api/lists/TL-{compact}-north-00000000/download",
    "/api/lists/TL-{compact}-..-00000000/download",
    "/lists/..%2f..%2fexports%2ftarget_lists%2f{day}%2fsouth.csv",
    "/lists/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_path_traversal_and_forged_ids_are_refused(server: LiveServer, portal_env: PortalEnv, template: str) -> None:
    path = template.format(
        day=portal_env.new_date.isoformat(),
        compact=portal_env.new_date.strftime("%Y%m%d"),
        north=portal_env.list_id("north"),
        south=portal_env.list_id("south"),
    )
    with sign_in(server, "alice") as client:
        before = len(audit.entries(portal_env.portal_dir, username="alice", outcome="refused", limit=5000))
        status, body = raw_get(server, path, cookie_header(client))
    assert status in (400, 403, 404), (path, status)
    assert b"rank,customer_id" not in body
    assert b"root:" not in body
    assert b"S00000" not in body
    if path.startswith(("/api/lists/", "/lists/")) and "//" not in path:
        after = len(audit.entries(portal_env.portal_dir, username="alice", outcome="refused", limit=5000))
        assert after == before + 1, f"refusal of {path} was not audited"


def test_manager_sees_every_team_but_no_raw_phones(server: LiveServer, portal_env: PortalEnv) -> None:
    north = portal_env.list_id("north")
    with sign_in(server, "mia") as client:
        lists = client.get("/api/lists").json()["lists"]
        download = client.get(f"/api/lists/{north}/download")
        page = client.get(f"/lists/{north}")
    assert {entry["team"] for entry in lists} == {"north", "south", "east"}
    assert all(entry["download_url"] is None for entry in lists)
    assert download.status_code == 403
    assert page.status_code == 200
    assert "138****8000" in page.text
    assert "139****5678" in page.text
    assert "0013 8000" not in page.text and "1234 5678" not in page.text
    assert page.headers["cache-control"] == "no-store"


def test_agent_list_page_shows_phones_and_inert_names(server: LiveServer, portal_env: PortalEnv) -> None:
    with sign_in(server, "alice") as client:
        page = client.get(f"/lists/{portal_env.list_id('north')}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "0086 138 0013 8000" in page.text
    assert "欧阳娜娜" in page.text
    # The hostile name is escaped HTML text, not markup.
    assert "&#39;=HYPERLINK(&#34;http://x&#34;,&#34;点我&#34;)" in page.text


def test_login_failure_is_generic_and_audited(server: LiveServer, portal_env: PortalEnv) -> None:
    # From an address of its own: failures with unknown names are logged one by one only up to a
    # limit per address and minute, and the tests before sent plenty from 127.0.0.1.
    wrong = login(server, "alice", "not-her-password", source="127.0.0.30")
    unknown = login(server, "nobody", "whatever-123", source="127.0.0.30")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Unknown user name or wrong password."}
    assert "set-cookie" not in wrong.headers
    failed = audit.entries(portal_env.portal_dir, event="login", outcome="failed")
    assert {"alice", "(unknown user)"} <= {e.username for e in failed}
    assert "nobody" not in {e.username for e in audit.entries(portal_env.portal_dir, limit=5000)}
    assert next(e for e in failed if e.username == "alice").team == "north"


def test_a_password_typed_into_the_user_name_box_is_not_logged(server: LiveServer, portal_env: PortalEnv) -> None:
    # Looks like a user name (lower-case letters, digits, '-'), but is nobody's: it was a password.
    response = login(server, "blue-horse-77", "", source="127.0.0.31")
    assert response.status_code == 401
    latest = audit.entries(portal_env.portal_dir, event="login", outcome="failed")[0]
    assert (latest.username, latest.client) == ("(unknown user)", "127.0.0.31")
    assert b"blue-horse-77" not in db_path(portal_env.portal_dir).read_bytes()


def test_x_forwarded_for_is_ignored_without_trust_proxy(server: LiveServer, portal_env: PortalEnv) -> None:
    """Any local process could claim any address; only `serve --trust-proxy` makes the header count."""
    response = login(server, "alice", "wrong-password-x", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 401
    entry = audit.entries(portal_env.portal_dir, event="login", username="alice", outcome="failed")[0]
    assert entry.client == "127.0.0.1"


def test_repeated_failures_lock_the_user_name(server: LiveServer, portal_env: PortalEnv) -> None:
    for _ in range(5):
        response = login(server, "locky", "guess-guess-1", source="127.0.0.40")
        assert response.status_code == 401
    correct = login(server, "locky", USERS["locky"][2], source="127.0.0.40")
    assert correct.status_code == 429
    assert "Too many failed sign-ins. Try again in 1 minute" in correct.json()["detail"]
    assert "set-cookie" not in correct.headers
    assert audit.entries(portal_env.portal_dir, event="login", username="locky", outcome="refused")
    # Other users are not affected.
    with sign_in(server, "nora") as client:
        assert client.get("/api/me").json() == {"username": "nora", "team": "north", "role": "lead"}


SECRET = "Tr0ub4dor-and-3-more-words-"


@pytest.mark.parametrize(
    ("source", "body", "field"),
    [
        # Each from its own local address: refusals without a session are logged one by one only
        # up to a limit per address and minute.
        ("127.0.0.51", {"username": "alice", "password": SECRET * 100}, "body.password: string_too_long"),
        ("127.0.0.52", {"username": SECRET * 10, "password": "x"}, "body.username: string_too_long"),
        ("127.0.0.53", {"username": "alice", "password": ["not", SECRET]}, "body.password: string_type"),
        ("127.0.0.54", {"user": "alice", "pass": SECRET}, "body.username: missing"),
    ],
)
def test_malformed_sign_ins_are_refused_without_echoing_them(
    server: LiveServer, portal_env: PortalEnv, source: str, body: dict[str, object], field: str
) -> None:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
        response = client.post(f"{server.url}/api/login", json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": "The request is malformed; nothing was done."}
    assert "Tr0ub4dor" not in response.text
    entry = audit.entries(portal_env.portal_dir, event="refused", outcome="refused")[0]
    assert entry.target == "POST /api/login" and field in (entry.detail or "")
    assert b"Tr0ub4dor" not in db_path(portal_env.portal_dir).read_bytes()


def test_broken_json_is_refused_without_echoing_it(server: LiveServer, portal_env: PortalEnv) -> None:
    raw = b'{"username": "alice", "password": "' + SECRET.encode() + b'"'  # no closing brace
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.49"), timeout=30) as client:
        response = client.post(f"{server.url}/api/login", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "Tr0ub4dor" not in response.text
    entry = audit.entries(portal_env.portal_dir, event="refused", outcome="refused")[0]
    assert "json_invalid" in (entry.detail or "")


def test_a_chunked_body_over_the_limit_is_refused_while_streaming(server: LiveServer) -> None:
    """64 KB for every route; the server answers 413 long before 50 MB of chunks have been sent."""
    status, sent = send_chunked(server, "/api/login", total=50 * 2**20)
    assert status == 413
    assert sent < 16 * 2**20, f"the server read {sent >> 20} MB before refusing"


def test_session_cookie_flags(server: LiveServer) -> None:
    response = httpx.post(f"{server.url}/api/login", json={"username": "sam", "password": USERS["sam"][2]}, timeout=30)
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("crm_portal_session=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "max-age=28800" in cookie
    assert "path=/" in cookie
    assert response.headers["cache-control"] == "no-store"


def test_logout_ends_the_session_even_for_a_copied_cookie(server: LiveServer) -> None:
    with sign_in(server, "sam") as client:
        stolen = cookie_header(client)
        assert raw_get(server, "/api/me", stolen)[0] == 200
        assert client.post("/api/logout").status_code == 200
    status, _ = raw_get(server, "/api/me", stolen)
    assert status == 401


def test_a_tampered_cookie_is_not_a_session(server: LiveServer) -> None:
    with sign_in(server, "sam") as client:
        value = client.cookies["crm_portal_session"]
    payload, signature = value.rsplit(".", 1)
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    status, _ = raw_get(server, "/api/me", f"crm_portal_session={forged}")
    assert status == 401


def test_cross_site_posts_are_refused(server: LiveServer) -> None:
    with sign_in(server, "alice") as client:
        response = client.post(
            "/api/outcomes",
            files={"file": ("o.csv", b"customer_id,contacted_at,outcome\n")},
            headers={"Origin": "http://evil.example"},
        )
        assert response.status_code == 403
        response = client.post("/api/logout", headers={"Sec-Fetch-Site": "cross-site"})
        assert response.status_code == 403
        assert client.get("/api/me").status_code == 200  # still signed in


def test_audit_log_is_for_managers_and_leads_only(server: LiveServer, portal_env: PortalEnv) -> None:
    with sign_in(server, "alice") as client:
        assert client.get("/api/audit").status_code == 403
        assert client.get("/audit").status_code == 403
    with sign_in(server, "mia") as client:
        entries = client.get("/api/audit", params={"limit": 1000}).json()["entries"]
        page = client.get("/audit")
    events = {(e["event"], e["outcome"]) for e in entries}
    assert {("login", "ok"), ("login", "failed"), ("download", "ok"), ("download", "refused")} <= events
    assert any(e["event"] == "refused" and e["username"] == "alice" and e["target"] == "audit" for e in entries)
    assert page.status_code == 200 and "download" in page.text
    with sign_in(server, "sue") as client:  # south lead: only south users' entries
        south_entries = client.get("/api/audit", params={"limit": 1000}).json()["entries"]
    assert south_entries and {e["team"] for e in south_entries} == {"south"}


def test_security_headers(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/login", timeout=30)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_list_report_and_audit_views_are_audited(server: LiveServer, portal_env: PortalEnv) -> None:
    with sign_in(server, "alice") as client:
        assert client.get("/api/lists").status_code == 200
        assert client.get("/lists").status_code == 200
    seen = audit.entries(portal_env.portal_dir, event="list", username="alice")
    assert len(seen) >= 2
    assert all(e.outcome == "ok" and e.target == "team north" and e.rows == 2 and e.team == "north" for e in seen)
    assert all(e.client == "127.0.0.1" for e in seen)

    with sign_in(server, "mia") as client:
        assert client.get("/api/lists").status_code == 200
        assert client.get("/api/report", params={"team": "south"}).status_code == 200
        assert client.get("/report").status_code == 200
        assert client.get("/api/audit", params={"event": "login", "limit": 3}).status_code == 200
        assert client.get("/audit").status_code == 200
    assert audit.entries(portal_env.portal_dir, event="list", username="mia")[0].target == "all teams"
    reports = audit.entries(portal_env.portal_dir, event="report", username="mia")
    assert [e.target for e in reports[:2]] == ["all teams", "team south"]
    views = audit.entries(portal_env.portal_dir, event="audit", username="mia")
    assert [e.target for e in views[:2]] == ["all entries", "event=login"]
    assert views[1].rows == 3
