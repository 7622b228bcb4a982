"""The ceiling for ingestion: bare DuckDB reading the same extract files, with nothing else to do.

Two measurements per kind, each in a fresh DuckDB file opened like the warehouse (`ods.connect`:
same memory cap, same spill folder rule, DuckDB's default threads):

- persist: `create table t as select * from read_csv([files], columns = {typed canonical columns},
  header = true, auto_detect = false)`: the same work as a load (typed read and write), without
  checks, line numbers, duplicates, lineage or bookkeeping;
- read: `select count(*), count(col_1), ..., count(col_n)` over the same typed `read_csv`: a pure
  read. Every column is counted so the reader must parse and cast all of them (a bare `count(*)`
  lets DuckDB skip the casts).

The pipeline repeats each attempt, interleaved with the loader's, and keeps the best time (the
machine is shared and noisy).
"""

from __future__ import annotations

import gzip
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..extracts import ods
from ..extracts.spec import SPECS, ExtractSpec
from ..extracts.sql import ident, lit
from .cpu import cpu_seconds

log = logging.getLogger(__name__)


class CeilingError(RuntimeError):
    """The bare read would not do the same work as the loader; the message names the file."""


def _first_line(path: Path) -> str:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        return f.readline().rstrip("\r\n")


def check_headers(spec: ExtractSpec, files: list[Path]) -> None:
    """Every file's header names the spec's columns in the spec's order.

    `read_csv(columns = {...})` takes the columns by position, so a file in another layout would be
    cast into the wrong columns (or fail) and the bare read would not be the loader's work.
    """
    expected = ",".join(spec.column_names)
    for path in files:
        header = _first_line(path)
        if header != expected:
            raise CeilingError(
                f"{path}: header {header!r} is not the canonical {spec.kind} layout {expected!r}; the bare "
                "read_csv ceiling needs canonical UTF-8 CSV files (generate them with the generate stage)"
            )


def typed_read_csv(spec: ExtractSpec, files: list[Path]) -> str:
    """`read_csv(...)` of canonical files with the spec's column types, no sniffing."""
    paths = "[" + ", ".join(lit(p.as_posix()) for p in files) + "]"
    columns = "{" + ", ".join(f"{lit(c.name)}: {lit(c.type)}" for c in spec.columns) + "}"
    return f"read_csv({paths}, columns = {columns}, header = true, auto_detect = false)"


def persist_sql(spec: ExtractSpec, files: list[Path]) -> str:
    return f"create table {ident(spec.kind)} as select * from {typed_read_csv(spec, files)}"


def read_sql(spec: ExtractSpec, files: list[Path]) -> str:
    counts = ", ".join(f"count({ident(c.name)})" for c in spec.columns)
    return f"select count(*), {counts} from {typed_read_csv(spec, files)}"


@dataclass
class KindCeiling:
    kind: str
    files: int
    bytes: int
    rows: int = 0
    persist_runs: list[float] = field(default_factory=list)
    read_runs: list[float] = field(default_factory=list)
    persist_cpu: list[float] = field(default_factory=list)
    read_cpu: list[float] = field(default_factory=list)

    @property
    def persist_s(self) -> float:
        return min(self.persist_runs)

    @property
    def read_s(self) -> float:
        return min(self.read_runs)

    @property
    def persist_cpu_s(self) -> float:
        return min(self.persist_cpu)

    @property
    def read_cpu_s(self) -> float:
        return min(self.read_cpu)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "files": self.files,
            "bytes": self.bytes,
            "rows": self.rows,
            "persist_s": round(self.persist_s, 3),
            "persist_runs_s": [round(s, 3) for s in self.persist_runs],
            "persist_rows_per_s": round(self.rows / self.persist_s, 1),
            "persist_cpu_s": round(self.persist_cpu_s, 3),
            "read_s": round(self.read_s, 3),
            "read_runs_s": [round(s, 3) for s in self.read_runs],
            "read_rows_per_s": round(self.rows / self.read_s, 1),
            "read_cpu_s": round(self.read_cpu_s, 3),
        }


def _fresh_connection(folder: Path) -> duckdb.DuckDBPyConnection:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return ods.connect(folder / "bare.duckdb")


def new_ceilings(files_by_kind: dict[str, list[Path]]) -> dict[str, KindCeiling]:
    """One empty record per kind that has files (after checking their headers)."""
    for kind, files in files_by_kind.items():
        check_headers(SPECS[kind], files)
    return {
        kind: KindCeiling(kind, len(files), sum(p.stat().st_size for p in files))
        for kind, files in files_by_kind.items()
        if files
    }


def persist_once(ceilings: dict[str, KindCeiling], files_by_kind: dict[str, list[Path]], folder: Path) -> None:
    """One attempt of `create table as select * from read_csv(...)` per kind, into a fresh DuckDB file."""
    con = _fresh_connection(folder)
    try:
        for kind, ceiling in ceilings.items():
            started, cpu = time.perf_counter(), cpu_seconds()
            con.execute(persist_sql(SPECS[kind], files_by_kind[kind]))
            con.execute("checkpoint")  # the load commits to the file; so does the bare copy
            ceiling.persist_runs.append(time.perf_counter() - started)
            ceiling.persist_cpu.append(cpu_seconds() - cpu)
            rows = int(con.execute(f"select count(*) from {ident(kind)}").fetchone()[0])
            if ceiling.rows and rows != ceiling.rows:
                raise RuntimeError(f"bare load of {kind} read {rows} rows, an earlier attempt {ceiling.rows}")
            ceiling.rows = rows
            log.info("bare persist %s: %d rows in %.2fs", kind, rows, ceiling.persist_runs[-1])
    finally:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)


def read_once(ceilings: dict[str, KindCeiling], files_by_kind: dict[str, list[Path]], folder: Path) -> None:
    """One attempt of the typed read (counting every column) per kind; run after `persist_once`."""
    con = _fresh_connection(folder)
    try:
        for kind, ceiling in ceilings.items():
            started, cpu = time.perf_counter(), cpu_seconds()
            row = con.execute(read_sql(SPECS[kind], files_by_kind[kind])).fetchone()
            ceiling.read_runs.append(time.perf_counter() - started)
            ceiling.read_cpu.append(cpu_seconds() - cpu)
            if int(row[0]) != ceiling.rows:
                raise RuntimeError(f"bare read of {kind} counted {row[0]} rows, the bare load {ceiling.rows}")
            log.info("bare read %s: %d rows in %.2fs", kind, row[0], ceiling.read_runs[-1])
    finally:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)


def best_total(ceilings: dict[str, KindCeiling], attr: str) -> float:
    """Best attempt of all kinds together: the fastest attempt's summed time (attempt i of every kind)."""
    runs = [getattr(c, attr) for c in ceilings.values()]
    if not runs:
        return 0.0
    return min(sum(r[i] for r in runs) for i in range(min(len(r) for r in runs)))
