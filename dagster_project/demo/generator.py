"""`generate(config)`: simulate the period day by day and write the extracts and the ground truth.

The simulation runs on the calling thread; one writer thread renders and writes each day's
four files in day order while the next day is simulated. Random streams are separate for the
population, the simulation and each file's defects, so `--dirty-rate`, `--encoding` and
`--gzip` change how the same rows are written, never which rows there are.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dagster_project.demo import render
from dagster_project.demo.config import GenerationSummary, GeneratorConfig
from dagster_project.demo.population import Population, draw_population
from dagster_project.demo.simulation import BURN_IN_DAYS, DayEvents, Simulation
from dagster_project.demo.truth import (
    HORIZON,
    DefectLog,
    SnapshotTracker,
    write_customers_truth,
)
from dagster_project.demo.writer import WrittenFile, extract_path, write_extract
from dagster_project.extracts import spec

log = logging.getLogger(__name__)

KINDS = spec.SOURCE_KINDS
_DIRTY_STREAM = 0xD17
_MAX_QUEUED_DAYS = 3


def existing_extracts(out_dir: Path) -> list[Path]:
    """`<kind>_YYYYMMDD.csv[.gz]` files (and leftovers of a crash) in the kind folders of `out_dir`."""
    found: list[Path] = []
    for kind in KINDS:
        folder = out_dir / kind
        if not folder.is_dir():
            continue
        pattern = re.compile(rf"^\.?{kind}_\d{{8}}\.csv(\.gz)?(\.tmp)?$")
        found += [p for p in sorted(folder.iterdir()) if p.is_file() and pattern.match(p.name)]
    return found


def remove_stale_extracts(out_dir: Path) -> int:
    """Delete the extract files of an earlier run; other files are left alone."""
    stale = existing_extracts(out_dir)
    for path in stale:
        path.unlink()
    return len(stale)


def generation_arguments(config: GeneratorConfig) -> dict:
    """The arguments that determine the output; recorded in generation.json."""
    return {
        "customers": config.customers,
        "days": config.days,
        "seed": config.seed,
        "end_date": config.end_date.isoformat(),
        "dirty_rate": config.dirty_rate,
        "encoding": config.encoding,
        "gzip": config.gzip,
    }


def is_up_to_date(config: GeneratorConfig) -> bool:
    """True when `out_dir` already holds exactly the files this configuration would write."""
    record_path = Path(config.truth_dir) / "generation.json"
    if not record_path.exists():
        return False
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        record.get("arguments") == generation_arguments(config)
        and Path(record.get("out_dir", "")).resolve() == Path(config.out_dir).resolve()
        and len(existing_extracts(Path(config.out_dir))) == record.get("files")
    )


class _DayWriter:
    """Renders and writes each day's files on one background thread, in day order."""

    def __init__(
        self, config: GeneratorConfig, strings: render.Strings, pop: Population, defects: DefectLog
    ) -> None:
        self.config = config
        self.defects = defects
        self.strings = strings
        self.signup_day = pop.signup_day
        self.is_business = pop.is_business
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-writer")
        self.futures: list[Future[list[WrittenFile]]] = []
        self.written: list[WrittenFile] = []

    def submit(self, events: DayEvents) -> None:
        self.futures.append(self.pool.submit(self._write_day, events))
        while len(self.futures) > _MAX_QUEUED_DAYS:
            self.written.extend(self.futures.pop(0).result())

    def close(self, wait_for_pending: bool = True) -> list[WrittenFile]:
        """Wait for the queued days (raising the first writer error), then stop the thread."""
        try:
            if wait_for_pending:
                for f in self.futures:
                    self.written.extend(f.result())
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return self.written

    def _write_day(self, ev: DayEvents) -> list[WrittenFile]:
        s = self.strings
        day = s.date(ev.day)
        columns = {
            "customers": lambda: render.render_customers(
                ev.customers, s, ev.day, self.signup_day, self.is_business
            ),
            "transactions": lambda: render.render_transactions(ev.transactions, s, ev.day),
            "calls": lambda: render.render_calls(ev.calls, s, ev.day),
            "complaints": lambda: render.render_complaints(ev.complaints, s, ev.day),
        }
        out: list[WrittenFile] = []
        for k, kind in enumerate(KINDS):
            path = extract_path(self.config.out_dir, kind, day, self.config.gzip)
            rng = np.random.default_rng([self.config.seed, _DIRTY_STREAM, k, ev.day])
            out.append(
                write_extract(
                    path,
                    path.relative_to(self.config.out_dir).as_posix(),
                    kind,
                    columns[kind](),
                    encoding=self.config.encoding,
                    compress=self.config.gzip,
                    dirty_rate=self.config.dirty_rate,
                    rng=rng,
                )
            )
            self.defects.add(out[-1].defects)
            out[-1].defects = []  # recorded; do not keep millions of them in memory
        return out


