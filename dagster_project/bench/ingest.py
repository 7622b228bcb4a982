"""The ingest stage: every extract kind through the real loader, exactly as the nightly job's assets do.

`ingest_kind()` repeats what `defs/ingest/assets.py` does inside its asset: the source mapping
from the settings, a loader scratch folder next to the warehouse, `Warehouse().connect()` (which
opens the file with the project's memory cap and creates the ODS), `extracts.loader.ingest` (with
`through`, the night's date, as `RunSettings.through_date()` gives it), then `refresh_orphans`.
Only the Dagster bookkeeping around it (events, metadata) is left out. The pipeline calls it for
`ingest_kinds()`, the assets' own list, in that order.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .. import settings
from ..extracts.loader import IngestResult, discover, ingest, refresh_orphans
from ..extracts.mapping import load_mapping
from ..extracts.prepare import extract_date_from_name
from ..extracts.spec import SPECS

log = logging.getLogger(__name__)


@dataclass
class KindLoad:
    kind: str
    seconds: float
    files_loaded: int
    files_failed: int
    files_duplicate: int
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    rows_orphan: int
    orphans_resolved: int
    step_seconds: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "seconds": round(self.seconds, 3),
            "cpu_s": round(self.cpu_s, 3),
            "files_loaded": self.files_loaded,
            "files_failed": self.files_failed,
            "files_duplicate": self.files_duplicate,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rows_duplicate": self.rows_duplicate,
            "rows_orphan": self.rows_orphan,
            "orphans_resolved": self.orphans_resolved,
            "rows_per_s": round(self.rows_per_s, 1),
            "batch_step_seconds": {k: round(v, 3) for k, v in self.step_seconds.items()},
        }


def ingest_kinds() -> tuple[str, ...]:
    """The kinds the nightly job ingests, in its order (customers first, for the orphan flags)."""
    from ..defs.ingest.assets import INGEST_KINDS

    return tuple(INGEST_KINDS)


def extract_files(kinds: tuple[str, ...], through: date | None = None) -> dict[str, list[Path]]:
    """Per kind, the inbox files the loader would pick up (its own discovery and mapping)."""
    inbox = settings.inbox_dir()
    return {kind: discover(inbox, load_mapping(kind, settings.sources_dir()), through) for kind in kinds}


def last_extract_date(kinds: tuple[str, ...]) -> date | None:
    """The newest extract date named by any inbox file of `kinds`."""
    inbox = settings.inbox_dir()
    days = []
    for kind in kinds:
        mapping = load_mapping(kind, settings.sources_dir())
        days += [extract_date_from_name(p.name, mapping.extract_date) for p in discover(inbox, mapping)]
    dated = [d for d in days if d is not None]
    return max(dated) if dated else None


class _StepTimings(logging.Handler):
    """Sums the per-step times that `extracts.batch` logs at DEBUG ("<batch>: <step> took <s>s")."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == "%s: %s took %.2fs" and len(args) == 3:
            self.seconds[str(args[1])] = self.seconds.get(str(args[1]), 0.0) + float(args[2])


@contextmanager
def batch_step_timings() -> Iterator[dict[str, float]]:
    """Collect the loader's own step timings while the block runs (nothing is printed)."""
    logger = logging.getLogger("dagster_project.extracts.batch")
    handler = _StepTimings()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the timings are collected here, not printed by a -v root handler
    try:
        yield handler.seconds
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _summarise(kind: str, result: IngestResult, seconds: float, resolved: int) -> KindLoad:
    return KindLoad(
        kind=kind,
        seconds=seconds,
        files_loaded=result.count("loaded"),
        files_failed=result.count("failed"),
        files_duplicate=result.count("duplicate_file"),
        rows_read=result.total("rows_read"),
        rows_loaded=result.total("rows_loaded"),
        rows_rejected=result.total("rows_rejected"),
        rows_duplicate=result.total("rows_duplicate"),
        rows_orphan=result.total("rows_orphan"),
        orphans_resolved=resolved,
    )


def ingest_kind(kind: str, run_id: str, through: date | None = None) -> tuple[KindLoad, list[str]]:
    """One ingestion asset's work; returns its counts and the messages of failed files."""
    from ..defs.resources import Warehouse

    warehouse = Warehouse()
    spec = SPECS[kind]
    started = time.perf_counter()
    mapping = load_mapping(kind, settings.sources_dir())
    warehouse.resolved_path().parent.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f"ingest-{kind}-", dir=warehouse.resolved_path().parent)
    with batch_step_timings() as steps, warehouse.connect() as con:
        result = ingest(con, mapping, settings.inbox_dir(), scratch=Path(scratch), run_id=run_id, through=through)
        resolved = refresh_orphans(con, [spec]).get(kind, 0)
    seconds = time.perf_counter() - started
    failures = [f.message or f"{f.source_file} failed" for f in result.files if f.status == "failed"]
    load = _summarise(kind, result, seconds, resolved)
    if steps:
        load.step_seconds.update(steps)
        load.step_seconds["other (hashing, file checks, bookkeeping, commit)"] = max(seconds - sum(steps.values()), 0.0)
    log.info("ingested %s: %d rows in %.2fs (%.0f rows/s)", kind, load.rows_read, seconds, load.rows_per_s)
    return load, failures
