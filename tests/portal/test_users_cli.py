"""`crm-warehouse users ...` and the stored credentials, plus revocation on a running server."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from portal_testkit import USERS, LiveServer, PortalEnv, raw_get, sign_in

from dagster_project.cli import main
from dagster_project.portal.app import create_app
from dagster_project.portal.config import PortalConfig
from dagster_project.portal.db import db_path
from dagster_project.portal.users import authenticate, get_user, hash_password


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, input=stdin, env=env)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "CRM_DATA_DIR": str(tmp_path / "data"),
        "CRM_PORTAL_DIR": str(tmp_path / "portal"),
        "CRM_EXPORTS_DIR": str(tmp_path / "exports"),
        "CRM_INBOX": str(tmp_path / "inbox"),
        "CRM_REFERENCE_DIR": str(tmp_path / "reference"),
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
    for name in ("one", "two"):
        assert run(["users", "add", name, "--team", "north"], {**env, "CRM_PASSWORD": same}).exit_code == 0
    create_app(PortalConfig.from_settings())  # creates the session secret

    with sqlite3.connect(db_path(portal)) as conn:
        rows = conn.execute("select username, salt, password_hash, scrypt_n from users order by username").fetchall()
    (_, salt1, hash1, n1), (_, salt2, hash2, _) = rows
    assert salt1 != salt2 and hash1 != hash2 and len(salt1) == 16
    assert hash1 == hash_password(same, salt1, n1)
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