def generate(config: GeneratorConfig) -> GenerationSummary:
    """Write the demo extracts for `config` into `out_dir` and the ground truth into `truth_dir`."""
    started = time.perf_counter()
    out_dir, truth_dir = config.out_dir, config.truth_dir
    if out_dir.resolve() == truth_dir.resolve() or truth_dir.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError(f"the truth folder {truth_dir} must lie outside the extract folder {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_stale_extracts(out_dir) if config.replace_existing else 0
    for kind in KINDS:
        (out_dir / kind).mkdir(exist_ok=True)

    population_seed, simulation_seed = np.random.SeedSequence(config.seed).spawn(2)
    start = np.datetime64(config.start_date)
    pop = draw_population(np.random.default_rng(population_seed), config.customers, config.days, start)
    sim = Simulation(pop, np.random.default_rng(simulation_seed), start, config.days)
    first_day = min(int(pop.signup_day.min()), -BURN_IN_DAYS)
    strings = render.Strings(config.start_date, first_day, config.days + HORIZON)
    tracker = SnapshotTracker(
        truth_dir / "churn_truth_snapshots.csv", config.start_date, config.days, strings
    )
    defect_log = DefectLog(truth_dir / "defects.csv")
    writer = _DayWriter(config, strings, pop, defect_log)
    alive_days = 0
    try:
        for d in range(-BURN_IN_DAYS, config.days):
            events = sim.step(d)
            if events is None:
                continue
            alive_days += int(np.count_nonzero(sim.alive[: sim.n_active]))
            tracker.observe(sim, d, events.consumers)
            writer.submit(events)
            if d % 30 == 29:
                log.info("simulated %s of %s days", d + 1, config.days)
    except BaseException:
        tracker.discard()
        writer.close(wait_for_pending=False)
        defect_log.close()
        raise
    written = writer.close()
    defect_log.close()
    tracker.close(sim)

    rows = Counter[str]()
    for w in written:
        rows[w.path.parent.name] += w.rows
    churned = sim.churn_mode > 0
    summary = GenerationSummary(
        out_dir=out_dir,
        truth_dir=truth_dir,
        start_date=config.start_date,
        end_date=config.end_date,
        files=len(written),
        rows={k: rows[k] for k in KINDS},
        bytes_written=sum(w.size for w in written),
        defects=dict(sorted(defect_log.counts.items())),
        customers_initial=pop.n_initial,
        customers_new=pop.n - pop.n_initial,
        churned_closed=int(np.count_nonzero(sim.churn_mode == 1)),
        churned_silent=int(np.count_nonzero(sim.churn_mode == 2)),
        annual_churn_rate=round(float(churned.sum()) / max(alive_days / 365.0, 1.0), 4),
        snapshot_rows=tracker.rows,
        removed_stale_files=removed,
    )
    write_customers_truth(truth_dir / "customers_truth.csv", sim, strings)
    record = summary.to_dict()
    record.pop("elapsed_seconds")
    record.pop("removed_stale_files")
    record["arguments"] = generation_arguments(config)
    (truth_dir / "generation.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    summary.elapsed_seconds = round(time.perf_counter() - started, 2)
    log.info("demo data written in %.1f s: %s", summary.elapsed_seconds, summary.rows)
    return summary
