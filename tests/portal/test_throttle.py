"""The sign-in throttle and the refusal limiter against a real portal database, with explicit clocks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dagster_project.portal import audit
from dagster_project.portal.db import init_db
from dagster_project.portal.throttle import (
    Decision,
    LoginPolicy,
    begin_attempt,
    finish_attempt,
    lockout_seconds,
    name_key,
)

POLICY = LoginPolicy()
T0 = 1_700_000_000.0


@pytest.fixture
def portal(tmp_path: Path) -> Path:
    init_db(tmp_path / "portal")
    return tmp_path / "portal"


def attempt(portal: Path, name: str, client: str, at: float, ok: bool = False) -> Decision:
    """One sign-in attempt at time `at`; settled right away when it was allowed."""
    decision = begin_attempt(portal, name_key(portal, name), client, POLICY, now=at)
    if decision.attempt_id is not None:
        finish_attempt(portal, decision.attempt_id, ok, now=at)
    return decision


def test_lockout_grows_from_one_to_fifteen_minutes() -> None:
    assert [lockout_seconds(n, POLICY) for n in range(12)] == [0, 0, 0, 0, 0, 60, 120, 240, 480, 900, 900, 900]


def test_a_locked_name_opens_again_and_each_new_failure_doubles_the_wait(portal: Path) -> None:
    for i in range(5):
        assert attempt(portal, "li", "10.0.0.9", T0 + i).allowed
    last = T0 + 4
    refused = attempt(portal, "li", "10.0.0.9", last + 30)
    assert not refused.allowed and refused.retry_after == 30
    assert refused.reason == "too many failed sign-ins for this user"

    for wait in (60, 120, 240, 480, 900, 900):
        assert not attempt(portal, "li", "10.0.0.9", last + wait - 1).allowed
        assert attempt(portal, "li", "10.0.0.9", last + wait).allowed  # and fails again
        last += wait
    # A right password after the wait: the slate is clean, five more tries before the next lock.
    assert attempt(portal, "li", "10.0.0.9", last + 900, ok=True).allowed
    for i in range(5):
        assert attempt(portal, "li", "10.0.0.9", last + 901 + i).allowed
    assert not attempt(portal, "li", "10.0.0.9", last + 906).allowed


def test_failures_are_forgotten_after_a_day(portal: Path) -> None:
    for i in range(9):
        attempt(portal, "li", "10.0.0.9", T0 + i * 1000)
    assert not attempt(portal, "li", "10.0.0.9", T0 + 8000 + 899).allowed
    assert attempt(portal, "li", "10.0.0.9", T0 + 8000 + 86400 + 1).allowed


def test_guesses_from_elsewhere_do_not_lock_out_the_users_own_address(portal: Path) -> None:
    assert attempt(portal, "boss", "10.1.1.1", T0, ok=True).allowed  # the manager's desk
    for i in range(20):
        attempt(portal, "boss", "203.0.113.66", T0 + 10 + i)
    assert not attempt(portal, "boss", "203.0.113.66", T0 + 40).allowed
    assert not attempt(portal, "boss", "198.51.100.1", T0 + 40).allowed  # any other new address
    assert attempt(portal, "boss", "10.1.1.1", T0 + 41, ok=True).allowed
    # At the known address only its own failures count, with the same limit.
    for i in range(5):
        assert attempt(portal, "boss", "10.1.1.1", T0 + 50 + i).allowed
    assert not attempt(portal, "boss", "10.1.1.1", T0 + 56).allowed


def test_an_address_spraying_names_is_stopped_but_its_known_users_are_not(portal: Path) -> None:
    proxy = "192.0.2.10"  # a whole office behind one address
    assert attempt(portal, "agent.li", proxy, T0, ok=True).allowed
    for i in range(POLICY.max_failures_per_client):
        assert attempt(portal, f"guess{i}", proxy, T0 + 1 + i).allowed
    refused = attempt(portal, "someone-new", proxy, T0 + 100)
    assert not refused.allowed and refused.reason == "too many failed sign-ins from this address"
    assert refused.retry_after == POLICY.client_window_seconds - 99
    assert attempt(portal, "agent.li", proxy, T0 + 101, ok=True).allowed
    assert attempt(portal, "someone-new", proxy, T0 + 1 + POLICY.client_window_seconds + 1).allowed


def test_parallel_attempts_get_exactly_the_allowed_number(portal: Path) -> None:
    key = name_key(portal, "li")
    decisions: list[Decision] = []
    start = threading.Barrier(40)

    def one() -> None:
        start.wait()
        decisions.append(begin_attempt(portal, key, "10.0.0.9", POLICY, now=T0))

    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(d.allowed for d in decisions) == POLICY.max_failures_per_user


def test_user_names_are_stored_as_keyed_hashes(portal: Path) -> None:
    attempt(portal, "my-secret-password", "10.0.0.9", T0)
    assert b"my-secret-password" not in (portal / "portal.sqlite").read_bytes()
    assert name_key(portal, "li") != name_key(portal, "lu") and len(name_key(portal, "li")) == 64


def test_refusal_limiter_records_ten_per_address_a_minute_then_counts(portal: Path) -> None:
    limiter = audit.RefusalLimiter(portal)
    minute = (T0 // 60) * 60
    for i in range(30):
        limiter.record("unauthenticated", "refused", client="203.0.113.5", target="GET /api/me", now=minute + i)
    limiter.record("unauthenticated", "refused", client="198.51.100.1", target="GET /lists", now=minute + 31)
    rows = audit.entries(portal, event="unauthenticated")
    assert len(rows) == 11 and {e.outcome for e in rows} == {"refused"}

    # The next minute's first refusal writes the count of the minute before.
    limiter.record("unauthenticated", "refused", client="203.0.113.5", target="GET /api/me", now=minute + 61)
    summary = audit.entries(portal, event="unauthenticated", outcome="suppressed")
    assert [(e.client, e.rows) for e in summary] == [("203.0.113.5", 20)]
    assert "20 more refusals" in (summary[0].detail or "")
    assert len(audit.entries(portal, event="unauthenticated", outcome="refused")) == 12

    for i in range(15):
        limiter.record("unauthenticated", "refused", client="203.0.113.5", now=minute + 62 + i)
    limiter.flush()  # at shutdown: whatever is pending
    assert [e.rows for e in audit.entries(portal, event="unauthenticated", outcome="suppressed")] == [6, 20]
