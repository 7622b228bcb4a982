"""A night's retention target lists: writing them atomically, reading them back.

Layout under the exports folder (`settings.exports_dir()`):

    target_lists/
      2024-05-02/              one folder per list date, published whole or not at all
        manifest.json          what the night holds; byte-identical when re-run on the same inputs
        north.csv              one file per configured team (header only when no customer)
        south.csv
        publish.json           run id and wall-clock publish time (the only bytes that change)
      .lock                    serialises writers

`write_target_lists` builds the whole day in a hidden temporary folder next to the target, fsyncs
every file and the folder, then moves it into place with one rename. When the day already exists
(a re-run of the same night) the two folders are exchanged atomically (Linux `renameat2` with
`RENAME_EXCHANGE`; elsewhere: rename the old one aside, rename the new one in) and the old one is
deleted. A reader therefore sees either the old day or the new day, never a mixture and never a
partial file, and `read_list_file` checks each file against the sha256 in its manifest.

The list id (`TL-20240502-north-1a2b3c4d`) is deterministic and carries no personal data.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from dagster_project.exports.csv_safe import (
    csv_bytes,
    format_decimal,
    format_int,
    format_phone,
    text_cell,
)

log = logging.getLogger(__name__)

LIST_COLUMNS: tuple[str, ...] = (
    "rank",
    "customer_id",
    "full_name",
    "phone",
    "region",
    "value_tier",
    "rfm_segment",
    "churn_probability",
    "clv_365d",
    "value_at_risk",
    "reasons",
    "recommended_action",
    "agent",
    "list_id",
)
# Columns the caller must supply in every row (value may be None). rank defaults to the row's
# position; list_id is always filled in by the writer.
REQUIRED_ROW_KEYS: tuple[str, ...] = tuple(c for c in LIST_COLUMNS if c not in ("rank", "list_id"))

MANIFEST_NAME = "manifest.json"
PUBLISH_NAME = "publish.json"
LISTS_SUBDIR = "target_lists"
MANIFEST_FORMAT = 1

TEAM_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
LIST_ID_RE = re.compile(r"TL-([0-9]{8})-([a-z0-9][a-z0-9_-]{0,39})-([0-9a-f]{8})")
_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_FORMATTERS = {
    "rank": format_int,
    "phone": format_phone,
    "churn_probability": lambda v: format_decimal(v, 4),
    "clv_365d": lambda v: format_decimal(v, 2),
    "value_at_risk": lambda v: format_decimal(v, 2),
}


class ListIntegrityError(RuntimeError):
    """A list file does not match the sha256 its manifest records."""


@dataclass(frozen=True)
class TeamList:
    """One team's list of one night, as recorded in the manifest."""

    team: str
    list_id: str
    file: str
    rows: int
    control: int
    eligible: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What one night's folder holds."""

    list_date: date
    as_of_date: date
    generated_at: str
    model_versions: dict[str, str]
    teams: tuple[TeamList, ...]
    directory: Path = field(compare=False)

    def team(self, team: str) -> TeamList | None:
        return next((t for t in self.teams if t.team == team), None)

    def by_list_id(self, list_id: str) -> TeamList | None:
        return next((t for t in self.teams if t.list_id == list_id), None)


# --------------------------------------------------------------------------------------------
# ids and paths


def validate_team(team: str) -> str:
    if not isinstance(team, str) or not TEAM_RE.fullmatch(team):
        raise ValueError(
            f"team name {team!r} is not usable in a file name: use 1-40 lower-case letters, "
            "digits, '-' or '_', starting with a letter or digit (fix retention_teams.yml)"
        )
    return team


def make_list_id(list_date: date, team: str) -> str:
    """`TL-<YYYYMMDD>-<team>-<first 8 hex of sha256("<YYYY-MM-DD>|<team>")>`."""
    validate_team(team)
    digest = hashlib.sha256(f"{list_date.isoformat()}|{team}".encode()).hexdigest()[:8]
    return f"TL-{list_date:%Y%m%d}-{team}-{digest}"


