"""`crm-warehouse users ...` and the stored credentials, plus revocation on a running server."""

from __future__ import annotations

import getpass
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from portal_testkit import TEST_SCRYPT, USERS, LiveServer, PortalEnv, raw_get, sign_in

from dagster_project import settings
from dagster_project.cli import main
from dagster_project.portal import audit, throttle, users
from dagster_project.portal.app import create_app
from dagster_project.portal.config import PortalConfig
from dagster_project.portal.db import db_path
from dagster_project.portal.throttle import LoginPolicy
from dagster_project.portal.users import StoredHash, authenticate, get_user, hash_password

HASH_STRING = re.compile(r"\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}")


def run(args: list[str], env: Mapping[str, str | None], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, input=stdin, env=env)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "CRM_DATA_DIR": str(tmp_path / "data"),
        "CRM_PORTAL_DIR": str(tmp_path / "portal"),
        "CRM_EXPORTS_DIR": str(tmp_path / "exports"),
        "CRM_INBOX": str(tmp_path / "inbox"),
        "CRM_REFERENCE_DIR": str(tmp_path / "reference"),
        **TEST_SCRYPT,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM_PASSWORD", raising=False)
    return values


def test_add_from_env_and_stdin_then_list(env: dict[str, str]) -> None:
    portal = Path(env["CRM_PORTAL_DIR"])
    result = run(["users", "add", "Agent.Li", "--team", "north"], {**env, "CRM_PASSWORD": "first-password-1"})
    assert result.exit_code == 0, result.output
    assert "added agent.li (agent, team north)" in result.output
    result = run(["users", "add", "wang", "--team", "north", "--role", "lead"], env, stdin="second-password-2\n")
    assert result.exit_code == 0, result.output
    result = run(["users", "add", "boss", "--role", "manager"], env, stdin="third-password-3\n")
    assert result.exit_code == 0, result.output

    assert authenticate(portal, "agent.li", "first-password-1") is not None
    assert authenticate(portal, "wang", "second-password-2") is not None
    assert authenticate(portal, "wang", "second-password-2\n") is None
    assert get_user(portal, "boss").role == "manager"  # type: ignore[union-attr]

    listing = run(["users", "list"], env)
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0].split()[:3] == ["user", "team", "role"]
    assert any(line.split()[:3] == ["agent.li", "north", "agent"] for line in lines)
    assert any(line.split()[:3] == ["boss", "-", "manager"] for line in lines)
    assert "password-" not in listing.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["users", "add", "x1", "--team", "north"], "short\n", "at least 10 characters"),
        (["users", "add", "x2"], "long-enough-password\n", "needs a team"),
        (["users", "add", "x3", "--team", "North Team"], "long-enough-password\n", "not a team code"),
        (["users", "add", "../x", "--team", "north"], "long-enough-password\n", "is not allowed"),
        (["users", "add", "x4", "--team", "north"], "", "no password"),
        (
            ["users", "add", "x5", "--team", "north", "pass-on-command-line"],
            "long-enough-password\n",
            "unexpected extra argument",
        ),
        (["users", "add", "x6", "--team", "north", "--role", "admin"], "long-enough-password\n", "admin"),
        (["users", "remove", "ghost"], None, "no user ghost"),
        (["users", "set-password", "ghost"], "long-enough-password\n", "no user ghost"),
    ],
)
def test_bad_requests_fail_with_a_message(
    env: dict[str, str], args: list[str], stdin: str | None, message: str
) -> None:
    result = run(args, env, stdin)
    assert result.exit_code != 0
    assert message in result.output.lower() or message in str(result.output)


def test_duplicate_user_is_refused(env: dict[str, str]) -> None:
    assert run(["users", "add", "li", "--team", "north"], env, "li-password-01\n").exit_code == 0
    again = run(["users", "add", "li", "--team", "south"], env, "li-password-02\n")
    assert again.exit_code != 0 and "already exists" in again.output
    assert get_user(Path(env["CRM_PORTAL_DIR"]), "li").team == "north"  # type: ignore[union-attr]


def test_set_password_and_remove(env: dict[str, str]) -> None:
    portal = Path(env["CRM_PORTAL_DIR"])
    assert run(["users", "add", "li", "--team", "north"], env, "old-password-01\n").exit_code == 0
    result = run(["users", "set-password", "li"], {**env, "CRM_PASSWORD": "new-password-02"})
    assert result.exit_code == 0, result.output
    assert authenticate(portal, "li", "old-password-01") is None
    assert authenticate(portal, "li", "new-password-02") is not None
    result = run(["users", "remove", "LI"], env)
    assert result.exit_code == 0 and "removed li" in result.output
    assert get_user(portal, "li") is None
    assert authenticate(portal, "li", "new-password-02") is None


