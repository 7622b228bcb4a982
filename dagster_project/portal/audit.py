"""The audit log: who did what, when, from where, in the portal's SQLite file.

Recorded: every sign-in (success, failure, throttled), sign-out, list overview, list view,
download, outcome upload, report view, audit-log view, refused access, malformed request and
unauthenticated request, and every `crm-warehouse users` change (actor: the operating-system
user, `os:<name>`). Rows hold no personal data about customers: targets are list ids, file
names or the refused path. A failed sign-in names the user only if that user exists.

Refusals of requests without a signed-in user (anyone can send those), including failed sign-ins
with an unknown user name, go through `RefusalLimiter`: the first few per address per minute are
recorded one by one, the rest are counted and written as one `unauthenticated`/`suppressed` entry
per address (at most `max_clients` such entries a minute; further addresses share one), so a flood
adds a bounded number of rows a minute. `prune()` deletes entries past a retention age.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster_project.portal.db import connect
from dagster_project.portal.users import User

EVENTS = (
    "login",
    "logout",
    "list",
    "view",
    "download",
    "upload",
    "report",
    "audit",
    "users",
    "refused",
    "unauthenticated",
)
UNKNOWN_USER = "(unknown user)"
MANY_CLIENTS = "(many addresses)"
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


def prune(portal_dir: Path, older_than_days: float, now: float | None = None) -> int:
    """Delete entries older than `older_than_days`; returns how many went."""
    now = time.time() if now is None else now
    with connect(portal_dir) as conn:
        return conn.execute("delete from audit where at_epoch < ?", (now - older_than_days * 86400,)).rowcount


def prune_recorded(
    portal_dir: Path, older_than_days: int, *, actor: str, client: str, via: str, always: bool = False
) -> int:
    """`prune()`, then record what was deleted (event `audit`, outcome `pruned`; only if anything
    was, unless `always`)."""
    removed = prune(portal_dir, older_than_days)
    if removed or always:
        record(
            portal_dir,
            "audit",
            "pruned",
            username=actor,
            client=client,
            rows=removed,
            detail=f"deleted {removed} entries older than {older_than_days} days ({via})",
        )
    return removed


def os_actor() -> str:
    """Who runs a `crm-warehouse` command: `os:<login>`, plus the sudo caller when there is one."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    actor = f"os:{name}"
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and sudo_user != name:
        actor += f" (sudo by {sudo_user})"
    return actor


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


class RefusalLimiter:
    """Records refusals of unauthenticated requests, at most `per_client` per address per window.

    Beyond that (or beyond `total` entries a window over all addresses) refusals are only counted;
    when the window has passed, each address's count becomes one `unauthenticated`/`suppressed`
    entry (`rows` = how many). `flush()` writes pending counts (call it at shutdown).
    Thread-safe: counting happens under a lock, SQLite writes outside it.
    """

    def __init__(
        self,
        portal_dir: Path,
        *,
        per_client: int = 10,
        total: int = 200,
        window_seconds: float = 60.0,
        max_clients: int = 50,
    ) -> None:
        self.portal_dir = portal_dir
        self.per_client = per_client
        self.total = total
        self.window_seconds = window_seconds
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._window: int | None = None
        self._recorded: dict[str, int] = {}
        self._recorded_total = 0
        self._suppressed: dict[str, int] = {}

    def _take(self, window: int | None) -> list[tuple[int, str, int]]:
        """Counts of the window that ends (every pending one when `window` is None); under the lock."""
        closed: list[tuple[int, str, int]] = []
        if self._window is not None and window != self._window:
            closed = [(self._window, address, n) for address, n in self._suppressed.items()]
            self._recorded.clear()
            self._suppressed.clear()
            self._recorded_total = 0
        self._window = window
        return closed

    def _write(self, closed: list[tuple[int, str, int]]) -> None:
        for window, address, n in closed:
            start = window * self.window_seconds
            record(
                self.portal_dir,
                "unauthenticated",
                "suppressed",
                rows=n,
                client=address or None,
                detail=f"{n} more refusals between {_utc(start)} and {_utc(start + self.window_seconds)} UTC "
                f"not recorded one by one (at most {self.per_client} per address per "
                f"{self.window_seconds:g} s)",
            )

    def pending(self, now: float | None = None) -> bool:
        """True when a window with suppressed refusals has ended and waits to be written."""
        now = time.time() if now is None else now
        return bool(self._suppressed) and self._window != int(now // self.window_seconds)

    def record(
        self,
        event: str,
        outcome: str,
        *,
        client: str | None,
        username: str | None = None,
        team: str | None = None,
        target: str | None = None,
        detail: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Record one refusal, or only count it; True when it was written as its own entry."""
        now = time.time() if now is None else now
        address = client or ""
        with self._lock:
            closed = self._take(int(now // self.window_seconds))
            seen = self._recorded.get(address, 0)
            alone = seen < self.per_client and self._recorded_total < self.total
            if alone:
                self._recorded[address] = seen + 1
                self._recorded_total += 1
            else:
                key = (
                    address if address in self._suppressed or len(self._suppressed) < self.max_clients else MANY_CLIENTS
                )
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
        self._write(closed)
        if alone:
            record(
                self.portal_dir,
                event,
                outcome,
                username=username,
                team=team,
                target=target,
                client=client,
                detail=detail,
            )
        return alone

    def flush(self, now: float | None = None) -> None:
        """Write the counts of ended windows; with `now=None`, of every window (at shutdown)."""
        with self._lock:
            closed = self._take(None if now is None else int(now // self.window_seconds))
        self._write(closed)
