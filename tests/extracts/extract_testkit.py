"""Small helpers for loader tests: write extract files, load a kind, query the warehouse."""

from __future__ import annotations

import gzip
from pathlib import Path

from dagster_project.extracts import ods
from dagster_project.extracts.loader import IngestResult, ingest, refresh_orphans
from dagster_project.extracts.mapping import SourceMapping, default_mapping
from dagster_project.extracts.spec import SPECS

HEADERS = {kind: ",".join(spec.column_names) for kind, spec in SPECS.items()}


def write(inbox: Path, rel: str, text: str | bytes, encoding: str = "utf-8", gz: bool = False) -> Path:
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text if isinstance(text, bytes) else text.encode(encoding)
    if gz:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def extract(kind: str, *rows: str, header: bool = True) -> str:
    lines = ([HEADERS[kind]] if header else []) + list(rows)
    return "\n".join(lines) + "\n"


def load(warehouse: Path, inbox: Path, kind: str, mapping: SourceMapping | None = None, run_id: str = "test") -> IngestResult:
    con = ods.connect(warehouse)
    try:
        ods.ensure_ods(con)
        result = ingest(con, mapping or default_mapping(kind), inbox, warehouse.parent / "scratch", run_id=run_id)
        refresh_orphans(con, [SPECS[kind]])
        return result
    finally:
        con.close()


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = ods.connect(warehouse, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


CUSTOMERS_DAY1 = extract(
    "customers",
    "C1,张伟,13800138000,zw@example.cn,east,individual,2020-01-01,active,,2026-11-20 08:00:00",
    'C2,"Li, Ming",13900139000,,north,business,2021-05-05,active,,2026-11-20 08:00:00',
)
