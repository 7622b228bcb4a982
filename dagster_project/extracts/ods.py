"""The ODS schema in the warehouse DuckDB file: typed extract tables plus the bookkeeping tables.

- `ods.<kind>`: every loaded row version with lineage columns (`_source_file`, `_source_line`,
  `_load_id`, `_loaded_at`) and `_is_current` (the version that wins by natural key, then
  `updated_at` where the kind has one, then load order). `ods.<kind>_current` shows only those.
- `ods.load_log`: one row per file attempt: counts, status, duration, message.
- `ods.rejected_rows`: every row that could not be loaded, with file, line, column, reason, raw text.
- `ods.duplicate_rows`: every row not loaded because the same version was already there.
- `ods.file_hashes`: cache of content hashes by (file, size, mtime) so a re-scan is cheap.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .. import settings
from .spec import SPECS
from .sql import current_view_ddl, ods_table_ddl

BOOKKEEPING_DDL = (
    "create schema if not exists ods",
    "create sequence if not exists ods.load_id_seq start 1",
    """create table if not exists ods.load_log (
        load_id BIGINT,
        run_id VARCHAR,
        kind VARCHAR,
        source_file VARCHAR,
        sha256 VARCHAR,
        size_bytes BIGINT,
        extract_date DATE,
        encoding VARCHAR,
        status VARCHAR,
        rows_read BIGINT,
        rows_loaded BIGINT,
        rows_rejected BIGINT,
        rows_duplicate BIGINT,
        rows_orphan BIGINT,
        data_lines BIGINT,
        duplicate_of_load_id BIGINT,
        message VARCHAR,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        duration_s DOUBLE
    )""",
    """create table if not exists ods.rejected_rows (
        load_id BIGINT,
        kind VARCHAR,
        source_file VARCHAR,
        source_line BIGINT,
        column_name VARCHAR,
        reason VARCHAR,
        raw_text VARCHAR,
        error_type VARCHAR,
        rejected_at TIMESTAMP
    )""",
    """create table if not exists ods.duplicate_rows (
        load_id BIGINT,
        kind VARCHAR,
        source_file VARCHAR,
        source_line BIGINT,
        natural_key VARCHAR,
        duplicate_of_file VARCHAR,
        duplicate_of_line BIGINT
    )""",
    """create table if not exists ods.file_hashes (
        kind VARCHAR,
        source_file VARCHAR,
        size_bytes BIGINT,
        mtime_ns BIGINT,
        sha256 VARCHAR
    )""",
    # columns added after the first release: warehouses created earlier gain them here
    "alter table ods.file_hashes add column if not exists ctime_ns BIGINT",
    "alter table ods.file_hashes add column if not exists inode BIGINT",
    "alter table ods.load_log add column if not exists records_expected BIGINT",
)


def connect(path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the project's memory cap and a spill folder next to the file."""
    path = path or settings.warehouse_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute(f"set memory_limit = '{settings.duckdb_memory_limit()}'")
    con.execute("set enable_progress_bar = false")
    if not read_only:
        spill = path.parent / ".duckdb_tmp"
        con.execute(f"set temp_directory = '{spill.as_posix()}'")
    return con


def ensure_ods(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ODS schema, tables and views if they do not exist (idempotent)."""
    for ddl in BOOKKEEPING_DDL:
        con.execute(ddl)
    for spec in SPECS.values():
        con.execute(ods_table_ddl(spec))
        con.execute(current_view_ddl(spec))
