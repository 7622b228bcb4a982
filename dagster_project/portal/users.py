"""Portal users, their password hashes and their server-side sessions.

Passwords are hashed with scrypt (standard library) at the OWASP-recommended cost (N=2^17, r=8,
p=1: 128 MiB and about half a second per hash) with a random 16-byte salt per user; N comes from
`settings.portal_scrypt_log2_n()`, which only the tests lower. The hash is
stored as one self-describing string, `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (base64), so the cost
can be raised later: a successful sign-in whose stored hash is weaker (or in the older
column-only form) is re-hashed at the current cost on the spot. At most `HASH_SLOTS` hashes run at
once (a semaphore), so a burst of sign-ins queues instead of exhausting memory and CPU; a sign-in
that finds `HASH_QUEUE` others already waiting, or cannot get a slot within `HASH_WAIT_SECONDS`,
gets `PasswordHashBusy`. A sign-in with an
unknown user name still computes one scrypt hash and compares in constant time, so the answer
time does not reveal which user names exist.

Roles:
  agent    sees and downloads the lists of their own team, uploads outcomes for it
  lead     the same, plus the effectiveness report of their team
  manager  every team's report and list overview (phones masked, no raw downloads), the audit log
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster_project import settings
from dagster_project.exports.lists import TEAM_RE
from dagster_project.portal.db import connect, init_db

log = logging.getLogger(__name__)

ROLES = ("agent", "lead", "manager")
USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

SCRYPT_N = 2**settings.PORTAL_SCRYPT_LOG2_N  # the production default; see current_n()
SCRYPT_R = 8
SCRYPT_P = 1
_HASH_LEN = 32
_SALT_LEN = 16
_DUMMY_SALT = b"\x00" * _SALT_LEN
_HASH_PREFIX = "$scrypt$"
MAX_SCRYPT_MEMORY = 512 * 1024 * 1024  # refuse stored parameters that would need more than this


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Concurrent scrypt computations: one per CPU, at most 4 (4 x 128 MiB). Up to HASH_QUEUE more
# sign-ins wait for a slot (each holds one of the server's 40 worker threads while it waits);
# beyond that a sign-in is refused at once, so a flood cannot tie up every worker thread.
HASH_SLOTS = max(1, min(4, _cpu_count()))
HASH_QUEUE = 16
HASH_WAIT_SECONDS = 20.0


class _HashGate:
    """The hashing slots (a semaphore) and a count of hashes running or waiting for one."""

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = threading.BoundedSemaphore(slots)
        self.capacity = slots + queue
        self.demand = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.demand >= self.capacity:
                raise PasswordHashBusy(f"{self.demand} password hashes running or waiting")
            self.demand += 1
        try:
            if not self.slots.acquire(timeout=HASH_WAIT_SECONDS):
                raise PasswordHashBusy("every password-hashing slot stayed busy")
        except BaseException:
            self._leave_queue()
            raise

    def leave(self) -> None:
        self.slots.release()
        self._leave_queue()

    def _leave_queue(self) -> None:
        with self._lock:
            self.demand -= 1


class UserError(ValueError):
    """A user-management request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class User:
    username: str
    team: str | None
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    @property
    def sees_reports(self) -> bool:
        return self.role in ("lead", "manager")

    def can_see_team(self, team: str) -> bool:
        return self.is_manager or (self.team is not None and self.team == team)

    def can_download_team(self, team: str) -> bool:
        """Raw list files (with phone numbers) only go to the team's own agents and lead."""
        return self.role in ("agent", "lead") and self.team == team

    def can_upload(self) -> bool:
        return self.role in ("agent", "lead") and self.team is not None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class PasswordHashBusy(RuntimeError):
    """Too many sign-ins wait for a hashing slot, or none freed up in `HASH_WAIT_SECONDS`."""


_hash_gate = _HashGate(HASH_SLOTS, HASH_QUEUE)


def current_n() -> int:
    """The scrypt N for new hashes (2^17 unless CRM_PORTAL_SCRYPT_LOG2_N says otherwise)."""
    return 2 ** settings.portal_scrypt_log2_n()


def scrypt_memory(n: int, r: int, p: int) -> int:
    """Bytes OpenSSL needs for these parameters (128·r·(N + p + 2)), the `maxmem` to allow."""
    return 128 * r * (n + p + 2)


def hash_password(
    password: str,
    salt: bytes,
    n: int | None = None,
    r: int = SCRYPT_R,
    p: int = SCRYPT_P,
) -> bytes:
    """The raw scrypt digest (N: `current_n()` unless given); waits for a hashing slot first."""
    n = current_n() if n is None else n
    maxmem = scrypt_memory(n, r, p)
    if maxmem > MAX_SCRYPT_MEMORY:
        raise ValueError(f"scrypt parameters n={n}, r={r}, p={p} need {maxmem >> 20} MiB, more than allowed")
    _hash_gate.enter()
    try:
        return hashlib.scrypt(
            password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem + 1024 * 1024, dklen=_HASH_LEN
        )
    finally:
        _hash_gate.leave()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@dataclass(frozen=True)
