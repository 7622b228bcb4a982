"""Sign-in under load and attack, against a real `crm-warehouse serve --trust-proxy 127.0.0.1`.

The server trusts X-Forwarded-For from this machine, as it would behind a local TLS proxy, so the
tests can act as clients at different addresses. Unlike the other modules' servers it hashes at
the production scrypt cost (CRM_PORTAL_SCRYPT_LOG2_N unset): the memory and re-hash tests are
about that cost. The sample users were hashed at the test cost, so they are upgraded on the way.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from portal_testkit import USERS, LiveServer, PortalEnv, login, start_server, stop_server

from dagster_project.portal import audit
from dagster_project.portal.db import db_path
from dagster_project.portal.users import HASH_SLOTS, SCRYPT_N, StoredHash, hash_password, scrypt_memory


@pytest.fixture(scope="module")
def server(portal_env: PortalEnv) -> Iterator[LiveServer]:
    live = start_server(portal_env, "--trust-proxy", "127.0.0.1", env_changes={"CRM_PORTAL_SCRYPT_LOG2_N": None})
    try:
        yield live
    finally:
        stop_server(live)


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def test_a_burst_of_sign_ins_hashes_only_a_few_passwords_at_a_time(server: LiveServer) -> None:
    """Each scrypt hash takes 128 MiB: 8 sign-ins at once must not take 8 x 128 MiB."""
    before = memory_kib(server.process.pid)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: login(server, f"nobody{i}", "some-password", headers=from_address(f"192.0.2.{i + 1}")),
                range(8),
            )
        )
    assert [a.status_code for a in answers] == [401] * 8  # queued, then answered, none dropped
    peak = memory_kib(server.process.pid)["VmHWM"]
    per_hash = scrypt_memory(SCRYPT_N, 8, 1) // 1024
    assert peak - before["VmRSS"] < (HASH_SLOTS + 1) * per_hash, (before, peak, HASH_SLOTS)


def test_parallel_wrong_passwords_get_exactly_the_allowed_tries(server: LiveServer, portal_env: PortalEnv) -> None:
    with ThreadPoolExecutor(100) as pool:
        answers = list(
            pool.map(
                lambda _: login(server, "locky", "guess-guess-1", headers=from_address("198.51.100.7")), range(100)
            )
        )
    assert Counter(a.status_code for a in answers) == {401: 5, 429: 95}
    failed = audit.entries(portal_env.portal_dir, event="login", username="locky", outcome="failed")
    assert len(failed) == 5
    # The 95 refusals are audited: ten a minute one by one (twenty if the burst straddles a minute),
    # the rest as a count.
    refused = audit.entries(portal_env.portal_dir, event="login", username="locky", outcome="refused")
    assert 10 <= len(refused) <= 20 and all(e.client == "198.51.100.7" for e in refused)


def test_x_forwarded_for_names_the_client_behind_a_trusted_proxy(server: LiveServer, portal_env: PortalEnv) -> None:
    assert login(server, "sam", "wrong-password-1", headers=from_address("203.0.113.5")).status_code == 401
    entry = audit.entries(portal_env.portal_dir, event="login", username="sam", outcome="failed")[0]
    assert entry.client == "203.0.113.5"


def test_guessing_cannot_lock_a_manager_out_of_her_usual_address(server: LiveServer, portal_env: PortalEnv) -> None:
    desk, attacker = from_address("10.0.0.1"), from_address("198.51.100.66")
    assert login(server, "mia", USERS["mia"][2], headers=desk).status_code == 200
    answers = [login(server, "mia", f"guess-{i}-guess", headers=attacker).status_code for i in range(7)]
    assert answers == [401] * 5 + [429] * 2
    assert login(server, "mia", USERS["mia"][2], headers=desk).status_code == 200
    # A new address is locked for a while (temporary: one minute now, growing to 15 at most).
    locked = login(server, "mia", USERS["mia"][2], headers=from_address("10.0.0.2"))
    assert locked.status_code == 429
    assert "Try again in 1 minute" in locked.json()["detail"]
    assert "set-cookie" not in locked.headers


@pytest.mark.parametrize("layout", ["columns", "weak-string"])
def test_a_weaker_stored_hash_is_upgraded_at_sign_in(server: LiveServer, portal_env: PortalEnv, layout: str) -> None:
    """Hashes made before the cost was raised (n=2^14) still work and are re-hashed at n=2^17."""
    name, password = f"old.{layout}", "an-old-password-1"
    salt = bytes(range(16))
    weak = hash_password(password, salt, 2**14, 8, 1)
    stored: object = weak if layout == "columns" else StoredHash(salt, weak, 2**14, 8, 1).encode()
    with sqlite3.connect(db_path(portal_env.portal_dir)) as conn:
        conn.execute(
            "insert into users (username, team, role, salt, password_hash, scrypt_n, scrypt_r, scrypt_p,"
            " created_at, password_changed_at) values (?, 'north', 'agent', ?, ?, ?, 8, 1, '2024-01-01', '2024-01-01')",
            (name, salt, stored, 2**14),
        )
    headers = from_address(f"10.2.0.{len(layout)}")
    assert login(server, name, "not-the-password", headers=headers).status_code == 401
    assert login(server, name, password, headers=headers).status_code == 200
    with sqlite3.connect(db_path(portal_env.portal_dir)) as conn:
        (value,) = conn.execute("select password_hash from users where username = ?", (name,)).fetchone()
    upgraded = StoredHash.parse(value)
    assert (upgraded.n, upgraded.r, upgraded.p) == (2**17, 8, 1) and upgraded.salt != salt
    assert login(server, name, password, headers=headers).status_code == 200
    assert login(server, name, "not-the-password", headers=headers).status_code == 401
