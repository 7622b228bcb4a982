"""The audit log's own limits on a real server: floods are counted, not stored row by row; old
entries go when `serve --audit-keep-days` says so."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from portal_testkit import PortalEnv, start_server, stop_server

from dagster_project.portal import audit
from dagster_project.portal.db import db_path


def test_a_flood_of_unauthenticated_requests_is_counted_not_stored_row_by_row(portal_env: PortalEnv) -> None:
    server = start_server(portal_env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: client.get("/api/lists").status_code, range(300)))
        assert statuses == [401] * 300
    finally:
        stop_server(server)  # a graceful stop writes the counts still pending

    rows = audit.entries(portal_env.portal_dir, event="unauthenticated", limit=5000)
    one_by_one = [e for e in rows if e.outcome == "refused"]
    counted = [e for e in rows if e.outcome == "suppressed"]
    assert all(e.target == "GET /api/lists" and e.client == "127.0.0.1" for e in one_by_one)
    assert 10 <= len(one_by_one) <= 20  # ten a minute (twenty if the flood straddled a minute)
    assert counted and all(e.client == "127.0.0.1" for e in counted)
    assert len(one_by_one) + sum(e.rows or 0 for e in counted) == 300


def test_serve_prunes_entries_past_the_retention_age(portal_env: PortalEnv) -> None:
    audit.record(portal_env.portal_dir, "login", "ok", username="alice", client="127.0.0.1")
    with sqlite3.connect(db_path(portal_env.portal_dir)) as conn:
        conn.execute("update audit set at_epoch = ? where username = 'alice'", (time.time() - 400 * 86400,))
    audit.record(portal_env.portal_dir, "login", "ok", username="nora", client="127.0.0.1")

    server = start_server(portal_env, "--audit-keep-days", "365")
    stop_server(server)
    users = {e.username for e in audit.entries(portal_env.portal_dir, event="login")}
    assert "nora" in users and "alice" not in users
    pruned = audit.entries(portal_env.portal_dir, event="audit", outcome="pruned")
    assert len(pruned) == 1 and pruned[0].rows == 1
    assert "older than 365 days" in (pruned[0].detail or "")