def parse_list_id(list_id: str) -> tuple[date, str] | None:
    """(list date, team) of a well-formed, self-consistent list id; None for anything else."""
    if not isinstance(list_id, str):
        return None
    match = LIST_ID_RE.fullmatch(list_id)
    if not match:
        return None
    try:
        list_date = datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None
    team = match.group(2)
    if make_list_id(list_date, team) != list_id:
        return None
    return list_date, team


def lists_root(exports_dir: Path) -> Path:
    return Path(exports_dir) / LISTS_SUBDIR


def day_dir(exports_dir: Path, list_date: date) -> Path:
    return lists_root(exports_dir) / list_date.isoformat()


# --------------------------------------------------------------------------------------------
# writing


def render_team_csv(list_id: str, rows: Sequence[Mapping[str, object]], team: str = "") -> bytes:
    """The bytes of one team's list file. Rows are ordered by rank, then customer_id."""
    formatted: list[tuple[int, str, list[str]]] = []
    seen: set[str] = set()
    for position, row in enumerate(rows, start=1):
        missing = [k for k in REQUIRED_ROW_KEYS if k not in row]
        if missing:
            raise ValueError(f"team {team}: row {position} has no {', '.join(missing)}")
        customer_id = row["customer_id"]
        if customer_id is None or str(customer_id).strip() == "":
            raise ValueError(f"team {team}: row {position} has an empty customer_id")
        customer_id = str(customer_id)
        if customer_id in seen:
            raise ValueError(f"team {team}: customer {customer_id} appears twice")
        seen.add(customer_id)
        values = dict(row)
        if values.get("rank") is None:
            values["rank"] = position
        values["list_id"] = list_id
        cells: list[str] = []
        for column in LIST_COLUMNS:
            formatter = _FORMATTERS.get(column, text_cell)
            try:
                cells.append(formatter(values.get(column)))
            except ValueError as exc:
                raise ValueError(f"team {team}: row {position} column {column}: {exc}") from exc
        formatted.append((int(cells[0]), customer_id, cells))
    formatted.sort(key=lambda item: (item[0], item[1]))
    return csv_bytes(LIST_COLUMNS, (cells for _, _, cells in formatted))


def _manifest_bytes(
    list_date: date,
    as_of_date: date,
    model_versions: Mapping[str, str],
    entries: Sequence[TeamList],
) -> bytes:
    document = {
        "format": MANIFEST_FORMAT,
        "list_date": list_date.isoformat(),
        "as_of_date": as_of_date.isoformat(),
        # Deterministic on purpose: the lists of a date are "generated at" the start of that date,
        # so a re-run on the same inputs is byte-identical. The wall clock is in publish.json.
        "generated_at": f"{list_date.isoformat()}T00:00:00",
        "model_versions": {str(k): str(v) for k, v in sorted(model_versions.items())},
        "columns": list(LIST_COLUMNS),
        "teams": [
            {
                "team": e.team,
                "list_id": e.list_id,
                "file": e.file,
                "rows": e.rows,
                "control": e.control,
                "eligible": e.eligible,
                "sha256": e.sha256,
            }
            for e in entries
        ],
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directory entries (Linux renameat2). False when unsupported here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"renameat2 exchange {a} <-> {b}: {os.strerror(err)}")


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _publish(staging: Path, final: Path) -> None:
    """Move a fully written staging folder to `final`, replacing any existing folder."""
    root = final.parent
    if not final.exists():
        os.rename(staging, final)
    elif _exchange(staging, final):
        shutil.rmtree(staging)  # staging now holds the previous version
    else:
        aside = root / f".{final.name}.old-{secrets.token_hex(4)}"
        os.rename(final, aside)
        os.rename(staging, final)
        shutil.rmtree(aside)
    _fsync_dir(root)


