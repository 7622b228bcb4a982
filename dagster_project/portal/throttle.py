"""The sign-in throttle: temporary, growing lockouts that an outsider cannot make permanent.

Every sign-in attempt is decided and recorded in ONE SQLite write transaction (BEGIN IMMEDIATE)
before the password is hashed: the attempt is stored as `pending` (it counts as a failure while
the hash runs) and turned into `ok` or `failed` afterwards. So a burst of parallel guesses gets
exactly the allowed number of tries, never more, and the refused ones cost no scrypt work.

Rules (defaults in `LoginPolicy`):

* A "known" address for a user is one from which that user signed in successfully in the last
  30 days. There, only that address's own failures for the user count, since its last success.
* From any other address, the user's failures of the last 24 h from all addresses that are not
  known for the user count (a success at the user's desk does not reset them, so it does not
  hand a guesser fresh tries).
* 5 counted failures lock the name (for that kind of address) for 1 minute after the last
  failure; each further failure doubles the wait, up to 15 minutes. A lock always ends.
  So guessing from elsewhere cannot lock a manager out of the desk they normally sign in from;
  it can delay a sign-in from a new address (a new PC, travel) while the guessing goes on: the
  price of not letting the guesser try faster.
* Per address: 50 failed sign-ins (any user names) within 15 minutes block further sign-ins
  from that address, except for users who are known there. A whole office behind one proxy
  address keeps working while one machine sprays passwords.

User names are stored as a keyed hash (HMAC with the portal's secret), never in clear: a password
typed into the user-name box does not end up in the database. Old rows are deleted as they age.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dagster_project.portal.db import connect
from dagster_project.portal.secret import load_or_create_secret


@dataclass(frozen=True)
class LoginPolicy:
    max_failures_per_user: int = 5
    lockout_base_seconds: int = 60
    lockout_max_seconds: int = 15 * 60
    failure_memory_seconds: int = 24 * 3600
    max_failures_per_client: int = 50
    client_window_seconds: int = 15 * 60
    known_client_days: int = 30


@dataclass(frozen=True)
class Decision:
    """`attempt_id` is set when the attempt may go ahead; otherwise `retry_after` seconds and why."""

    attempt_id: int | None
    retry_after: int = 0
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.attempt_id is not None


@lru_cache(maxsize=8)
def _key(portal_dir: Path) -> bytes:
    return load_or_create_secret(portal_dir).encode()


def name_key(portal_dir: Path, username: str) -> str:
    """The stored form of a typed user name: HMAC-SHA256 with the portal secret."""
    return hmac.new(_key(portal_dir), username.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def lockout_seconds(failures: int, policy: LoginPolicy) -> int:
    """How long a name stays locked after its `failures`-th failure (0 below the threshold)."""
    if failures < policy.max_failures_per_user:
        return 0
    doublings = min(failures - policy.max_failures_per_user, 30)
    return min(policy.lockout_base_seconds * 2**doublings, policy.lockout_max_seconds)


def begin_attempt(
    portal_dir: Path, key: str, client: str | None, policy: LoginPolicy, now: float | None = None
) -> Decision:
    """Decide whether a sign-in may be tried and, if so, record it as pending; atomic."""
    now = time.time() if now is None else now
    address = client or ""
    failed = "outcome in ('pending', 'failed')"
    with connect(portal_dir, immediate=True) as conn:
        conn.execute(
            "delete from login_attempts where (outcome != 'ok' and at_epoch < ?) or at_epoch < ?",
            (
                now - max(policy.failure_memory_seconds, policy.client_window_seconds),
                now - policy.known_client_days * 86400,
            ),
        )
        memory_start = now - policy.failure_memory_seconds
        known_since = conn.execute(
            "select max(at_epoch) from login_attempts where name_key = ? and client = ? and outcome = 'ok'",
            (key, address),
        ).fetchone()[0]
        if known_since is not None:
            # A known address: only its own failures for this user since its last success count.
            failures, last_failure = conn.execute(
                f"select count(*), max(at_epoch) from login_attempts where name_key = ? and client = ? and {failed}"
                " and at_epoch > ?",
                (key, address, max(known_since, memory_start)),
            ).fetchone()
        else:
            # Elsewhere: the failures from every address this user has not signed in from. A success
            # at the user's desk does not reset them, so it does not hand a guesser new tries.
            failures, last_failure = conn.execute(
                f"select count(*), max(at_epoch) from login_attempts where name_key = ? and {failed}"
                " and at_epoch > ? and client not in"
                " (select client from login_attempts where name_key = ? and outcome = 'ok')",
                (key, memory_start, key),
            ).fetchone()
        wait = lockout_seconds(int(failures), policy)
        if wait and last_failure is not None and now < last_failure + wait:
            return Decision(None, math.ceil(last_failure + wait - now), "too many failed sign-ins for this user")
        if known_since is None:
            from_client, oldest = conn.execute(
                f"select count(*), min(at_epoch) from login_attempts where client = ? and {failed} and at_epoch > ?",
                (address, now - policy.client_window_seconds),
            ).fetchone()
            if from_client >= policy.max_failures_per_client:
                retry = math.ceil(oldest + policy.client_window_seconds - now)
                return Decision(None, max(retry, 1), "too many failed sign-ins from this address")
        cursor = conn.execute(
            "insert into login_attempts (name_key, client, at_epoch, outcome) values (?, ?, ?, 'pending')",
            (key, address, now),
        )
        if cursor.lastrowid is None:
            raise RuntimeError("SQLite did not return the id of the recorded sign-in attempt")
        return Decision(cursor.lastrowid)


def finish_attempt(portal_dir: Path, attempt_id: int, ok: bool, now: float | None = None) -> None:
    """Settle a pending attempt. A success is stamped now: it starts the name's and address's clean slate."""
    now = time.time() if now is None else now
    with connect(portal_dir) as conn:
        if ok:
            conn.execute("update login_attempts set outcome = 'ok', at_epoch = ? where id = ?", (now, attempt_id))
        else:
            conn.execute("update login_attempts set outcome = 'failed' where id = ?", (attempt_id,))


def forget_failures(portal_dir: Path, username: str) -> int:
    """Lift a name's lock: delete its failed and pending attempts (after `users set-password`)."""
    with connect(portal_dir) as conn:
        return conn.execute(
            "delete from login_attempts where name_key = ? and outcome != 'ok'", (name_key(portal_dir, username),)
        ).rowcount


def cancel_attempt(portal_dir: Path, attempt_id: int) -> None:
    """Forget an attempt that was never judged (the server was too busy to hash the password)."""
    with connect(portal_dir) as conn:
        conn.execute("delete from login_attempts where id = ? and outcome = 'pending'", (attempt_id,))
