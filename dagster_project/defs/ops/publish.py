"""Publish the marts for analysts: a separate DuckDB file, replaced atomically.

Analysts never open the warehouse (a nightly run holds it read-write for minutes at a time, and
DuckDB allows one writing process per file). They open `settings.published_path()` (marts.duckdb)
read-only, which nothing ever writes in place:

1. Under an exclusive lock file, leftovers of a killed publish (`.marts.duckdb.*.tmp`) are removed.
2. A NEW DuckDB file is created next to the published one. The warehouse is attached read-only and
   every table and view of its schema `marts` is copied into the new file's `main` schema as a
   table (a file named marts.duckdb has catalog `marts`, so `marts.<table>` resolves to
   catalog.table with no schema of the same name to make it ambiguous). A `main._published` table
   records the run, the time, the as-of date and each table's row count.
3. The new file is checkpointed, closed, fsynced and made read-only (mode 0444), then
   `os.replace`d onto the published path: atomic on POSIX. A reader that already has the old file
   open keeps reading the old file (its inode) until it reconnects; a new connection sees the new
   one. Nobody ever sees half of one publish and half of another.

A publish that fails or is killed before step 3 leaves the previous file untouched.
This module does not import Dagster (the `crm-warehouse publish` command uses it directly).
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from ... import settings
from ...extracts.spec import SOURCE_KINDS
from ...extracts.sql import ident, lit

log = logging.getLogger(__name__)

MARTS_SCHEMA = "marts"
METADATA_TABLE = "_published"
READ_ONLY_MODE = 0o444


class PublishError(RuntimeError):
    """Publishing cannot proceed; the message says why and what to do."""


@dataclass
class PublishResult:
    path: Path
    run_id: str
    published_at: datetime
    as_of_date: date | None
    tables: dict[str, int] = field(default_factory=dict)  # table -> row count
    duration_s: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.tables.values())


def temp_pattern(target: Path) -> str:
    return f".{target.name}.*.tmp"


def _lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


@contextmanager
def _publish_lock(target: Path) -> Iterator[None]:
    """One publish at a time per published file (the nightly run and a hand publish may overlap)."""
    with open(_lock_path(target), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def remove_leftovers(target: Path) -> list[Path]:
    """Delete temporary files of publishes that were killed (call under the publish lock)."""
    removed = []
    for path in target.parent.glob(temp_pattern(target)):
        _remove(path)
        removed.append(path)
    for wal in target.parent.glob(temp_pattern(target) + ".wal"):
        _remove(wal)
        removed.append(wal)
    if removed:
        log.warning(
            "removed %d leftover file(s) of an interrupted publish: %s", len(removed), [p.name for p in removed]
        )
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def latest_extract_date(con: duckdb.DuckDBPyConnection, catalog: str) -> date | None:
    """Newest extract date among loaded source files in the attached warehouse (None if unknown)."""
    exists = con.execute(
        "select count(*) from duckdb_tables() "
        "where database_name = ? and schema_name = 'ods' and table_name = 'load_log'",
        [catalog],
    ).fetchone()[0]
    if not exists:
        return None
    kinds = ", ".join(lit(k) for k in SOURCE_KINDS)
    row = con.execute(
        f"select max(extract_date) from {ident(catalog)}.ods.load_log where status = 'loaded' and kind in ({kinds})"
    ).fetchone()
    return row[0] if row else None


def _mart_relations(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    rows = con.execute(
        """select table_name from duckdb_tables() where database_name = ? and schema_name = ?
           union
           select view_name from duckdb_views() where database_name = ? and schema_name = ? and not internal
           order by 1""",
        [catalog, MARTS_SCHEMA, catalog, MARTS_SCHEMA],
    ).fetchall()
    return [r[0] for r in rows]


def _build(tmp: Path, warehouse: Path, run_id: str, as_of_date: date | None, published_at: datetime) -> PublishResult:
    # Both files are attached under neutral names: a catalog called `marts` (the file name's default)
    # would make `marts.<table>` inside the warehouse's own views ambiguous.
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"set memory_limit = '{settings.duckdb_memory_limit()}'")
        con.execute("set enable_progress_bar = false")
        con.execute(f"set temp_directory = {lit((tmp.parent / '.duckdb_tmp').as_posix())}")
        con.execute(f"attach {lit(str(warehouse))} as _warehouse (read_only)")
        con.execute(f"attach {lit(str(tmp))} as _new")
        names = _mart_relations(con, "_warehouse")
        if not names:
            raise PublishError(
                f"{warehouse}: schema {MARTS_SCHEMA} has no tables or views, so there is nothing to publish "
                "(has dbt built the marts? run `crm-warehouse run`). The published file was left as it was."
            )
        if METADATA_TABLE in names:
            raise PublishError(f"{warehouse}: a mart may not be named {METADATA_TABLE} (reserved for publish metadata)")
        as_of = as_of_date or latest_extract_date(con, "_warehouse")
        result = PublishResult(path=tmp, run_id=run_id, published_at=published_at, as_of_date=as_of)
        for name in names:
            con.execute(
                f"create table _new.main.{ident(name)} as select * from _warehouse.{MARTS_SCHEMA}.{ident(name)}"
            )
            result.tables[name] = int(con.execute(f"select count(*) from _new.main.{ident(name)}").fetchone()[0])
        con.execute("detach _warehouse")
        con.execute(
            f"""create table _new.main.{METADATA_TABLE} (
                    table_name VARCHAR, row_count BIGINT, run_id VARCHAR, published_at TIMESTAMPTZ,
                    as_of_date DATE, source VARCHAR)"""
        )
        con.executemany(
            f"insert into _new.main.{METADATA_TABLE} values (?, ?, ?, ?, ?, ?)",
            [[name, n, run_id, published_at, as_of, str(warehouse)] for name, n in result.tables.items()],
        )
        con.execute("checkpoint _new")
        con.execute("detach _new")
    finally:
        con.close()
    return result


def publish_marts(
    warehouse: Path | None = None,
    target: Path | None = None,
    run_id: str | None = None,
    as_of_date: date | None = None,
) -> PublishResult:
    """Copy schema `marts` of the warehouse into a new file and atomically replace `target` with it."""
    warehouse = warehouse or settings.warehouse_path()
    target = target or settings.published_path()
    run_id = run_id or f"manual-{datetime.now():%Y%m%dT%H%M%S}"
    if not warehouse.exists():
        raise PublishError(f"{warehouse}: the warehouse does not exist yet; run `crm-warehouse run` first")
    target.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now().astimezone()
    with _publish_lock(target):
        remove_leftovers(target)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            result = _build(tmp, warehouse, run_id, as_of_date, started)
            os.chmod(tmp, READ_ONLY_MODE)
            _fsync(tmp)
            stale_wal = target.with_name(target.name + ".wal")
            if stale_wal.exists():  # a WAL left by someone who opened the old file read-write
                log.warning(
                    "removing %s: it belongs to the previous file and must not be replayed on the new one", stale_wal
                )
                _remove(stale_wal)
            os.replace(tmp, target)
            _fsync(target.parent)
        except BaseException:
            _remove(tmp)
            _remove(tmp.with_name(tmp.name + ".wal"))
            raise
    result.path = target
    result.duration_s = (datetime.now().astimezone() - started).total_seconds()
    log.info("published %d table(s), %d rows, to %s", len(result.tables), result.total_rows, target)
    return result


@dataclass(frozen=True)
class PublishedInfo:
    path: Path
    run_id: str
    published_at: datetime
    as_of_date: date | None
    tables: dict[str, int]


def published_info(path: Path | None = None) -> PublishedInfo | None:
    """What the published file says about itself (None when there is no published file yet)."""
    path = path or settings.published_path()
    if not path.exists():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            f"select table_name, row_count, run_id, published_at, as_of_date from main.{METADATA_TABLE} order by 1"
        ).fetchall()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    if not rows:
        return None
    return PublishedInfo(
        path=path,
        run_id=rows[0][2],
        published_at=rows[0][3],
        as_of_date=rows[0][4],
        tables={r[0]: int(r[1]) for r in rows},
    )
