"""What is waiting in the inbox: the files ingestion would load, seen without writing the warehouse.

Used by the inbox sensor (which runs in the daemon while a run may be writing the warehouse) and the
inbox freshness check. Files are found exactly as ingestion finds them (`loader.discover` with each
kind's source mapping) and identified by content (`prepare.sha256_file`). A file is pending when
ingestion would load it: neither the same (path, content) nor the same content is already settled
in `ods.load_log`. The warehouse is only ever opened read-only, and only when no run holds it.
This module does not import Dagster.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from ...extracts import ods
from ...extracts.loader import discover
from ...extracts.mapping import MappingError, load_mapping
from ...extracts.prepare import extract_date_from_name, sha256_file

log = logging.getLogger(__name__)

# (kind, relative path, size, mtime_ns) -> sha256
HashCache = Mapping[tuple[str, str, int, int], str]


@dataclass(frozen=True)
class InboxFile:
    kind: str
    rel: str
    size: int
    mtime_ns: int
    extract_date: date | None
    path: Path


@dataclass
class WarehouseView:
    """What the warehouse knows about files, read once (read-only)."""

    settled: set[tuple[str, str, str]] = field(default_factory=set)  # (kind, rel, sha) loaded or duplicate_file
    loaded: set[tuple[str, str]] = field(default_factory=set)  # (kind, sha) whose content is loaded
    hashes: dict[tuple[str, str, int, int], str] = field(default_factory=dict)
    extract_dates: dict[str, date] = field(default_factory=dict)  # kind -> newest loaded extract date


class WarehouseBusy(Exception):
    """The warehouse file is locked by a writer (a run is loading or building)."""


def list_inbox(inbox: Path, sources_dir: Path, kinds: Iterable[str]) -> tuple[list[InboxFile], list[str]]:
    """Every file ingestion would consider, per kind (stat only, no hashing); plus mapping problems."""
    files: list[InboxFile] = []
    problems: list[str] = []
    if not inbox.exists():
        return files, problems
    for kind in kinds:
        try:
            mapping = load_mapping(kind, sources_dir)
        except MappingError as exc:
            problems.append(str(exc))
            continue
        for path in discover(inbox, mapping):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # moved away between listing and stat
            files.append(
                InboxFile(
                    kind=kind,
                    rel=path.relative_to(inbox).as_posix(),
                    size=stat.st_size,
                    mtime_ns=stat.st_mtime_ns,
                    extract_date=extract_date_from_name(path.name, mapping.extract_date),
                    path=path,
                )
            )
    return files, problems


def read_warehouse(path: Path) -> WarehouseView:
    """Load-log facts from the warehouse, opened read-only. Raises WarehouseBusy when a writer holds it."""
    view = WarehouseView()
    if not path.exists():
        return view
    try:
        con = ods.connect(path, read_only=True)
    except duckdb.IOException as exc:
        raise WarehouseBusy(str(exc).splitlines()[0]) from exc
    try:
        has_log = con.execute(
            "select count(*) from duckdb_tables() "
            "where schema_name = 'ods' and table_name in ('load_log', 'file_hashes')"
        ).fetchone()[0]
        if has_log < 2:
            return view
        for kind, rel, sha, status, extract_date in con.execute(
            "select kind, source_file, sha256, status, extract_date from ods.load_log "
            "where status in ('loaded', 'duplicate_file')"
        ).fetchall():
            view.settled.add((kind, rel, sha))
            if status == "loaded":
                view.loaded.add((kind, sha))
                if extract_date and (kind not in view.extract_dates or extract_date > view.extract_dates[kind]):
                    view.extract_dates[kind] = extract_date
        for kind, rel, size, mtime, sha in con.execute(
            "select kind, source_file, size_bytes, mtime_ns, sha256 from ods.file_hashes"
        ).fetchall():
            view.hashes[(kind, rel, size, mtime)] = sha
    finally:
        con.close()
    return view


@dataclass(frozen=True)
class PendingFile:
    kind: str
    rel: str
    sha256: str
    size: int
    mtime_ns: int


def pending_files(files: Iterable[InboxFile], view: WarehouseView, extra_hashes: HashCache) -> list[PendingFile]:
    """Files ingestion would load now, hashing only files neither cache knows."""
    out = []
    for f in files:
        fingerprint = (f.kind, f.rel, f.size, f.mtime_ns)
        sha = view.hashes.get(fingerprint) or extra_hashes.get(fingerprint)
        if sha is None:
            try:
                sha = sha256_file(f.path)
            except FileNotFoundError:
                continue
        if (f.kind, f.rel, sha) in view.settled or (f.kind, sha) in view.loaded:
            continue
        out.append(PendingFile(f.kind, f.rel, sha, f.size, f.mtime_ns))
    return sorted(out, key=lambda p: (p.kind, p.rel))


def run_key(pending: Iterable[PendingFile]) -> str:
    """sha256 of the sorted (kind, relative path, content sha256) of the pending files."""
    items = sorted((p.kind, p.rel, p.sha256) for p in pending)
    return "inbox-" + hashlib.sha256(json.dumps(items).encode("utf-8")).hexdigest()