class StoredHash:
    """A password hash with everything needed to check it."""

    salt: bytes
    digest: bytes
    n: int
    r: int
    p: int

    def encode(self) -> str:
        """`$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>` (the PHC string format)."""
        return f"{_HASH_PREFIX}ln={self.n.bit_length() - 1},r={self.r},p={self.p}${_b64(self.salt)}${_b64(self.digest)}"

    @property
    def is_current(self) -> bool:
        return self.n >= current_n() and self.r >= SCRYPT_R and self.p >= SCRYPT_P

    @classmethod
    def parse(cls, text: str) -> StoredHash:
        """Read `encode()`'s format; ValueError if it is anything else."""
        if not text.startswith(_HASH_PREFIX):
            raise ValueError("not an scrypt hash string")
        try:
            params, salt, digest = text[len(_HASH_PREFIX) :].split("$")
            values = dict(item.split("=", 1) for item in params.split(","))
            ln, r, p = int(values["ln"]), int(values["r"]), int(values["p"])
            stored = cls(_unb64(salt), _unb64(digest), 2**ln, r, p)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"malformed scrypt hash string: {exc}") from exc
        if not (1 <= ln <= 30 and r >= 1 and p >= 1 and scrypt_memory(stored.n, r, p) <= MAX_SCRYPT_MEMORY):
            raise ValueError(f"scrypt parameters ln={ln}, r={r}, p={p} are out of range")
        return stored


def make_hash(password: str) -> StoredHash:
    """A new hash of `password` at the current cost, with a fresh random salt."""
    salt, n = secrets.token_bytes(_SALT_LEN), current_n()
    return StoredHash(salt, hash_password(password, salt, n), n, SCRYPT_R, SCRYPT_P)


def _stored_hash(row: sqlite3.Row) -> StoredHash:
    """The hash string of a row, or the older layout (raw digest + separate parameter columns)."""
    value = row["password_hash"]
    if isinstance(value, str):
        return StoredHash.parse(value)
    return StoredHash(bytes(row["salt"]), bytes(value), row["scrypt_n"], row["scrypt_r"], row["scrypt_p"])


def normalise_username(username: str) -> str:
    return username.strip().lower()


def validate_username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise UserError(
            f"user name {username!r} is not allowed: use 2-64 lower-case letters, digits, '.', '-' "
            "or '_', starting with a letter or digit"
        )
    return name


