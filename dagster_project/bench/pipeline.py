"""`run_benchmark()`: the pipeline on generated data, stage by stage, with time, rows and peak memory.

Stages, in this order (any subset):

- `generate`: the demo generator writes `customers` x `days` of extracts into the scratch inbox;
- `ingest`: every kind through the real loader (`bench/ingest.py`) into a fresh warehouse, taking
  turns `repeat` times with the bare DuckDB ceiling on the same files (`bench/ceiling.py`); the
  ratios of the best times (wall clock, and CPU seconds as context on a shared machine);
- `marts`: full and incremental nightly dbt builds and bare SQL of the heaviest tables (`bench/marts.py`);
- `clv`: `bench.clv.clv_benchmark` (fit + score); `churn`: `bench.churn.churn_benchmark` (train + score).

Everything runs in this process with CRM_DATA_DIR and CRM_MODELS_DIR pointed at a scratch folder
(`bench/scratch.py`); peak memory is the RSS of this process plus its children (`bench/memory.py`).
The result is one JSON-ready dict; `commands/bench.py` prints it.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import shutil
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import settings
from .cpu import cpu_seconds
from .ingest import KindLoad
from .memory import PeakRss, RssSampler
from .scratch import Scratch, close_scratch, open_scratch, scratch_environment

log = logging.getLogger(__name__)

STAGES = ("generate", "ingest", "marts", "clv", "churn")
INGEST_RATIO_TARGET = 0.5
# Ratios held to the ingest target: the loader against bare `create table as select * from read_csv(...)`.
INGEST_TARGET_RATIOS = ("transactions_vs_bare_ctas", "all_kinds_vs_bare_ctas")
INGEST_PEAK_TARGET_MB = 4096.0
INCREMENTAL_RATIO_TARGET = 0.25
FULL_OVER_BARE_TARGET = 3.0
CLV_SCORE_TARGET_SECONDS = 60.0  # fit + score of 1M customers

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    customers: int
    days: int
    seed: int = 42
    stages: tuple[str, ...] = STAGES
    keep: bool = False
    workdir: Path | None = None
    repeat: int = 3
    clv_customers: int = 1_000_000
    lifetimes_customers: int = 100_000
    churn_train_rows: int = 2_000_000
    churn_score_rows: int = 1_000_000

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
        if not self.stages:
            raise ValueError(f"no stage given; choose from {', '.join(STAGES)}")
        if self.repeat < 1:
            raise ValueError(f"repeat must be at least 1, got {self.repeat}")
        if "marts" in self.stages and self.days < 2:
            raise ValueError(
                "the marts stage needs --days 2 or more: the last day is held back for the incremental run"
            )


@dataclass
class Measurement:
    label: str
    seconds: float
    rows: int | None = None
    peak: PeakRss | None = None
    note: str | None = None
    cpu_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "seconds": round(self.seconds, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "rows": self.rows,
            "rows_per_s": _rate(self.rows, self.seconds),
            **(self.peak.as_dict() if self.peak else {}),
            "note": self.note,
        }


@dataclass
class StageResult:
    name: str
    status: str = "skipped"  # ok | failed | skipped
    seconds: float = 0.0
    cpu_s: float | None = None
    rows: int | None = None
    peak: PeakRss | None = None
    measurements: list[Measurement] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "rows": self.rows,
            # A stage with measurements spends its wall time on several things: their own rates are the meaningful ones.
            "rows_per_s": None if self.measurements else _rate(self.rows, self.seconds),
            **(self.peak.as_dict() if self.peak else {}),
            "measurements": [m.as_dict() for m in self.measurements],
            "details": self.details,
            "error": self.error,
        }


@dataclass
class _IngestAttempt:
    """One load of every kind into a fresh warehouse."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    rows: int = 0
    loads: dict[str, KindLoad] = field(default_factory=dict)
    peaks: dict[str, PeakRss] = field(default_factory=dict)
    peak: PeakRss = field(default_factory=PeakRss)


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    op: str  # ">=", "<", "<="
    threshold: float
    scale: str

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return {
            ">=": self.value >= self.threshold,
            "<": self.value < self.threshold,
            "<=": self.value <= self.threshold,
        }[self.op]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "target": f"{self.op} {self.threshold:g}",
            "met": self.met,
            "measured_at": self.scale,
        }


def _rate(rows: int | None, seconds: float) -> float | None:
    return round(rows / seconds, 1) if rows is not None and seconds > 0 else None


