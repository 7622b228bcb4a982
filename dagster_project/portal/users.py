"""Portal users, their password hashes and their server-side sessions.

Passwords are hashed with scrypt (standard library) and a random 16-byte salt per user; the
scrypt cost parameters are stored with each hash so they can be raised later without
invalidating existing users. A sign-in with an unknown user name still computes one scrypt hash
and compares in constant time, so the answer time does not reveal which user names exist.

Roles:
  agent    sees and downloads the lists of their own team, uploads outcomes for it
  lead     the same, plus the effectiveness report of their team
  manager  every team's report and list overview (phones masked, no raw downloads), the audit log
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster_project.exports.lists import TEAM_RE
from dagster_project.portal.db import connect, init_db

ROLES = ("agent", "lead", "manager")
USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_HASH_LEN = 32
_DUMMY_SALT = b"\x00" * 16


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


def hash_password(
    password: str,
    salt: bytes,
    n: int = SCRYPT_N,
    r: int = SCRYPT_R,
    p: int = SCRYPT_P,
) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=_HASH_LEN)


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
    salt = secrets.token_bytes(16)
    digest = hash_password(password, salt)
    init_db(portal_dir)
    with connect(portal_dir) as conn:
        if conn.execute("select 1 from users where username = ?", (name,)).fetchone():
            raise UserError(f"user {name} already exists (use `users set-password` to change the password)")
        now = _now_iso()
        conn.execute(
            "insert into users (username, team, role, salt, password_hash, scrypt_n, scrypt_r, scrypt_p,"
            " created_at, password_changed_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, team, role, salt, digest, SCRYPT_N, SCRYPT_R, SCRYPT_P, now, now),
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
    salt = secrets.token_bytes(16)
    digest = hash_password(password, salt)
    init_db(portal_dir)
    with connect(portal_dir) as conn:
        changed = conn.execute(
            "update users set salt = ?, password_hash = ?, scrypt_n = ?, scrypt_r = ?, scrypt_p = ?,"
            " password_changed_at = ? where username = ?",
            (salt, digest, SCRYPT_N, SCRYPT_R, SCRYPT_P, _now_iso(), name),
        ).rowcount
        if not changed:
            raise UserError(f"no user {name}")
        conn.execute("delete from sessions where username = ?", (name,))


def authenticate(portal_dir: Path, username: str, password: str) -> User | None:
    """The user if the password is right, else None. Same work whether or not the user exists."""
    name = normalise_username(username)
    row = None
    if USERNAME_RE.fullmatch(name) and len(password) <= MAX_PASSWORD_LENGTH:
        with connect(portal_dir) as conn:
            row = conn.execute(
                "select username, team, role, salt, password_hash, scrypt_n, scrypt_r, scrypt_p"
                " from users where username = ?",
                (name,),
            ).fetchone()
    if row is None:
        hmac.compare_digest(hash_password(password[:MAX_PASSWORD_LENGTH], _DUMMY_SALT), b"\x00" * _HASH_LEN)
        return None
    candidate = hash_password(password, row["salt"], row["scrypt_n"], row["scrypt_r"], row["scrypt_p"])
    if not hmac.compare_digest(candidate, row["password_hash"]):
        return None
    return User(row["username"], row["team"], row["role"])


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
