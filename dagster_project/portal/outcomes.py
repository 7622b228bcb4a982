"""Outcome uploads: validate an agent's CSV line by line, then hand the good rows to the pipeline.

Upload format (header names are case-insensitive, order is free):

    customer_id,contacted_at,outcome,note,list_id
    C000123,2024-05-02 14:30,retained,agreed to stay,
    C000456,2024-05-02,do_not_contact,asked us to stop calling,TL-20240502-north-1a2b3c4d

* `customer_id`, `contacted_at`, `outcome` are required; `note` and `list_id` are optional.
* `contacted_at` is `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS`; it may not be in
  the future, nor before the date of the list it belongs to.
* `outcome` is one of retained, declined, unreachable, do_not_contact.
* Without `list_id`, the row belongs to the newest list of the team that holds the customer and
  is dated on or before the contact. Only the team's lists of the last 90 days count.

Partial acceptance: the file as a whole is refused (nothing written) when it cannot be read as a
table: empty, not UTF-8, missing columns, too large. Otherwise every line is judged on its own:
good lines are accepted and written, bad lines are reported as `line N: ...` and nothing of them
is kept, and the result says `accepted`, `partial` or `rejected`. Uploading the corrected whole
file again is safe: the pipeline keys outcomes by (list_id, customer_id, contacted_at), and a
customer already on the do-not-contact list is not added twice.

Accepted rows become one extract file in the canonical OUTCOMES format of `extracts/spec.py`,
written atomically to `<inbox>/outcomes/`, which the next nightly run loads. do_not_contact rows
are also added at once to `<reference>/do_not_contact.csv` (mode 0640) so nobody calls them in the
meantime; that file is only read or written when the upload has do_not_contact rows, and a file
that cannot be read (not UTF-8, broken quoting, wrong header) refuses the upload with
`DoNotContactFileError` naming the file and line, before anything is written.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from dagster_project.exports.csv_safe import neutralise, unneutralise
from dagster_project.exports.lists import (
    ListIntegrityError,
    list_manifests,
    read_list_file,
    read_list_rows,
)
from dagster_project.extracts.spec import OUTCOME_VALUES, OUTCOMES

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_NOTE_LENGTH = 2000
FUTURE_TOLERANCE = timedelta(minutes=5)  # agents' PC clocks drift a little
LIST_WINDOW_DAYS = 90  # outcomes are reported against lists of the last 90 days
REQUIRED_COLUMNS = ("customer_id", "contacted_at", "outcome")
OPTIONAL_COLUMNS = ("note", "list_id")
DNC_NAME = "do_not_contact.csv"
DNC_COLUMNS = ("customer_id", "added_at", "source", "added_by", "note")
DNC_MODE = 0o640  # agents' notes: owner and the data team's group only

_TIMESTAMP_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?")
_EXAMPLE_HEADER = "customer_id,contacted_at,outcome,note,list_id"


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class OutcomeRow:
    line: int
    list_id: str
    team: str
    agent: str
    customer_id: str
    contacted_at: datetime
    outcome: str
    note: str


@dataclass
class UploadResult:
    status: str  # accepted | partial | rejected
    rows_in_file: int = 0
    accepted: list[OutcomeRow] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extract_file: Path | None = None
    do_not_contact_added: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "rows_in_file": self.rows_in_file,
            "accepted": len(self.accepted),
            "rejected": self.rows_in_file - len(self.accepted),
            "errors": [str(e) for e in self.errors],
            "warnings": self.warnings,
            "extract_file": self.extract_file.name if self.extract_file else None,
            "do_not_contact_added": self.do_not_contact_added,
            "policy": "partial: good lines are kept, bad lines are listed and dropped; "
            "a file that cannot be read as a table is refused whole",
        }


@dataclass(frozen=True)
class TeamLists:
    """What a team's published lists hold, for checking uploads."""

    team: str
    list_dates: dict[str, date]  # list_id -> list date
    customers: dict[str, list[tuple[date, str]]]  # customer_id -> [(list date, list_id)], oldest first

    def lists_of(self, customer_id: str) -> list[tuple[date, str]]:
        return self.customers.get(customer_id, [])


