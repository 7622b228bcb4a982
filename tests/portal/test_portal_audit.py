"""The audit log's own limits on a real server: floods are counted, not stored row by row; old
entries go when `serve --audit-keep-days` says so, at start and while the portal runs."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
from fastapi.testclient import TestClient
from portal_testkit import PortalEnv, login, start_server, stop_server

from dagster_project.portal import audit
from dagster_project.portal.app import create_app
from dagster_project.portal.config import PortalConfig
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


def test_failed_sign_ins_with_unknown_names_are_counted_like_other_unauthenticated_requests(
    portal_env: PortalEnv,
) -> None:
    """Anyone can send them, and each costs only a hash: one by one up to 10 a minute per address."""
    server = start_server(portal_env)
    try:
        answers = [login(server, f"sprayed-{i}", "password-guess", source="127.0.0.71") for i in range(25)]
        assert [a.status_code for a in answers] == [401] * 25
    finally:
        stop_server(server)
    rows = [e for e in audit.entries(portal_env.portal_dir, limit=5000) if e.client == "127.0.0.71"]
    one_by_one = [e for e in rows if (e.event, e.outcome) == ("login", "failed")]
    counted = [e for e in rows if (e.event, e.outcome) == ("unauthenticated", "suppressed")]
    assert 10 <= len(one_by_one) <= 20 and {e.username for e in one_by_one} == {audit.UNKNOWN_USER}
    assert len(one_by_one) + sum(e.rows or 0 for e in counted) == 25


def test_the_running_portal_prunes_old_entries_on_its_own(portal_env: PortalEnv) -> None:
    config = replace(PortalConfig.from_settings(audit_keep_days=30), audit_prune_every_seconds=0)
    audit.record(portal_env.portal_dir, "login", "ok", username="old.timer", client="127.0.0.1")
    with sqlite3.connect(db_path(portal_env.portal_dir)) as conn:
        conn.execute("update audit set at_epoch = ? where username = 'old.timer'", (time.time() - 31 * 86400,))
    with TestClient(create_app(config)) as client:
        assert client.get("/healthz").status_code == 200
    assert not audit.entries(portal_env.portal_dir, username="old.timer")
    pruned = audit.entries(portal_env.portal_dir, event="audit", outcome="pruned")[0]
    assert (pruned.username, pruned.rows) == ("portal", 1) and "older than 30 days" in (pruned.detail or "")