def test_credentials_are_salted_scrypt_hashes_in_private_files(env: dict[str, str]) -> None:
    portal = Path(env["CRM_PORTAL_DIR"])
    same = "same-password-123"
    production = {**env, "CRM_PASSWORD": same, "CRM_PORTAL_SCRYPT_LOG2_N": None}  # the default cost
    for name in ("one", "two"):
        assert run(["users", "add", name, "--team", "north"], production).exit_code == 0
    create_app(PortalConfig.from_settings())  # creates the session secret

    with sqlite3.connect(db_path(portal)) as conn:
        rows = conn.execute("select username, salt, password_hash from users order by username").fetchall()
    (_, salt1, hash1), (_, salt2, hash2) = rows
    # One self-describing string per user, at OWASP's scrypt cost: N=2^17, r=8, p=1.
    assert HASH_STRING.fullmatch(hash1) and HASH_STRING.fullmatch(hash2), hash1
    first, second = StoredHash.parse(hash1), StoredHash.parse(hash2)
    assert (first.n, first.r, first.p) == (2**17, 8, 1)
    assert first.salt != second.salt and first.digest != second.digest and len(first.salt) == 16
    assert first.salt == salt1  # the older columns repeat it
    assert first.digest == hash_password(same, first.salt, 2**17, 8, 1)
    assert same.encode() not in db_path(portal).read_bytes()

    assert stat.S_IMODE(portal.stat().st_mode) == 0o700
    assert stat.S_IMODE(db_path(portal).stat().st_mode) == 0o600
    secret = portal / "session_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    first = secret.read_text()
    create_app(PortalConfig.from_settings())
    assert secret.read_text() == first  # generated once, then reused

    os.chmod(secret, 0o644)
    create_app(PortalConfig.from_settings())
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # 2^40: no
        "$scrypt$ln=17,r=8$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=17,r=8,p=1$not base64!$AAAA",
        "$pbkdf2$i=1000$AAAA$AAAA",
    ],
)
def test_a_hash_string_out_of_range_or_malformed_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        StoredHash.parse(text)


def test_hash_strings_round_trip() -> None:
    stored = StoredHash(bytes(range(16)), bytes(range(32)), 2**17, 8, 1)
    assert StoredHash.parse(stored.encode()) == stored and stored.is_current
    assert not StoredHash(bytes(16), bytes(32), 2**14, 8, 1).is_current


def test_the_scrypt_cost_is_2_17_unless_the_test_setting_lowers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_PORTAL_SCRYPT_LOG2_N", raising=False)
    assert settings.portal_scrypt_log2_n() == 17 and users.current_n() == 2**17 == users.SCRYPT_N
    assert not StoredHash(bytes(16), bytes(32), 2**16, 8, 1).is_current
    monkeypatch.setenv("CRM_PORTAL_SCRYPT_LOG2_N", "12")
    assert users.current_n() == 2**12 and StoredHash(bytes(16), bytes(32), 2**12, 8, 1).is_current
    for bad in ("9", "21", "2**17", "-1"):
        monkeypatch.setenv("CRM_PORTAL_SCRYPT_LOG2_N", bad)
        with pytest.raises(ValueError, match="CRM_PORTAL_SCRYPT_LOG2_N"):
            settings.portal_scrypt_log2_n()