class ListCache:
    """Customer ids of each team's recent lists, re-read when a night is re-published.

    Only lists from the last `LIST_WINDOW_DAYS` days count for uploads, which bounds both the
    memory held and the work done per upload; entries of older or replaced lists are dropped.
    """

    def __init__(self) -> None:
        self._by_team: dict[str, dict[tuple[str, str], frozenset[str]]] = {}

    def team_lists(self, exports_dir: Path, team: str, today: date | None = None) -> TeamLists:
        since = (today or date.today()) - timedelta(days=LIST_WINDOW_DAYS)
        previous = self._by_team.get(team, {})
        current: dict[tuple[str, str], frozenset[str]] = {}
        list_dates: dict[str, date] = {}
        customers: dict[str, list[tuple[date, str]]] = {}
        for manifest in sorted(list_manifests(exports_dir), key=lambda m: m.list_date):
            entry = manifest.team(team)
            if entry is None or manifest.list_date < since:
                continue
            key = (entry.list_id, entry.sha256)
            ids = previous.get(key)
            if ids is None:
                try:
                    found = read_list_file(exports_dir, entry.list_id)
                except ListIntegrityError as exc:
                    log.error("%s", exc)
                    continue
                if found is None:
                    continue
                _, entry, data = found
                key = (entry.list_id, entry.sha256)
                ids = frozenset(unneutralise(r["customer_id"]) for r in read_list_rows(data) if r.get("customer_id"))
            current[key] = ids
            list_dates[entry.list_id] = manifest.list_date
            for customer_id in ids:
                customers.setdefault(customer_id, []).append((manifest.list_date, entry.list_id))
        self._by_team[team] = current
        return TeamLists(team=team, list_dates=list_dates, customers=customers)


def parse_contacted_at(text: str) -> datetime | None:
    match = _TIMESTAMP_RE.fullmatch(text)
    if not match:
        return None
    parts = [int(p) if p is not None else 0 for p in match.groups()]
    try:
        return datetime(*parts)  # type: ignore[arg-type]
    except ValueError:
        return None


def _decode(data: bytes) -> tuple[str | None, LineError | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1].hex()
        return None, LineError(
            line,
            f"the file is not UTF-8 text (byte 0x{byte} cannot be read); in Excel use "
            "Save As > 'CSV UTF-8 (Comma delimited) (*.csv)'",
        )