def machine() -> dict[str, Any]:
    """What the numbers were measured on (read from /proc where available)."""
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb_memory_limit": settings.duckdb_memory_limit(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu_model"] = platform.processor()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        info["memory_gb"] = None
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "dagster", "scikit-learn", "lifetimes"):
        try:
            info[f"{package}_version"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[f"{package}_version"] = None
    return info


class _Bench:
    """One benchmark run: the scratch folder, the sampler and the stage results."""

    def __init__(self, config: BenchConfig, scratch: Scratch, sampler: RssSampler, progress: Progress) -> None:
        self.config = config
        self.scratch = scratch
        self.sampler = sampler
        self.progress = progress
        self.run_id = f"bench-{uuid.uuid4().hex[:12]}"
        self.generated: dict[str, int] | None = None
        self.last_day: date | None = None
        self.targets: list[Target] = []

    # -- generate --------------------------------------------------------------------------------
    def generate(self, stage: StageResult) -> None:
        from ..demo import GeneratorConfig, generate

        c = self.config
        summary = generate(
            GeneratorConfig(
                out_dir=settings.inbox_dir(),
                truth_dir=settings.ground_truth_dir(),
                customers=c.customers,
                days=c.days,
                seed=c.seed,
            )
        )
        self.generated = dict(summary.rows)
        stage.rows = sum(summary.rows.values())
        stage.details = {
            "rows_by_kind": summary.rows,
            "files": summary.files,
            "bytes_written": summary.bytes_written,
            "period": {"start": summary.start_date.isoformat(), "end": summary.end_date.isoformat()},
            "customers_initial": summary.customers_initial,
            "customers_new": summary.customers_new,
        }
        self.progress(
            f"generate: {stage.rows:,} rows in {summary.files:,} files ({summary.bytes_written / 1e6:,.0f} MB)"
        )

    # -- ingest ----------------------------------------------------------------------------------
    def ingest(self, stage: StageResult) -> None:
        from . import ceiling
        from .ingest import extract_files, ingest_kinds, last_extract_date

        kinds = ingest_kinds()
        self.last_day = last_extract_date(kinds)
        through = None
        if "marts" in self.config.stages and self.last_day is not None:
            # The marts stage adds the last day in a nightly run of its own: load up to the day before.
            through = self.last_day - timedelta(days=1)
            self.progress(f"ingest: loading extracts through {through}; {self.last_day} is left for the marts stage")
        stage.details["through"] = through.isoformat() if through else None
        files = extract_files(kinds, through)
        if not any(files.values()):
            raise RuntimeError(f"no extract files in {settings.inbox_dir()}: run the generate stage too")
        present = {k: v for k, v in files.items() if v}
        ceilings = ceiling.new_ceilings(present)
        repeat = self.config.repeat

        # Loader and bare DuckDB take turns, `repeat` times, so both see the same spells of load from
        # other users; the best time of each counts, and the highest memory.
        attempts: list[_IngestAttempt] = []
        persist_peak, read_peak = PeakRss(), PeakRss()
        for attempt in range(repeat):
            attempts.append(self._ingest_once(kinds, files, through, f"{attempt + 1}/{repeat}"))
            self.progress(f"ingest: bare DuckDB read_csv of the same files ({attempt + 1}/{repeat})")
            with self.sampler.scope() as peak:
                ceiling.persist_once(ceilings, present, self.scratch.bare)
            persist_peak = _max_peak(persist_peak, peak)
            with self.sampler.scope() as peak:
                ceiling.read_once(ceilings, present, self.scratch.bare)
            read_peak = _max_peak(read_peak, peak)

        best = min(attempts, key=lambda a: a.seconds)
        total_rows = best.rows
        stage.rows = total_rows
        note = f"best of {repeat}"
        for kind in kinds:
            if not files[kind]:
                continue
            fastest = min((a.loads[kind] for a in attempts), key=lambda x: x.seconds)
            peak = PeakRss()
            for a in attempts:
                peak = _max_peak(peak, a.peaks[kind])
            stage.measurements.append(
                Measurement(f"ingest {kind}", fastest.seconds, fastest.rows_read, peak, note, fastest.cpu_s)
            )
        ingest_peak = PeakRss()
        for a in attempts:
            ingest_peak = _max_peak(ingest_peak, a.peak)
        stage.measurements.append(
            Measurement("ingest all kinds", best.seconds, total_rows, ingest_peak, note, best.cpu_s)
        )
        stage.details["loader"] = [x.as_dict() for x in best.loads.values()]
        stage.details["loader_attempts"] = [
            {"seconds": round(a.seconds, 3), "cpu_s": round(a.cpu_s, 3), **a.peak.as_dict()} for a in attempts
        ]
        stage.details["warehouse_bytes"] = _size(settings.warehouse_path())
        if self.generated is None:  # a kept work folder: what its generate stage wrote
            self.generated = _generated_rows(settings.ground_truth_dir() / "generation.json")
        if self.generated is not None and through is None:
            stage.details["rows_match_generated"] = all(
                best.loads[k].rows_read == n for k, n in self.generated.items() if k in best.loads
            )

        txn = ceilings.get("transactions")
        all_rows = sum(c.rows for c in ceilings.values())
        if all_rows != total_rows:
            raise RuntimeError(f"the loader read {total_rows:,} rows but bare DuckDB {all_rows:,} from the same files")
        persist_all = ceiling.best_total(ceilings, "persist_runs")
        read_all = ceiling.best_total(ceilings, "read_runs")
        persist_all_cpu = ceiling.best_total(ceilings, "persist_cpu")
        read_all_cpu = ceiling.best_total(ceilings, "read_cpu")
        if txn is not None:
            stage.measurements.append(
                Measurement(
                    "bare CTAS read_csv transactions", txn.persist_s, txn.rows, persist_peak, note, txn.persist_cpu_s
                )
            )
        stage.measurements.append(
            Measurement("bare CTAS read_csv all kinds", persist_all, all_rows, persist_peak, note, persist_all_cpu)
        )
        if txn is not None:
            stage.measurements.append(
                Measurement("bare typed read transactions", txn.read_s, txn.rows, read_peak, note, txn.read_cpu_s)
            )
        stage.measurements.append(
            Measurement("bare typed read all kinds", read_all, all_rows, read_peak, note, read_all_cpu)
        )

        # Throughput ratios on the wall clock (the target) and, as context on a shared machine, on
        # CPU seconds. Both sides read the same rows (checked above), so a throughput ratio is a time ratio.
        ratios: dict[str, float | None] = {}
        cpu_ratios: dict[str, float | None] = {}
        fastest_txn = min((a.loads["transactions"] for a in attempts), key=lambda x: x.seconds, default=None)
        if txn is not None and fastest_txn is not None and fastest_txn.seconds > 0:
            ratios["transactions_vs_bare_ctas"] = _ratio(txn.persist_s, fastest_txn.seconds)
            ratios["transactions_vs_bare_read"] = _ratio(txn.read_s, fastest_txn.seconds)
            least_txn_cpu = min(a.loads["transactions"].cpu_s for a in attempts)
            cpu_ratios["transactions_vs_bare_ctas"] = _ratio(txn.persist_cpu_s, least_txn_cpu)
            cpu_ratios["transactions_vs_bare_read"] = _ratio(txn.read_cpu_s, least_txn_cpu)
        least_cpu = min(a.cpu_s for a in attempts)
        ratios["all_kinds_vs_bare_ctas"] = _ratio(persist_all, best.seconds)
        ratios["all_kinds_vs_bare_read"] = _ratio(read_all, best.seconds)
        cpu_ratios["all_kinds_vs_bare_ctas"] = _ratio(persist_all_cpu, least_cpu)
        cpu_ratios["all_kinds_vs_bare_read"] = _ratio(read_all_cpu, least_cpu)
        stage.details["bare"] = {
            "repeat": repeat,
            "kinds": [c.as_dict() for c in ceilings.values()],
            "persist_all_s": round(persist_all, 3),
            "read_all_s": round(read_all, 3),
            "persist_all_cpu_s": round(persist_all_cpu, 3),
            "read_all_cpu_s": round(read_all_cpu, 3),
            "sql": {
                "persist": "create table <kind> as select * from read_csv([<files>], columns = {<typed canonical "
                "columns>}, header = true, auto_detect = false)",
                "read": "select count(*), count(<col_1>), ..., count(<col_n>) from read_csv(<same arguments>)",
            },
        }
        stage.details["ratios_ingest_over_bare"] = ratios
        stage.details["ratios_ingest_over_bare_cpu"] = cpu_ratios
        txn_rows = fastest_txn.rows_read if fastest_txn else 0
        scale = f"{txn_rows:,} transactions, {total_rows:,} rows"
        # The target compares like with like: the bare side also reads the typed files into a table
        # (CTAS). The pure-read ratios stay in the details and the table, as context.
        for name in INGEST_TARGET_RATIOS:
            if name in ratios:
                self.targets.append(
                    Target(f"ingest rows/s / bare rows/s ({name})", ratios[name], ">=", INGEST_RATIO_TARGET, scale)
                )
        self.targets.append(
            Target("ingest peak RSS MB (process tree)", _round(ingest_peak.tree_mb), "<", INGEST_PEAK_TARGET_MB, scale)
        )

    def _ingest_once(
        self, kinds: tuple[str, ...], files: dict[str, list[Path]], through: date | None, label: str
    ) -> _IngestAttempt:
        """Every kind into a fresh warehouse, as the nightly job's ingestion assets do."""
        from .ingest import ingest_kind

        # A fresh warehouse: the benchmark measures loading every file, not skipping loaded ones.
        shutil.rmtree(settings.warehouse_path().parent, ignore_errors=True)
        attempt = _IngestAttempt()
        failures: list[str] = []
        with self.sampler.scope() as attempt.peak:
            started, cpu_started = time.perf_counter(), cpu_seconds()
            for kind in kinds:
                self.progress(f"ingest: loading {kind} ({len(files[kind]):,} files, {label})")
                with self.sampler.scope() as attempt.peaks[kind]:
                    cpu = cpu_seconds()
                    load, failed = ingest_kind(kind, self.run_id, through)
                    load.cpu_s = cpu_seconds() - cpu
                attempt.loads[kind] = load
                failures += failed
            attempt.seconds, attempt.cpu_s = time.perf_counter() - started, cpu_seconds() - cpu_started
        if failures:
            raise RuntimeError(f"{len(failures)} extract file(s) failed to load; first: {failures[0]}")
        attempt.rows = sum(x.rows_read for x in attempt.loads.values())
        return attempt

    # -- marts -----------------------------------------------------------------------------------
    def marts(self, stage: StageResult) -> None:
        from .ingest import ingest_kinds, last_extract_date
        from .marts import run_marts

        last_day = self.last_day or last_extract_date(ingest_kinds())
        if last_day is None:
            raise RuntimeError(f"no dated extract files in {settings.inbox_dir()}: run the generate stage too")
        self.progress("marts: full nightly build, bare SQL of the heaviest tables, then one more day incrementally")
        out = run_marts(last_day, self.scratch.dbt_target, self.scratch.root / "logs", self.sampler, self.config.repeat)
        stage.details = out
        stage.rows = out.get("table_rows")
        full, incr, bare = out["full"], out["incremental"], out["bare_heaviest"]
        stage.measurements += [
            Measurement("dbt build --full-refresh (nightly dbt steps)", out["full_dbt_build_s"], out["table_rows"]),
            Measurement("full nightly run", full["seconds"], peak=_peak(full), cpu_s=full["cpu_s"]),
            Measurement(
                f"bare SQL of the {len(bare['models'])} heaviest marts",
                bare["total_s"],
                sum(m["rows"] for m in bare["models"]),
                peak=_peak(bare),
                note=f"best of {bare['repeat']}",
            ),
            Measurement(
                "dbt build, one more day (nightly dbt steps)", out["incremental_dbt_build_s"], incr["rows_loaded"]
            ),
            Measurement(
                "incremental nightly run", incr["seconds"], incr["rows_loaded"], _peak(incr), cpu_s=incr["cpu_s"]
            ),
        ]
        scale = f"{self.config.customers:,} customers x {self.config.days} days"
        self.targets.append(
            Target(
                "incremental dbt build / full dbt build",
                out["incremental_over_full"],
                "<",
                INCREMENTAL_RATIO_TARGET,
                scale,
            )
        )
        self.targets.append(
            Target(
                "full dbt build / bare SQL of heaviest three", out["full_over_bare"], "<=", FULL_OVER_BARE_TARGET, scale
            )
        )

    # -- clv, churn ------------------------------------------------------------------------------
    def clv(self, stage: StageResult) -> None:
        from .clv import clv_benchmark

        n = self.config.clv_customers
        self.progress(f"clv: simulate, fit and score {n:,} customers")
        out = clv_benchmark(n, lifetimes_customers=self.config.lifetimes_customers or None)
        stage.details = out
        stage.rows = n
        score = out["score_customers"]
        stage.measurements.append(Measurement("summarise + fit + score (warehouse path)", score["seconds"], n))
        stage.measurements.append(
            Measurement(
                "BG/NBD + Gamma-Gamma fit on every customer",
                out["full_fit"]["bgnbd_s"] + out["full_fit"]["gamma_gamma_s"],
                n,
            )
        )
        lib = out.get("lifetimes") or {}
        if lib.get("available") and "lifetimes" in lib:
            m = lib["n_customers"]
            stage.measurements.append(
                Measurement("ours: fit + predict", lib["ours"]["fit_s"] + lib["ours"]["predict_365d_s"], m)
            )
            stage.measurements.append(Measurement("lifetimes: fit + predict", lib["lifetimes"]["fit_and_predict_s"], m))
        self.targets.append(
            Target(
                "clv fit + score seconds", round(score["seconds"], 2), "<", CLV_SCORE_TARGET_SECONDS, f"{n:,} customers"
            )
        )

    def churn(self, stage: StageResult) -> None:
        from .churn import SCORE_TARGET_SECONDS, TRAIN_TARGET_SECONDS, churn_benchmark

        c = self.config
        self.progress(f"churn: train on {c.churn_train_rows:,} feature rows, score {c.churn_score_rows:,}")
        out = churn_benchmark(c.churn_train_rows, c.churn_score_rows)
        stage.details = out
        stage.rows = out["train"]["train_rows"]
        stage.measurements.append(
            Measurement("train (both candidates, calibration)", out["train"]["seconds"], out["train"]["train_rows"])
        )
        stage.measurements.append(Measurement("score in memory", out["score"]["seconds"], out["score"]["rows"]))
        streamed = out["score_streamed"]
        stage.measurements.append(
            Measurement(
                "score streamed (incl. generating rows)", streamed["seconds_including_generation"], streamed["rows"]
            )
        )
        self.targets.append(
            Target(
                "churn training seconds",
                out["train"]["seconds"],
                "<",
                TRAIN_TARGET_SECONDS,
                f"{out['train']['train_rows']:,} training rows",
            )
        )
        self.targets.append(
            Target(
                "churn scoring seconds",
                out["score"]["seconds"],
                "<",
                SCORE_TARGET_SECONDS,
                f"{out['score']['rows']:,} rows",
            )
        )


def _generated_rows(path: Path) -> dict[str, int] | None:
    """Rows per kind from the generator's record of an earlier run in this work folder, if any."""
    try:
        return {k: int(v) for k, v in json.loads(path.read_text(encoding="utf-8"))["rows"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _peak(d: dict[str, Any]) -> PeakRss:
    return PeakRss(
        d.get("peak_rss_mb"), d.get("peak_rss_self_mb"), d.get("peak_rss_children_mb"), d.get("rss_samples", 0)
    )


def _max_peak(a: PeakRss, b: PeakRss) -> PeakRss:
    """The higher of two peaks, field by field (memory: the worst attempt counts)."""

    def hi(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else max(x, y)

    return PeakRss(
        hi(a.tree_mb, b.tree_mb), hi(a.self_mb, b.self_mb), hi(a.children_mb, b.children_mb), a.samples + b.samples
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b > 0 else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def run_benchmark(config: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the selected stages in order; stop at the first failure. Returns the report (JSON-ready)."""
    say = progress or (lambda message: log.info("%s", message))
    started_at = datetime.now()
    scratch = open_scratch(config.workdir)
    report: dict[str, Any] = {
        "benchmark": "crm-warehouse bench",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine(),
        "arguments": {
            "customers": config.customers,
            "days": config.days,
            "seed": config.seed,
            "stages": list(config.stages),
            "repeat": config.repeat,
            "clv_customers": config.clv_customers,
            "lifetimes_customers": config.lifetimes_customers,
            "churn_train_rows": config.churn_train_rows,
            "churn_score_rows": config.churn_score_rows,
        },
        "scratch": {"path": str(scratch.root), "kept": config.keep},
    }
    results = [StageResult(name) for name in STAGES if name in config.stages]
    bench: _Bench | None = None
    try:
        with RssSampler() as sampler, scratch_environment(scratch):
            bench = _Bench(config, scratch, sampler, say)
            failed = False
            for stage in results:
                if failed:
                    continue
                say(f"{stage.name}: started")
                with sampler.scope() as peak:
                    stage.peak = peak
                    t0, cpu0 = time.perf_counter(), cpu_seconds()
                    try:
                        getattr(bench, stage.name)(stage)
                        stage.status = "ok"
                    except Exception as exc:  # noqa: BLE001 - reported in the table and JSON, exit code 1
                        stage.status = "failed"
                        stage.error = f"{type(exc).__name__}: {exc}"
                        stage.details.setdefault("traceback", traceback.format_exc())
                        log.exception("stage %s failed", stage.name)
                        failed = True
                    stage.seconds = time.perf_counter() - t0
                    stage.cpu_s = cpu_seconds() - cpu0
                say(f"{stage.name}: {stage.status} in {stage.seconds:.1f}s")
    finally:
        close_scratch(scratch, remove=not config.keep)
    report["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    report["finished_at"] = datetime.now().isoformat(timespec="seconds")
    report["stages"] = [r.as_dict() for r in results]
    report["targets"] = [t.as_dict() for t in (bench.targets if bench else [])]
    report["success"] = all(r.status == "ok" for r in results)
    report["scratch"]["removed"] = not scratch.root.exists()
    return report
