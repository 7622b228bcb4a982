"""The audit log: who did what, when, from where, in the portal's SQLite file.

Every sign-in (success and failure), sign-out, list download, outcome upload and refused access
is recorded. Rows hold no personal data about customers: targets are list ids, file names or the
refused path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster_project.portal.db import connect
from dagster_project.portal.users import User

EVENTS = ("login", "logout", "list", "view", "download", "upload", "refused", "unauthenticated", "report")
_MAX_TEXT = 300


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    username: str | None
    team: str | None
    role: str | None
    event: str
    outcome: str
    target: str | None
    rows: int | None
    client: str | None
    detail: str | None


def _clip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.replace("\r", " ").replace("\n", " ")
    return value if len(value) <= _MAX_TEXT else value[: _MAX_TEXT - 1] + "…"


def record(
    portal_dir: Path,
    event: str,
    outcome: str,
    *,
    user: User | None = None,
    username: str | None = None,
    team: str | None = None,
    target: str | None = None,
    rows: int | None = None,
    client: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one entry. `username`/`team` are for attempts without a user (a failed sign-in)."""
    now = time.time()
    at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    with connect(portal_dir) as conn:
        conn.execute(
            "insert into audit (at, at_epoch, username, team, role, event, outcome, target, rows, client, detail)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                now,
                user.username if user else _clip(username),
                user.team if user else team,
                user.role if user else None,
                event,
                outcome,
                _clip(target),
                rows,
                _clip(client),
                _clip(detail),
            ),
        )


def entries(
    portal_dir: Path,
    *,
    limit: int = 200,
    team: str | None = None,
    event: str | None = None,
    username: str | None = None,
    outcome: str | None = None,
) -> list[AuditEntry]:
    """Newest first, optionally filtered."""
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (("team", team), ("event", event), ("username", username), ("outcome", outcome)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = f"where {' and '.join(clauses)}" if clauses else ""
    params.append(max(1, min(limit, 5000)))
    with connect(portal_dir) as conn:
        rows = conn.execute(
            "select id, at, username, team, role, event, outcome, target, rows, client, detail"
            f" from audit {where} order by id desc limit ?",
            params,
        ).fetchall()
    return [AuditEntry(**dict(r)) for r in rows]


def failed_logins(
    portal_dir: Path, window_seconds: float, *, username: str | None = None, client: str | None = None
) -> int:
    """Failed sign-ins in the last `window_seconds` for a user name or a client address."""
    since = time.time() - window_seconds
    column, value = ("username", username) if username is not None else ("client", client)
    with connect(portal_dir) as conn:
        row = conn.execute(
            f"select count(*) from audit where event = 'login' and outcome = 'failed'"
            f" and {column} = ? and at_epoch >= ?",
            (value, since),
        ).fetchone()
    return int(row[0])