def _read_table(text: str) -> tuple[list[str], list[tuple[int, list[str]]], list[LineError]]:
    """Header and (line number, cells) of each non-blank record; line numbers are physical lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    header: list[str] = []
    line = 1
    try:
        for cells in reader:
            start = line
            line = reader.line_num + 1
            if not header:
                if any(c.strip() for c in cells):
                    header = cells
                    header_line = start
                    if header_line != 1:
                        return header, [], [LineError(start, "blank lines before the header")]
                continue
            if not any(c.strip() for c in cells):
                continue
            records.append((start, cells))
    except csv.Error as exc:
        return header, records, [LineError(reader.line_num, f"cannot read this line as CSV ({exc})")]
    return header, records, []


def validate_upload(
    data: bytes,
    team_lists: TeamLists,
    agent: str,
    now: datetime,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> tuple[list[OutcomeRow], list[LineError], list[str], int]:
    """(accepted rows, line errors, warnings, data rows in file). Pure: writes nothing."""
    team = team_lists.team
    if len(data) > max_bytes:
        return [], [LineError(1, f"the file is larger than {max_bytes / 2**20:g} MB; split it")], [], 0
    text, error = _decode(data)
    if error is not None or text is None:
        return [], [error or LineError(1, "unreadable")], [], 0
    if not text.strip():
        return [], [LineError(1, f"the file is empty; the first line must be the header {_EXAMPLE_HEADER}")], [], 0
    header, records, errors = _read_table(text)
    if errors:
        return [], errors, [], len(records)

    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    duplicates = sorted({n for n in names if names.count(n) > 1 and n})
    if duplicates:
        return (
            [],
            [LineError(1, f"column(s) {', '.join(duplicates)} appear more than once in the header")],
            [],
            len(records),
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        hint = ""
        if len(names) == 1 and ";" in names[0]:
            hint = " (the columns are separated by ';': save the file with commas, as 'CSV UTF-8')"
        return (
            [],
            [
                LineError(
                    1,
                    f"missing column(s) {', '.join(missing)}; the header must hold customer_id, "
                    f"contacted_at, outcome (note and list_id are optional){hint}",
                )
            ],
            [],
            len(records),
        )
    warnings: list[str] = []
    unknown = [h for h in names if h and h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        warnings.append(f"ignored column(s): {', '.join(unknown)}")
    if not records:
        return [], [LineError(2, "the file has a header but no rows")], warnings, 0

    position = {n: i for i, n in enumerate(names)}
    accepted: list[OutcomeRow] = []
    line_errors: list[LineError] = []
    seen: dict[tuple[str, str, datetime], int] = {}
    latest_allowed = now + FUTURE_TOLERANCE

    for line, cells in records:
        problems: list[str] = []
        if len(cells) != len(names):
            line_errors.append(LineError(line, f"has {len(cells)} fields but the header has {len(names)}"))
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            index = position.get(name)
            return cells[index].strip() if index is not None else ""

        customer_id = unneutralise(cell("customer_id"))
        raw_when = cell("contacted_at")
        outcome = cell("outcome").lower()
        note = cell("note")
        list_id = cell("list_id")

        if not customer_id:
            problems.append("customer_id is empty")
        contacted_at = parse_contacted_at(raw_when) if raw_when else None
        if not raw_when:
            problems.append("contacted_at is empty")
        elif contacted_at is None:
            problems.append(
                f"contacted_at {raw_when!r} is not a date like 2024-05-02 or 2024-05-02 14:30 "
                "(in Excel, format the column as yyyy-mm-dd hh:mm)"
            )
        elif contacted_at > latest_allowed:
            problems.append(f"contacted_at {raw_when} is in the future")
        if not outcome:
            problems.append(f"outcome is empty; use one of {', '.join(OUTCOME_VALUES)}")
        elif outcome not in OUTCOME_VALUES:
            problems.append(f"outcome {outcome!r} is unknown; use one of {', '.join(OUTCOME_VALUES)}")
        if len(note) > MAX_NOTE_LENGTH:
            problems.append(f"note is longer than {MAX_NOTE_LENGTH} characters")
        if "\x00" in note:
            problems.append("note contains a NUL character")

        resolved: str | None = None
        if customer_id:
            on_lists = team_lists.lists_of(customer_id)
            if list_id:
                if list_id not in team_lists.list_dates:
                    problems.append(f"list {list_id} is not a list of team {team} (last {LIST_WINDOW_DAYS} days)")
                elif not any(lid == list_id for _, lid in on_lists):
                    problems.append(f"customer {customer_id} is not on list {list_id}")
                else:
                    resolved = list_id
            elif not on_lists:
                problems.append(
                    f"customer {customer_id} is not on any list of team {team} (last {LIST_WINDOW_DAYS} days)"
                )
            elif contacted_at is not None:
                earlier = [lid for d, lid in on_lists if d <= contacted_at.date()]
                resolved = earlier[-1] if earlier else on_lists[0][1]
            else:
                resolved = on_lists[-1][1]
        if resolved is not None and contacted_at is not None:
            list_date = team_lists.list_dates[resolved]
            if contacted_at.date() < list_date:
                problems.append(
                    f"contacted_at {raw_when} is before the list date {list_date.isoformat()} of {resolved}"
                )

        if not problems and resolved is not None and contacted_at is not None:
            key = (resolved, customer_id, contacted_at)
            if key in seen:
                problems.append(f"repeats line {seen[key]} (same customer, list and contacted_at)")
            else:
                seen[key] = line

        if problems:
            line_errors.extend(LineError(line, p) for p in problems)
            continue
        assert resolved is not None and contacted_at is not None
        accepted.append(
            OutcomeRow(
                line=line,
                list_id=resolved,
                team=team,
                agent=agent,
                customer_id=customer_id,
                contacted_at=contacted_at,
                outcome=outcome,
                note=note,
            )
        )
    return accepted, line_errors, warnings, len(records)


# --------------------------------------------------------------------------------------------
# writing


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes, mode: int = 0o640) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask or an older file said
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def outcomes_csv_bytes(rows: list[OutcomeRow]) -> bytes:
    """The canonical OUTCOMES extract: spec column order, UTF-8, comma, RFC 4180 quoting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OUTCOMES.column_names)
    for r in rows:
        values = {
            "list_id": r.list_id,
            "team": r.team,
            "agent": r.agent,
            "customer_id": r.customer_id,
            "contacted_at": r.contacted_at.strftime("%Y-%m-%d %H:%M:%S"),
            "outcome": r.outcome,
            "note": r.note,
        }
        writer.writerow([values[c] for c in OUTCOMES.column_names])
    return buffer.getvalue().encode("utf-8")


def write_outcomes_extract(inbox_dir: Path, team: str, rows: list[OutcomeRow], now: datetime) -> Path:
    """Publish `outcomes_<team>_<YYYYMMDDTHHMMSS>_<n>.csv` atomically; n makes the name unique.

    The file is written under a hidden `.part` name, fsynced, then hard-linked to its final name
    (which fails if the name is taken, so two uploads in the same second never overwrite each
    other) and the temporary name removed. The loader never sees a partial file.
    """
    folder = Path(inbox_dir) / "outcomes"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    temp = folder / f".outcomes_{team}_{stamp}_{os.getpid()}_{id(rows)}.part"
    _write_durably(temp, outcomes_csv_bytes(rows))
    try:
        n = 1
        while True:
            final = folder / f"outcomes_{team}_{stamp}_{n}.csv"
            try:
                os.link(temp, final)
                break
            except FileExistsError:
                n += 1
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return final


