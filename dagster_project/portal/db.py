"""The portal's own state: one SQLite file under `settings.portal_dir()`.

Tables: `users` (team, role, scrypt hash), `sessions` (server-side session ids, so sign-out and
user removal revoke a cookie at once), `audit` (every sign-in, view, download, upload, refusal and
user change) and `login_attempts` (the sign-in throttle's counters, see `throttle.py`).
The folder is created 0700 and the file 0600 on first use: it holds password hashes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DB_NAME = "portal.sqlite"

SCHEMA = """
create table if not exists users (
    username            text primary key,
    team                text,
    role                text not null check (role in ('agent', 'lead', 'manager')),
    salt                blob not null,
    password_hash       blob not null,
    scrypt_n            integer not null,
    scrypt_r            integer not null,
    scrypt_p            integer not null,
    created_at          text not null,
    password_changed_at text not null
);
create table if not exists sessions (
    session_hash text primary key,
    username     text not null references users(username) on delete cascade,
    created_at   real not null,
    expires_at   real not null
);
create index if not exists sessions_by_user on sessions(username);
create table if not exists audit (
    id        integer primary key autoincrement,
    at        text not null,
    at_epoch  real not null,
    username  text,
    team      text,
    role      text,
    event     text not null,
    outcome   text not null,
    target    text,
    rows      integer,
    client    text,
    detail    text
);
create index if not exists audit_by_time on audit(at_epoch);
create index if not exists audit_by_user on audit(username, event, at_epoch);
create index if not exists audit_by_client on audit(client, event, at_epoch);
create table if not exists login_attempts (
    id        integer primary key autoincrement,
    name_key  text not null,
    client    text not null,
    at_epoch  real not null,
    outcome   text not null check (outcome in ('pending', 'failed', 'ok'))
);
create index if not exists login_attempts_by_name on login_attempts(name_key, outcome, at_epoch);
create index if not exists login_attempts_by_client on login_attempts(client, outcome, at_epoch);
create index if not exists login_attempts_by_time on login_attempts(at_epoch);
"""


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (0700) if missing; tighten it if it is readable by others."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def db_path(portal_dir: Path) -> Path:
    return portal_dir / DB_NAME


def init_db(portal_dir: Path) -> Path:
    """Create the folder, the file (0600) and the tables if needed. Idempotent."""
    ensure_private_dir(portal_dir)
    path = db_path(portal_dir)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=10.0)
    try:
        conn.execute("pragma journal_mode = wal")
        conn.executescript(SCHEMA)
        conn.commit()
    finally:
        conn.close()
    return path


@contextmanager
def connect(portal_dir: Path, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """A short-lived connection: commit on success, roll back on error, always closed.

    `immediate` takes the database's write lock at the start of the transaction (BEGIN IMMEDIATE),
    so a read-then-write decision (the sign-in throttle) cannot interleave with another one.
    """
    conn = sqlite3.connect(db_path(portal_dir), timeout=10.0, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("pragma foreign_keys = on")
        conn.execute("pragma busy_timeout = 10000")
        conn.execute("begin immediate" if immediate else "begin")
        yield conn
        conn.execute("commit")
    except BaseException:
        if conn.in_transaction:
            conn.execute("rollback")
        raise
    finally:
        conn.close()