def test_hashing_is_bounded_and_a_flood_beyond_the_queue_is_refused_at_once() -> None:
    """HASH_SLOTS hashes run, HASH_QUEUE more wait; the next sign-in gets PasswordHashBusy straight away."""
    gate = users._hash_gate
    held = [gate.slots.acquire(timeout=5) for _ in range(users.HASH_SLOTS)]  # every slot busy
    assert all(held)
    waiting = users.HASH_SLOTS + users.HASH_QUEUE
    threads = [threading.Thread(target=hash_password, args=("pw", bytes(16), 2**10)) for _ in range(waiting)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while gate.demand < waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gate.demand == waiting
        started = time.monotonic()
        with pytest.raises(users.PasswordHashBusy):
            hash_password("pw", bytes(16), 2**10)
        assert time.monotonic() - started < 1  # refused, not queued for HASH_WAIT_SECONDS
    finally:
        for _ in held:
            gate.slots.release()
        for thread in threads:
            thread.join(timeout=30)
    assert gate.demand == 0
    assert hash_password("pw", bytes(16), 2**10) == hash_password("pw", bytes(16), 2**10)


def test_user_changes_are_in_the_audit_log_with_the_os_user_as_actor(env: dict[str, str]) -> None:
    portal = Path(env["CRM_PORTAL_DIR"])
    actor = f"os:{getpass.getuser()}"
    assert run(["users", "add", "li", "--team", "north", "--role", "lead"], env, "li-password-01\n").exit_code == 0
    assert run(["users", "set-password", "li"], env, "li-password-02\n").exit_code == 0
    assert run(["users", "set-password", "li"], env, "short\n").exit_code != 0
    assert run(["users", "remove", "li"], env).exit_code == 0
    assert run(["users", "remove", "li"], env).exit_code != 0

    changes = list(reversed(audit.entries(portal, event="users")))
    assert [(e.username, e.target, e.outcome) for e in changes] == [
        (actor, "li", "ok"),
        (actor, "li", "ok"),
        (actor, "li", "failed"),
        (actor, "li", "ok"),
        (actor, "li", "failed"),
    ]
    assert [e.detail for e in changes] == [
        "added (lead, team north)",
        "password set; sessions ended",
        "set-password refused: the password must have at least 10 characters",
        "removed (lead, team north); sessions ended",
        "remove refused: no such user",
    ]
    assert all(e.client == "command line" for e in changes)
    assert [e.team for e in changes[:4]] == ["north"] * 4  # the team's lead sees changes to the team
    assert b"li-password-0" not in db_path(portal).read_bytes()


def test_audit_prune_deletes_old_entries_and_records_that_it_did(env: dict[str, str]) -> None:
    portal = Path(env["CRM_PORTAL_DIR"])
    assert run(["users", "add", "li", "--team", "north"], env, "li-password-01\n").exit_code == 0
    with sqlite3.connect(db_path(portal)) as conn:  # age the entry of the `add` by 100 days
        conn.execute("update audit set at_epoch = ? where event = 'users'", (time.time() - 100 * 86400,))
    audit.record(portal, "login", "ok", username="li", client="127.0.0.1")  # a fresh one

    result = run(["users", "audit-prune", "--older-than", "90"], env)
    assert result.exit_code == 0, result.output
    assert "deleted 1 audit entries older than 90 days" in result.output
    left = audit.entries(portal)
    assert [(e.event, e.outcome) for e in left] == [("audit", "pruned"), ("login", "ok")]
    assert left[0].rows == 1 and left[0].username == f"os:{getpass.getuser()}"
    assert run(["users", "audit-prune", "--older-than", "0"], env).exit_code != 0  # at least one day


def test_removing_a_user_or_changing_a_password_ends_live_sessions(server: LiveServer, portal_env: PortalEnv) -> None:
    env = portal_env.env
    with sign_in(server, "sam") as client:
        assert client.get("/api/me").status_code == 200
        result = run(["users", "set-password", "sam"], {**env, "CRM_PASSWORD": "sam-password-NEW"})
        assert result.exit_code == 0, result.output
        assert client.get("/api/me").status_code == 401
    response = httpx.post(
        f"{server.url}/api/login", json={"username": "sam", "password": "sam-password-NEW"}, timeout=30
    )
    assert response.status_code == 200

    with sign_in(server, "sue") as client:
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        assert raw_get(server, "/api/lists", cookie)[0] == 200
        assert run(["users", "remove", "sue"], env).exit_code == 0
        assert raw_get(server, "/api/lists", cookie)[0] == 401
    response = httpx.post(f"{server.url}/api/login", json={"username": "sue", "password": USERS["sue"][2]}, timeout=30)
    assert response.status_code == 401


def test_set_password_lifts_a_sign_in_lock(env: dict[str, str]) -> None:
    portal = Path(env["CRM_PORTAL_DIR"])
    assert run(["users", "add", "li", "--team", "north"], env, "li-password-01\n").exit_code == 0
    key, policy = throttle.name_key(portal, "li"), LoginPolicy()
    for _ in range(policy.max_failures_per_user):
        decision = throttle.begin_attempt(portal, key, "10.9.9.9", policy)
        assert decision.attempt_id is not None
        throttle.finish_attempt(portal, decision.attempt_id, ok=False)
    assert not throttle.begin_attempt(portal, key, "10.9.9.9", policy).allowed  # locked

    result = run(["users", "set-password", "li"], env, "li-password-02\n")
    assert result.exit_code == 0, result.output
    assert "5 failed sign-ins forgotten (lock lifted)" in result.output
    assert throttle.begin_attempt(portal, key, "10.9.9.9", policy).allowed
    assert "lock lifted" in (audit.entries(portal, event="users")[0].detail or "")
