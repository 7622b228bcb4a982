"""Load extract files into the ODS, once each, accounting for every row.

For one extract kind:

1. Discover files under the inbox that match the mapping's glob (partial uploads named
   `*.part`/`*.tmp` and dot-files are ignored). A file's identity is its SHA-256; hashes are cached
   by (path, size, mtime) so a nightly re-scan does not re-read old files.
2. Skip files whose content was already loaded. A known content under a new name is logged once as
   `duplicate_file` and loads nothing.
3. Prepare each new file (`prepare.py`): compression, encoding, header. A file that cannot be read
   is logged as `failed` with a message naming the file and the problem, stays in the inbox (it is
   retried on every run until it loads or is replaced), and does not stop the other files.
4. Load the prepared files in batches (`batch.py`), each batch in one DuckDB transaction: a batch
   is all or nothing, so a killed run leaves no half-loaded file. If a batch of several files
   fails, each file is retried alone so that one bad file blocks nobody.

Per file: rows_read = rows_loaded + rows_rejected + rows_duplicate, checked before commit.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from .batch import drop_temps, insert_rows, load_batch
from .mapping import SourceMapping
from .prepare import FileProblem, InboxFile, PreparedFile, extract_date_from_name, prepare, sha256_file
from .spec import ExtractSpec
from .sql import ident

log = logging.getLogger(__name__)

BATCH_BYTES = 512 * 1024 * 1024
IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")
HASH_THREADS = max(2, min(8, os.cpu_count() or 2))
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FileResult:
    kind: str
    source_file: str
    sha256: str
    status: str  # loaded | failed | duplicate_file
    load_id: int
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_orphan: int = 0
    data_lines: int | None = None
    records_expected: int | None = None
    message: str | None = None
    duration_s: float = 0.0

    @property
    def reconciled(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected + self.rows_duplicate


@dataclass
class IngestResult:
    kind: str
    files: list[FileResult] = field(default_factory=list)
    skipped: int = 0
    duration_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files if f.status == "loaded")


def discover(inbox: Path, mapping: SourceMapping, through: date | None = None) -> list[Path]:
    """Files of this kind in the inbox, oldest extract date first.

    With `through`, files whose name carries a later extract date are left for a later run (files
    without a date in their name are always taken).
    """
    paths = []
    for p in inbox.glob(mapping.files):
        if not p.is_file() or p.name.startswith(".") or p.name.endswith(IGNORED_SUFFIXES):
            continue
        extract_date = extract_date_from_name(p.name, mapping.extract_date)
        if through is not None and extract_date is not None and extract_date > through:
            continue
        paths.append(p)
    return sorted(paths, key=lambda p: (extract_date_from_name(p.name, mapping.extract_date) or date.min, p.name))


def _has_no_rows(path: Path) -> bool:
    """True for a small file holding at most its header line (a day with nothing to deliver).

    Such files are identical from day to day, so their content hash does not identify a delivery;
    they are logged as loaded with 0 rows instead of as duplicates of each other.
    """
    if path.stat().st_size > 64 * 1024:
        return False
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return False
    return sum(1 for line in data.splitlines() if line.strip()) <= 1


def identify(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, inbox: Path, paths: list[Path]) -> list[InboxFile]:
    """Content hashes of `paths`, from the (path, size, mtime) cache where possible."""
    kind = mapping.kind
    # A file is re-hashed unless path, size, mtime, ctime and inode are all unchanged: ctime moves
    # whenever the file is written or renamed, even when a copy preserves mtime (cp -p, rsync -t).
    cached = {
        tuple(row[:5]): row[5]
        for row in con.execute(
            "select source_file, size_bytes, mtime_ns, ctime_ns, inode, sha256 from ods.file_hashes where kind = ?",
            [kind],
        ).fetchall()
    }
    stats = [(path, path.stat(), path.relative_to(inbox).as_posix()) for path in paths]
    digests = [cached.get((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)) for _, st, rel in stats]
    unknown = [i for i, d in enumerate(digests) if d is None]
    for i, digest in zip(unknown, _in_threads(sha256_file, [stats[i][0] for i in unknown]), strict=True):
        digests[i] = digest
    hashed_now = set(unknown)
    files: list[InboxFile] = []
    fresh: list[tuple[str, str, int, int, str, int, int]] = []
    for i, ((path, stat, rel), digest) in enumerate(zip(stats, digests, strict=True)):
        if i in hashed_now:
            fresh.append((kind, rel, stat.st_size, stat.st_mtime_ns, digest, stat.st_ctime_ns, stat.st_ino))
        extract_date = extract_date_from_name(path.name, mapping.extract_date)
        files.append(InboxFile(path, rel, stat.st_size, stat.st_mtime_ns, digest, extract_date))
    if fresh:
        con.execute("begin transaction")
        con.execute(
            "delete from ods.file_hashes where kind = ? and list_contains(?, source_file)",
            [kind, [rel for _, rel, *_ in fresh]],
        ).fetchall()
        insert_rows(
            con, "ods.file_hashes", ["kind", "source_file", "size_bytes", "mtime_ns", "sha256", "ctime_ns", "inode"], fresh
        )
        con.execute("commit")
    return files


def ingest(
    con: duckdb.DuckDBPyConnection,
    mapping: SourceMapping,
    inbox: Path,
    scratch: Path,
    run_id: str | None = None,
    through: date | None = None,
) -> IngestResult:
    """Load every new file of one kind (up to extract date `through`, if given).

    `con` must be read-write with the ODS created (`ods.ensure_ods`).
    """
    t0 = time.perf_counter()
    kind = mapping.kind
    result = IngestResult(kind)
    files = identify(con, mapping, inbox, discover(inbox, mapping, through))
    loaded = dict(
        con.execute(
            "select sha256, min(load_id) from ods.load_log where kind = ? and status = 'loaded' group by sha256", [kind]
        ).fetchall()
    )
    settled = {
        (row[0], row[1])
        for row in con.execute(
            "select source_file, sha256 from ods.load_log where kind = ? and status in ('loaded', 'duplicate_file')",
            [kind],
        ).fetchall()
    }
    pending: list[InboxFile] = []
    first_of_hash: dict[str, InboxFile] = {}
    copies: list[InboxFile] = []
    for f in files:
        if (f.rel, f.sha256) in settled:
            result.skipped += 1
        elif _has_no_rows(f.path):
            pending.append(f)
        elif f.sha256 in loaded and _still_current(con, mapping, loaded[f.sha256]):
            _log_duplicate_file(con, run_id, f, loaded[f.sha256], result)
        elif f.sha256 in first_of_hash:
            copies.append(f)  # two identical files in one delivery: load the first, log the others
        else:
            first_of_hash[f.sha256] = f
            pending.append(f)

    scratch.mkdir(parents=True, exist_ok=True)
    try:
        prepared: list[PreparedFile] = []
        for f, (started, outcome) in zip(pending, _in_threads(lambda f: _try_prepare(f, mapping, scratch), pending), strict=True):
            if isinstance(outcome, FileProblem):
                _log_failure(con, run_id, f, str(outcome), started, result)
            else:
                prepared.append(outcome)
        for batch in _batches(prepared):
            _load_with_fallback(con, mapping, batch, run_id, result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    now_loaded = {r.sha256: r.load_id for r in result.files if r.status == "loaded"}
    for f in copies:
        if f.sha256 in now_loaded:
            _log_duplicate_file(con, run_id, f, now_loaded[f.sha256], result)
        else:
            first = first_of_hash[f.sha256].rel
            _log_failure(con, run_id, f, f"{f.rel}: same content as {first}, which could not be loaded (see its message)",
                         datetime.now(), result)
    result.duration_s = time.perf_counter() - t0
    return result


def _in_threads(work: Callable[[T], R], items: list[T]) -> list[R]:
    """`[work(x) for x in items]`, on up to HASH_THREADS threads (results in order).

    For the per-file checks before DuckDB takes over: hashing and file reads release the GIL, so
    the files of a night are hashed and checked on every core instead of one after the other while
    DuckDB waits. An exception in `work` propagates as in the plain loop.
    """
    if len(items) < 2:
        return [work(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(HASH_THREADS, len(items))) as pool:
        return list(pool.map(work, items))


def _try_prepare(f: InboxFile, mapping: SourceMapping, scratch: Path) -> tuple[datetime, PreparedFile | FileProblem]:
    """(when the check started, the prepared file or the problem that makes it unreadable)."""
    started = datetime.now()
    try:
        return started, prepare(f, mapping, scratch)
    except FileProblem as exc:
        return started, exc


def _still_current(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, load_id: int) -> bool:
    """Whether a file identical to load `load_id` can be skipped as a duplicate.

    For kinds with updated_at, always: re-sent versions never win over newer ones. For kinds
    without, only while every row of that load is still the current version; otherwise the same
    content is a correction back to earlier values (100 -> 900 -> 100) and must be loaded.
    """
    if mapping.spec.updated_at is not None:
        return True
    [(superseded,)] = con.execute(
        f"select count(*) from ods.{ident(mapping.kind)} where _load_id = ? and not _is_current", [load_id]
    ).fetchall()
    return superseded == 0


def _batches(prepared: list[PreparedFile]) -> Iterable[list[PreparedFile]]:
    """Files with the same header layout and compression, in order, in batches of at most BATCH_BYTES."""
    by_header: dict[tuple, list[PreparedFile]] = {}
    for p in prepared:
        by_header.setdefault((p.header, p.compressed), []).append(p)
    for group in by_header.values():
        batch: list[PreparedFile] = []
        size = 0
        for p in group:
            if batch and size + p.file.size > BATCH_BYTES:
                yield batch
                batch, size = [], 0
            batch.append(p)
            size += p.file.size
        if batch:
            yield batch


def _load_with_fallback(con, mapping: SourceMapping, batch: list[PreparedFile], run_id, result: IngestResult) -> None:
    started = datetime.now()
    t0 = time.perf_counter()
    load_ids = _next_load_ids(con, len(batch))
    try:
        con.execute("begin transaction")
        counts = load_batch(con, mapping, batch, load_ids)
        elapsed = time.perf_counter() - t0
        total_bytes = sum(p.file.size for p in batch) or 1
        results = []
        for p, lid, c in zip(batch, load_ids, counts, strict=True):
            r = FileResult(
                kind=mapping.kind,
                source_file=p.file.rel,
                sha256=p.file.sha256,
                status="loaded",
                load_id=lid,
                rows_read=c.rows_read,
                rows_loaded=c.rows_loaded,
                rows_rejected=c.rows_rejected,
                rows_duplicate=c.rows_duplicate,
                rows_orphan=c.rows_orphan,
                data_lines=p.data_lines,
                records_expected=c.records_expected,
                message=c.note,
                duration_s=elapsed * p.file.size / total_bytes,
            )
            if not r.reconciled:  # never expected: refuse to commit a batch that lost rows
                raise RuntimeError(
                    f"{p.file.rel}: rows do not reconcile inside the load: read {r.rows_read} != loaded "
                    f"{r.rows_loaded} + rejected {r.rows_rejected} + duplicates {r.rows_duplicate}"
                )
            results.append(r)
        _insert_log_rows(con, run_id, [(p.file, r, p.encoding, started, None) for p, r in zip(batch, results, strict=True)])
        con.execute("commit")
        result.files.extend(results)
    except (duckdb.Error, FileProblem, OSError, RuntimeError) as exc:
        con.execute("rollback")
        drop_temps(con)
        if len(batch) > 1:
            log.warning("a batch of %d %s files failed (%s); loading them one by one", len(batch), mapping.kind, exc)
            for p in batch:
                _load_with_fallback(con, mapping, [p], run_id, result)
            return
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = str(exc) if isinstance(exc, FileProblem) else f"{batch[0].file.rel}: could not be loaded: {detail}"
        _log_failure(con, run_id, batch[0].file, message, started, result)


def _next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    return _next_load_ids(con, 1)[0]


def _next_load_ids(con: duckdb.DuckDBPyConnection, n: int) -> list[int]:
    """`n` new load ids in ascending order, from one query (one query per id cost ~1 ms each)."""
    rows = con.execute("select nextval('ods.load_id_seq') from range(?)", [n]).fetchall()
    return sorted(int(r[0]) for r in rows)


def _insert_log_rows(con, run_id: str | None, rows: list[tuple[InboxFile, FileResult, str | None, datetime, int | None]]) -> None:
    finished = datetime.now()
    insert_rows(
        con,
        "ods.load_log",
        [
            "load_id", "run_id", "kind", "source_file", "sha256", "size_bytes", "extract_date", "encoding",
            "status", "rows_read", "rows_loaded", "rows_rejected", "rows_duplicate", "rows_orphan", "data_lines",
            "duplicate_of_load_id", "message", "started_at", "finished_at", "duration_s", "records_expected",
        ],
        [
            (
                r.load_id, run_id, r.kind, f.rel, f.sha256, f.size, f.extract_date, encoding, r.status,
                r.rows_read, r.rows_loaded, r.rows_rejected, r.rows_duplicate, r.rows_orphan, r.data_lines,
                duplicate_of, r.message, started, finished, round(r.duration_s, 3), r.records_expected,
            )
            for f, r, encoding, started, duplicate_of in rows
        ],
    )


def _log_duplicate_file(con, run_id, f: InboxFile, of_load_id: int, result: IngestResult) -> None:
    r = FileResult(
        result.kind, f.rel, f.sha256, "duplicate_file", _next_load_id(con),
        message=f"same content as load {of_load_id}; nothing loaded",
    )
    _insert_log_rows(con, run_id, [(f, r, None, datetime.now(), of_load_id)])
    result.files.append(r)


def _log_failure(con, run_id, f: InboxFile, message: str, started: datetime, result: IngestResult) -> None:
    log.warning("%s", message)
    r = FileResult(
        result.kind, f.rel, f.sha256, "failed", _next_load_id(con), message=message,
        duration_s=(datetime.now() - started).total_seconds(),
    )
    _insert_log_rows(con, run_id, [(f, r, None, started, None)])
    result.files.append(r)


def refresh_orphans(con: duckdb.DuckDBPyConnection, specs: Iterable[ExtractSpec]) -> dict[str, int]:
    """Clear the orphan flag on rows whose customer has arrived since they were loaded."""
    resolved: dict[str, int] = {}
    for spec in specs:
        if not spec.customer_column or spec.kind == "customers":
            continue
        cc = ident(spec.customer_column)
        n = con.execute(
            f"""update ods.{ident(spec.kind)} set _is_orphan = false
                where _is_orphan and {cc} in (select customer_id from ods.customers)"""
        ).fetchone()[0]
        resolved[spec.kind] = int(n)
    return resolved