def _remove_leftovers(root: Path, day: str) -> None:
    """Delete staging or set-aside folders of `day` left by a crashed writer (lock held)."""
    for leftover in root.glob(f".{day}.*"):
        if leftover.is_dir():
            log.warning("removing leftover folder %s from an interrupted publish", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def write_target_lists(
    list_date: date,
    as_of_date: date,
    teams: Mapping[str, Sequence[Mapping[str, object]]],
    control_counts: Mapping[str, int],
    eligible_counts: Mapping[str, int],
    model_versions: Mapping[str, str],
    exports_dir: Path,
    run_id: str | None = None,
) -> Manifest:
    """Write one night's list files and manifest, and publish them atomically.

    `teams` maps every configured team to its ranked rows (dicts with the keys of
    `LIST_COLUMNS`; `rank` defaults to the position, `list_id` is filled in, extra keys are
    ignored). A team with no rows still gets a header-only file; a team that appears only in
    `control_counts` or `eligible_counts` is treated as having no rows. Returns the manifest.
    """
    team_names = sorted(set(teams) | set(control_counts) | set(eligible_counts))
    for team in team_names:
        validate_team(team)
    if not team_names:
        raise ValueError("no teams: pass every configured team, with an empty list if it has no rows")

    files: dict[str, bytes] = {}
    entries: list[TeamList] = []
    for team in team_names:
        list_id = make_list_id(list_date, team)
        rows = list(teams.get(team, ()))
        data = render_team_csv(list_id, rows, team)
        file_name = f"{team}.csv"
        files[file_name] = data
        entries.append(
            TeamList(
                team=team,
                list_id=list_id,
                file=file_name,
                rows=len(rows),
                control=int(control_counts.get(team, 0)),
                eligible=int(eligible_counts.get(team, 0)),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    files[MANIFEST_NAME] = _manifest_bytes(list_date, as_of_date, model_versions, entries)
    publish_info = {
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "manifest_sha256": hashlib.sha256(files[MANIFEST_NAME]).hexdigest(),
    }
    files[PUBLISH_NAME] = (json.dumps(publish_info, indent=2) + "\n").encode("utf-8")

    root = lists_root(exports_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / list_date.isoformat()
    with _locked(root):
        _remove_leftovers(root, list_date.isoformat())
        staging = Path(tempfile.mkdtemp(prefix=f".{list_date.isoformat()}.tmp-", dir=root))
        try:
            os.chmod(staging, 0o750)  # lists hold phone numbers: no world access
            for name, data in files.items():
                _write_file(staging / name, data)
            _fsync_dir(staging)
            _publish(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log.info(
        "published target lists for %s: %s",
        list_date,
        ", ".join(f"{e.team}={e.rows}" for e in entries),
    )
    return Manifest(
        list_date=list_date,
        as_of_date=as_of_date,
        generated_at=f"{list_date.isoformat()}T00:00:00",
        model_versions={str(k): str(v) for k, v in sorted(model_versions.items())},
        teams=tuple(entries),
        directory=final,
    )


# --------------------------------------------------------------------------------------------
# reading


def _parse_manifest(data: bytes, directory: Path) -> Manifest:
    try:
        doc = json.loads(data.decode("utf-8"))
        teams = tuple(
            TeamList(
                team=validate_team(t["team"]),
                list_id=str(t["list_id"]),
                file=str(t["file"]),
                rows=int(t["rows"]),
                control=int(t["control"]),
                eligible=int(t["eligible"]),
                sha256=str(t["sha256"]),
            )
            for t in doc["teams"]
        )
        manifest = Manifest(
            list_date=date.fromisoformat(doc["list_date"]),
            as_of_date=date.fromisoformat(doc["as_of_date"]),
            generated_at=str(doc.get("generated_at", "")),
            model_versions={str(k): str(v) for k, v in doc.get("model_versions", {}).items()},
            teams=teams,
            directory=directory,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{directory / MANIFEST_NAME}: not a valid manifest ({exc})") from exc
    for t in teams:
        # A manifest only ever names plain files of its own folder.
        if t.file != f"{t.team}.csv" or t.list_id != make_list_id(manifest.list_date, t.team):
            raise ValueError(f"{directory / MANIFEST_NAME}: entry for team {t.team} is inconsistent")
    return manifest


def _read_at(dir_fd: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _read_day(directory: Path, file_name: str | None) -> tuple[Manifest, bytes | None]:
    """Read a manifest (and optionally one of its files) from the same folder instance."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        manifest = _parse_manifest(_read_at(dir_fd, MANIFEST_NAME), directory)
        data = _read_at(dir_fd, file_name) if file_name is not None else None
    finally:
        os.close(dir_fd)
    return manifest, data


def _publish_in_progress(directory: Path) -> bool:
    return any(directory.parent.glob(f".{directory.name}.*"))


def _retrying(attempts: int = 5) -> Iterator[int]:
    for attempt in range(attempts):
        yield attempt
        time.sleep(0.05 * (attempt + 1))


def read_manifest(directory: Path) -> Manifest:
    """The manifest of one day folder (`<exports>/target_lists/<YYYY-MM-DD>`)."""
    last: Exception | None = None
    for _ in _retrying():
        try:
            return _read_day(Path(directory), None)[0]
        except FileNotFoundError as exc:  # swapped away by a writer between open and read
            last = exc
    raise FileNotFoundError(f"{directory}: no manifest ({last})")


def list_manifests(exports_dir: Path) -> list[Manifest]:
    """Every published night, newest list date first. Unreadable manifests are logged and skipped."""
    root = lists_root(exports_dir)
    if not root.is_dir():
        return []
    manifests: list[Manifest] = []
    for entry in sorted(root.iterdir(), reverse=True):
        if not _DAY_RE.fullmatch(entry.name) or not entry.is_dir():
            continue
        try:
            manifests.append(read_manifest(entry))
        except (OSError, ValueError) as exc:
            log.warning("skipping %s: %s", entry, exc)
    return manifests


def find_list(exports_dir: Path, list_id: str) -> tuple[Manifest, TeamList] | None:
    """The manifest and entry of a list id, or None. The id is validated before any path is built."""
    parsed = parse_list_id(list_id)
    if parsed is None:
        return None
    list_date, _team = parsed
    directory = day_dir(exports_dir, list_date)
    if not directory.is_dir():
        return None
    try:
        manifest = read_manifest(directory)
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", directory, exc)
        return None
    entry = manifest.by_list_id(list_id)
    return (manifest, entry) if entry is not None else None


def read_list_file(exports_dir: Path, list_id: str) -> tuple[Manifest, TeamList, bytes] | None:
    """The stored bytes of a list, checked against its manifest's sha256; None if no such list.

    Manifest and file are read from the same folder instance, so a concurrent re-publish of the
    night yields either the old pair or the new pair. Raises ListIntegrityError when the bytes on
    disk do not match the manifest (a file edited or damaged after publishing).
    """
    parsed = parse_list_id(list_id)
    if parsed is None:
        return None
    list_date, team = parsed
    directory = day_dir(exports_dir, list_date)
    for _ in _retrying():
        if not directory.is_dir():
            if _publish_in_progress(directory):
                continue  # the fallback swap (no renameat2) leaves a moment without the folder
            return None
        try:
            manifest, data = _read_day(directory, f"{team}.csv")
        except FileNotFoundError:
            continue  # the night is being re-published: read the new folder
        entry = manifest.by_list_id(list_id)
        if entry is None or data is None:
            return None
        if hashlib.sha256(data).hexdigest() == entry.sha256:
            return manifest, entry, data
        raise ListIntegrityError(
            f"{directory / entry.file}: contents do not match the sha256 in {MANIFEST_NAME}; "
            "re-run the night's target-list export"
        )
    return None


def read_list_rows(data: bytes) -> list[dict[str, str]]:
    """Parse a list file written by `render_team_csv` back into rows (cells as stored)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return [dict(row) for row in reader]