@contextmanager
def _dnc_lock(reference_dir: Path) -> Iterator[None]:
    fd = os.open(reference_dir / f".{DNC_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class DoNotContactFileError(RuntimeError):
    """The do-not-contact file cannot be read or updated; the message names the file, line and fix."""


def _existing_dnc(path: Path) -> tuple[bytes, set[str]]:
    """The file's bytes and the customer ids on it. Raises DoNotContactFileError, never anything else."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b"", set()
    except OSError as exc:
        raise DoNotContactFileError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DoNotContactFileError(
            f"{path}: line {line} is not UTF-8 text (byte 0x{data[exc.start : exc.start + 1].hex()}); "
            "it was probably saved by Excel in a local encoding: open it and Save As "
            "'CSV UTF-8 (Comma delimited) (*.csv)'"
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise DoNotContactFileError(
            f"{path}: line {reader.line_num} cannot be read as CSV ({exc}); fix the quoting by hand"
        ) from exc
    if not rows:
        return b"", set()
    header = [h.strip().lower() for h in rows[0][1]]
    if tuple(header) != DNC_COLUMNS:
        raise DoNotContactFileError(
            f"{path}: line 1: header is {','.join(rows[0][1])!r}, expected {','.join(DNC_COLUMNS)}; "
            "fix the file by hand"
        )
    return data, {unneutralise(row[0].strip()) for _, row in rows[1:] if row}


def check_do_not_contact_file(reference_dir: Path) -> None:
    """Raise DoNotContactFileError now rather than after the outcome file is written."""
    _existing_dnc(Path(reference_dir) / DNC_NAME)


def append_do_not_contact(reference_dir: Path, rows: list[OutcomeRow], added_by: str, now: datetime) -> int:
    """Add do_not_contact customers not yet on the list; atomic rewrite under a lock. Returns added."""
    wanted = [r for r in rows if r.outcome == "do_not_contact"]
    if not wanted:
        return 0
    reference_dir = Path(reference_dir)
    reference_dir.mkdir(parents=True, exist_ok=True)
    path = reference_dir / DNC_NAME
    with _dnc_lock(reference_dir):
        existing, known = _existing_dnc(path)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not existing:
            writer.writerow(DNC_COLUMNS)
        added = 0
        for r in wanted:
            if r.customer_id in known:
                continue
            known.add(r.customer_id)
            # The note is free text typed by an agent in a file people open in Excel: neutralise it.
            writer.writerow(
                [r.customer_id, now.strftime("%Y-%m-%d %H:%M:%S"), f"portal {r.list_id}", added_by, neutralise(r.note)]
            )
            added += 1
        if not added:
            return 0
        prefix = existing if not existing or existing.endswith((b"\n", b"\r")) else existing + b"\n"
        temp = reference_dir / f".{DNC_NAME}.{os.getpid()}.part"
        _write_durably(temp, prefix + buffer.getvalue().encode("utf-8"), DNC_MODE)
        os.replace(temp, path)
        _fsync_dir(reference_dir)
    return added


def process_upload(
    data: bytes,
    *,
    team_lists: TeamLists,
    agent: str,
    inbox_dir: Path,
    reference_dir: Path,
    now: datetime | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> UploadResult:
    """Validate, then write do-not-contact additions and the outcome extract for accepted rows."""
    now = now or datetime.now()
    accepted, errors, warnings, total = validate_upload(data, team_lists, agent, now, max_bytes)
    result = UploadResult(status="rejected", rows_in_file=total, errors=errors, warnings=warnings)
    if not accepted:
        return result
    if any(r.outcome == "do_not_contact" for r in accepted):  # otherwise the file is not touched
        check_do_not_contact_file(reference_dir)
    result.do_not_contact_added = append_do_not_contact(reference_dir, accepted, agent, now)
    result.extract_file = write_outcomes_extract(inbox_dir, team_lists.team, accepted, now)
    result.accepted = accepted
    result.status = "partial" if errors else "accepted"
    log.info(
        "outcome upload by %s (team %s): %d accepted, %d errors -> %s",
        agent,
        team_lists.team,
        len(accepted),
        len(errors),
        result.extract_file,
    )
    return result