def check_password_policy(username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().lower() == username.lower():
        raise UserError("the password must not be the user name")


def _validate_role_team(role: str, team: str | None) -> None:
    if role not in ROLES:
        raise UserError(f"role {role!r} is unknown: use one of {', '.join(ROLES)}")
    if role in ("agent", "lead") and not team:
        raise UserError(f"a {role} needs a team (--team)")
    if team is not None and not TEAM_RE.fullmatch(team):
        raise UserError(f"team {team!r} is not a team code: use the lower-case code from retention_teams.yml")


def add_user(portal_dir: Path, username: str, team: str | None, role: str, password: str) -> User:
    name = validate_username(username)
    _validate_role_team(role, team)
    check_password_policy(name, password)
    init_db(portal_dir)
    if get_user(portal_dir, name) is not None:  # before spending half a second on the hash
        raise UserError(f"user {name} already exists (use `users set-password` to change the password)")
    stored = make_hash(password)
    with connect(portal_dir) as conn:
        if conn.execute("select 1 from users where username = ?", (name,)).fetchone():
            raise UserError(f"user {name} already exists (use `users set-password` to change the password)")
        now = _now_iso()
        # The hash string is what counts; salt and scrypt_* repeat it for the older table layout.
        conn.execute(
            "insert into users (username, team, role, salt, password_hash, scrypt_n, scrypt_r, scrypt_p,"
            " created_at, password_changed_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, team, role, stored.salt, stored.encode(), stored.n, stored.r, stored.p, now, now),
        )
    return User(name, team, role)


def list_users(portal_dir: Path) -> list[tuple[User, str, str]]:
    """(user, created_at, password_changed_at) for every user, by team then name."""
    init_db(portal_dir)
    with connect(portal_dir) as conn:
        rows = conn.execute(
            "select username, team, role, created_at, password_changed_at from users"
            " order by coalesce(team, ''), username"
        ).fetchall()
    return [(User(r["username"], r["team"], r["role"]), r["created_at"], r["password_changed_at"]) for r in rows]


def get_user(portal_dir: Path, username: str) -> User | None:
    init_db(portal_dir)
    with connect(portal_dir) as conn:
        row = conn.execute(
            "select username, team, role from users where username = ?", (normalise_username(username),)
        ).fetchone()
    return User(row["username"], row["team"], row["role"]) if row else None


def remove_user(portal_dir: Path, username: str) -> bool:
    """Delete a user and end their sessions. False if there was no such user."""
    init_db(portal_dir)
    name = normalise_username(username)
    with connect(portal_dir) as conn:
        conn.execute("delete from sessions where username = ?", (name,))
        return conn.execute("delete from users where username = ?", (name,)).rowcount > 0


def set_password(portal_dir: Path, username: str, password: str) -> None:
    """Replace a user's password (new salt) and end all their sessions."""
    name = normalise_username(username)
    check_password_policy(name, password)
    stored = make_hash(password)
    init_db(portal_dir)
    with connect(portal_dir) as conn:
        changed = conn.execute(
            "update users set salt = ?, password_hash = ?, scrypt_n = ?, scrypt_r = ?, scrypt_p = ?,"
            " password_changed_at = ? where username = ?",
            (stored.salt, stored.encode(), stored.n, stored.r, stored.p, _now_iso(), name),
        ).rowcount
        if not changed:
            raise UserError(f"no user {name}")
        conn.execute("delete from sessions where username = ?", (name,))


def authenticate(portal_dir: Path, username: str, password: str) -> User | None:
    """The user if the password is right, else None. Same work whether or not the user exists.

    A right password whose stored hash is weaker than the current cost is re-hashed at once.
    Raises PasswordHashBusy when no hashing slot frees up in time.
    """
    name = normalise_username(username)
    row = None
    if USERNAME_RE.fullmatch(name) and len(password) <= MAX_PASSWORD_LENGTH:
        with connect(portal_dir) as conn:
            row = conn.execute(
                "select username, team, role, salt, password_hash, scrypt_n, scrypt_r, scrypt_p"
                " from users where username = ?",
                (name,),
            ).fetchone()
    stored: StoredHash | None = None
    if row is not None:
        try:
            stored = _stored_hash(row)
        except ValueError as exc:
            log.error(
                "user %s: stored password hash cannot be read (%s); reset it with `users set-password`", name, exc
            )
    if row is None or stored is None:
        hmac.compare_digest(hash_password(password[:MAX_PASSWORD_LENGTH], _DUMMY_SALT), b"\x00" * _HASH_LEN)
        return None
    candidate = hash_password(password, stored.salt, stored.n, stored.r, stored.p)
    if not hmac.compare_digest(candidate, stored.digest):
        return None
    if not stored.is_current or not isinstance(row["password_hash"], str):
        _upgrade_hash(portal_dir, name, row["password_hash"], password)
    return User(row["username"], row["team"], row["role"])


def _upgrade_hash(portal_dir: Path, name: str, old_value: object, password: str) -> None:
    """Store a current-cost hash of a just-verified password, unless it was changed meanwhile.

    Skipped (until the next sign-in) when no hashing slot is free: the sign-in itself succeeded.
    """
    try:
        stored = make_hash(password)
    except PasswordHashBusy:
        log.warning("no hashing slot free to re-hash the password of %s; next time", name)
        return
    with connect(portal_dir) as conn:
        conn.execute(
            "update users set salt = ?, password_hash = ?, scrypt_n = ?, scrypt_r = ?, scrypt_p = ?"
            " where username = ? and password_hash = ?",
            (stored.salt, stored.encode(), stored.n, stored.r, stored.p, name, old_value),
        )
    log.info("re-hashed the password of %s at the current scrypt cost", name)


def _session_hash(session_id: str) -> str:
    # Only a hash is stored, so a copy of the database does not hand out live sessions.
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(portal_dir: Path, username: str, max_age_seconds: int) -> str:
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    with connect(portal_dir) as conn:
        conn.execute("delete from sessions where expires_at < ?", (now,))
        conn.execute(
            "insert into sessions (session_hash, username, created_at, expires_at) values (?, ?, ?, ?)",
            (_session_hash(session_id), username, now, now + max_age_seconds),
        )
    return session_id


def session_user(portal_dir: Path, session_id: str) -> User | None:
    """The signed-in user of a live session, read fresh (a removed user is signed out at once)."""
    with connect(portal_dir) as conn:
        row = conn.execute(
            "select u.username, u.team, u.role from sessions s join users u on u.username = s.username"
            " where s.session_hash = ? and s.expires_at > ?",
            (_session_hash(session_id), time.time()),
        ).fetchone()
    return User(row["username"], row["team"], row["role"]) if row else None


def end_session(portal_dir: Path, session_id: str) -> None:
    with connect(portal_dir) as conn:
        conn.execute("delete from sessions where session_hash = ?", (_session_hash(session_id),))
