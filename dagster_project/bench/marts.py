"""The marts stage: the nightly job's dbt build, full and incremental, against bare DuckDB SQL.

The generator cannot extend a period (its population depends on the number of days), so the
"one new day" is the last generated day: the ingest stage loads the extracts through the day
before it (the loader's `through`, as the nightly job does for `--as-of`), then

1. Full build: `run_nightly(as_of_date=<day before last>, full_refresh=True)`: the ingestion steps
   find nothing new, the dbt steps run `dbt build --full-refresh` with the project's profile. The
   summed time of the dbt steps (the project builds dbt in layers around Python assets) is the
   full build time.
2. Bare SQL: the three models materialized as tables with the longest execution time in that
   run's `run_results.json` files, their compiled SQL (`compiled/` of the same target folders)
   run directly as `create table ... as` in DuckDB against the same warehouse, best of `repeat`.
   Reported: full build time / summed bare time (issue target: at most 3x).
3. Incremental: `run_nightly(as_of_date=<last day>)`, as every night: ingests the new day's files,
   `dbt build` without --full-refresh. Reported: its dbt time / the full build's (target: below
   0.25), and the whole run's time over the full run's.

dbt writes into `<scratch>/dbt_target` (DBT_TARGET_PATH), never into the project's target folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .. import settings
from ..extracts import ods
from ..extracts.sql import ident
from .cpu import cpu_seconds
from .memory import PeakRss, RssSampler

log = logging.getLogger(__name__)

TABLE_MATERIALIZATIONS = ("table", "incremental")
MARTS_FOLDER = "models/marts/"
BARE_SCHEMA = "bench_bare"
HEAVIEST = 3


class MartsBenchError(RuntimeError):
    """The marts stage cannot run or a run failed; the message says which and why."""


@dataclass
class NightlyRun:
    """What one `run_nightly` call did, from its events."""

    run_id: str
    success: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    step_peaks: dict[str, PeakRss] = field(default_factory=dict)
    rows_loaded: int = 0
    failure: str | None = None
    checks_failed: list[str] = field(default_factory=list)
    peak: PeakRss | None = None
    cpu_s: float | None = None
    log_path: str | None = None
    log_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "success": self.success,
            "seconds": round(self.seconds, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "steps_s": {k: round(v, 3) for k, v in self.steps.items()},
            "steps_peak_rss_mb": {k: p.as_dict()["peak_rss_mb"] for k, p in self.step_peaks.items()},
            "rows_loaded": self.rows_loaded,
            "failure": self.failure,
            "checks_failed": self.checks_failed,
            "log": self.log_path,
            "log_errors": self.log_errors,
            **(self.peak.as_dict() if self.peak else {}),
        }


def _nightly(as_of: date, full_refresh: bool, sampler: RssSampler, log_path: Path) -> NightlyRun:
    from ..runner import run_nightly

    steps: dict[str, float] = {}
    step_peaks: dict[str, PeakRss] = {}
    rows = {"loaded": 0}

    def on_event(kind: str, name: str, info: dict) -> None:
        if kind == "step_start":
            step_peaks[name] = sampler.open_scope()  # the in-process executor runs one step at a time
        elif kind == "step_end":
            steps[name] = float(info["seconds"])
            if name in step_peaks:
                sampler.close_scope(step_peaks[name])
        elif kind == "materialized":
            rows["loaded"] += int(info.get("metadata", {}).get("rows_loaded", 0) or 0)

    with sampler.scope() as peak:
        cpu = cpu_seconds()
        # dbt's own output goes to the log file, never to this process's stdout (which may carry the JSON).
        outcome = run_nightly(
            as_of_date=as_of,
            full_refresh=full_refresh,
            on_event=on_event,
            tags={"crm/trigger": "bench"},
            log_path=log_path,
        )
        cpu = cpu_seconds() - cpu
        for step_peak in step_peaks.values():  # a step that never reported its end
            sampler.close_scope(step_peak)
    return NightlyRun(
        run_id=outcome.run_id,
        success=outcome.success,
        seconds=outcome.duration_s,
        steps=steps,
        step_peaks=step_peaks,
        rows_loaded=rows["loaded"],
        failure=outcome.failure,
        checks_failed=list(outcome.checks_failed),
        peak=peak,
        cpu_s=cpu,
        log_path=str(log_path),
        log_errors=[] if outcome.success else _error_lines(log_path),
    )


def _error_lines(log_path: Path, limit: int = 12) -> list[str]:
    """dbt's error lines from a failed run's log (the scratch folder may be deleted afterwards)."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    hits = [line.strip() for line in lines if "error" in line.lower() and line.strip()]
    return hits[-limit:]


def dbt_step_names() -> list[str]:
    """The ops of the job that run `dbt build` (one per dbt layer)."""
    from ..defs.dbt import assets

    layers = getattr(assets, "dbt_layers", None) or [assets.dbt_models]
    return [layer.op.name for layer in layers]


def _targets_of(run_id: str, dbt_target: Path, steps: list[str]) -> list[Path]:
    """The target folders dagster-dbt made for this run's dbt steps (`<op>-<run id[:7]>-<uuid>`)."""
    found = []
    for step in steps:
        found += [p for p in dbt_target.glob(f"{step}-{run_id[:7]}-*") if (p / "run_results.json").exists()]
    if not found:
        raise MartsBenchError(f"no run_results.json for run {run_id} under {dbt_target}")
    return found


@dataclass(frozen=True)
class BuiltModel:
    unique_id: str
    path: str
    name: str
    relation: str
    materialized: str
    execution_s: float
    compiled_path: Path


def built_tables(targets: list[Path]) -> list[BuiltModel]:
    """Models materialized as tables in these builds, slowest first (run_results.json + manifest.json)."""
    out = []
    for target in targets:
        out += _built_tables(target)
    return sorted(out, key=lambda m: m.execution_s, reverse=True)


def _built_tables(target: Path) -> list[BuiltModel]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    out = []
    for r in results:
        node = nodes.get(r["unique_id"])
        if node is None or node["resource_type"] != "model" or r["status"] != "success":
            continue
        materialized = node["config"].get("materialized")
        if materialized not in TABLE_MATERIALIZATIONS:
            continue
        compiled = target / "compiled" / node["package_name"] / node["original_file_path"]
        out.append(
            BuiltModel(
                unique_id=r["unique_id"],
                path=node["original_file_path"],
                name=node["name"],
                relation=r.get("relation_name") or node.get("relation_name") or "",
                materialized=materialized,
                execution_s=float(r["execution_time"]),
                compiled_path=compiled,
            )
        )
    return out


def bare_sql(models: list[BuiltModel], repeat: int) -> list[dict[str, Any]]:
    """Run each model's compiled SQL as `create table ... as` in the warehouse; best of `repeat`."""
    out = []
    con = ods.connect(settings.warehouse_path())
    try:
        con.execute(f"create schema if not exists {ident(BARE_SCHEMA)}")
        for m in models:
            if not m.compiled_path.exists():
                raise MartsBenchError(f"compiled SQL of {m.unique_id} not found at {m.compiled_path}")
            sql = m.compiled_path.read_text(encoding="utf-8").strip().rstrip(";")
            runs = []
            for _ in range(repeat):
                started = time.perf_counter()
                con.execute(f"create or replace table {ident(BARE_SCHEMA)}.{ident(m.name)} as (\n{sql}\n)")
                runs.append(time.perf_counter() - started)
            rows = int(con.execute(f"select count(*) from {ident(BARE_SCHEMA)}.{ident(m.name)}").fetchone()[0])
            # The same work: the bare query makes as many rows as dbt's table (tests hold it to that).
            dbt_rows = int(con.execute(f"select count(*) from {m.relation}").fetchone()[0]) if m.relation else None
            out.append(
                {
                    "model": m.unique_id,
                    "path": m.path,
                    "materialized": m.materialized,
                    "dbt_execution_s": round(m.execution_s, 3),
                    "bare_s": round(min(runs), 3),
                    "bare_runs_s": [round(s, 3) for s in runs],
                    "rows": rows,
                    "dbt_rows": dbt_rows,
                    "compiled_sql": str(m.compiled_path),
                }
            )
            log.info("bare SQL of %s: %.2fs (dbt %.2fs)", m.name, min(runs), m.execution_s)
    finally:
        con.execute(f"drop schema if exists {ident(BARE_SCHEMA)} cascade")
        con.close()
    return out


def _table_rows(models: list[BuiltModel]) -> int:
    if not models:
        return 0
    con = ods.connect(settings.warehouse_path(), read_only=True)
    try:
        return sum(int(con.execute(f"select count(*) from {m.relation}").fetchone()[0]) for m in models if m.relation)
    finally:
        con.close()


def _loaded_through() -> date | None:
    con = ods.connect(settings.warehouse_path(), read_only=True)
    try:
        row = con.execute("select max(extract_date) from ods.load_log where status = 'loaded'").fetchone()
    finally:
        con.close()
    return row[0] if row else None


def dbt_time_by_resource(targets: list[Path]) -> dict[str, float]:
    """Summed `execution_time` per resource type (model, test, ...) over these builds' run_results.json."""
    totals: dict[str, float] = {}
    for target in targets:
        for r in json.loads((target / "run_results.json").read_text())["results"]:
            kind = r["unique_id"].split(".", 1)[0]
            totals[kind] = totals.get(kind, 0.0) + float(r.get("execution_time") or 0.0)
    return {k: round(v, 3) for k, v in sorted(totals.items())}


def run_marts(last_day: date, dbt_target: Path, log_dir: Path, sampler: RssSampler, repeat: int) -> dict[str, Any]:
    """Full build as of the day before `last_day`, bare SQL of the heaviest three tables, then the
    nightly run of `last_day`; see the module doc."""
    from ..defs.dbt.project import ensure_manifest

    if not settings.warehouse_path().exists():
        raise MartsBenchError(f"no warehouse at {settings.warehouse_path()}: run the ingest stage first")
    loaded = _loaded_through()
    if loaded is None or loaded >= last_day:
        raise MartsBenchError(
            f"the warehouse holds extracts through {loaded}, so {last_day} is no new day: run the ingest stage "
            "together with marts (it then loads through the day before the last)"
        )
    full_as_of = last_day - timedelta(days=1)
    # Refresh the project's manifest first (where the job reads it), then keep this run's dbt output in scratch.
    ensure_manifest()
    os.environ["DBT_TARGET_PATH"] = str(dbt_target)
    steps = dbt_step_names()
    models_dir = Path(settings.dbt_project_dir()) / "models" / "marts"
    out: dict[str, Any] = {
        "marts_models_present": models_dir.is_dir() and any(models_dir.rglob("*.sql")),
        "dbt_steps": steps,
        "full_as_of": full_as_of.isoformat(),
        "incremental_as_of": last_day.isoformat(),
    }

    full = _nightly(full_as_of, full_refresh=True, sampler=sampler, log_path=log_dir / "nightly-full.log")
    out["full"] = full.as_dict()
    if not full.success:
        raise MartsBenchError(f"full nightly run {full.run_id} failed: {full.failure} {' | '.join(full.log_errors)}")
    full_dbt = sum(full.steps.get(s, 0.0) for s in steps)
    if not any(s in full.steps for s in steps):
        raise MartsBenchError(f"full nightly run {full.run_id} ran none of the dbt steps {', '.join(steps)}")
    targets = _targets_of(full.run_id, dbt_target, steps)
    tables = built_tables(targets)
    marts = [m for m in tables if m.path.startswith(MARTS_FOLDER)]
    out["full_dbt_build_s"] = round(full_dbt, 3)
    out["full_dbt_execution_s_by_resource"] = dbt_time_by_resource(targets)
    out["tables_built"] = len(tables)
    out["marts_built"] = len(marts)
    out["table_rows"] = _table_rows(marts)
    out["slowest_tables"] = [
        {"model": m.unique_id, "path": m.path, "dbt_execution_s": round(m.execution_s, 3)} for m in tables[:10]
    ]
    if not marts:
        raise MartsBenchError(f"the full build made no table under dbt/{MARTS_FOLDER}: nothing to compare with")

    heaviest = marts[:HEAVIEST]
    with sampler.scope() as peak:
        bare = bare_sql(heaviest, repeat)
    bare_total = sum(b["bare_s"] for b in bare)
    out["bare_heaviest"] = {"models": bare, "total_s": round(bare_total, 3), "repeat": repeat, **peak.as_dict()}
    out["full_over_bare"] = round(full_dbt / bare_total, 3) if bare_total > 0 else None

    incremental = _nightly(last_day, full_refresh=False, sampler=sampler, log_path=log_dir / "nightly-incremental.log")
    out["incremental"] = incremental.as_dict()
    if not incremental.success:
        raise MartsBenchError(
            f"incremental nightly run {incremental.run_id} failed: {incremental.failure} {' | '.join(incremental.log_errors)}"
        )
    incr_dbt = sum(incremental.steps.get(s, 0.0) for s in steps)
    incr_targets = _targets_of(incremental.run_id, dbt_target, steps)
    out["incremental_dbt_execution_s_by_resource"] = dbt_time_by_resource(incr_targets)
    out["incremental_slowest_tables"] = [
        {"model": m.unique_id, "materialized": m.materialized, "dbt_execution_s": round(m.execution_s, 3)}
        for m in built_tables(incr_targets)[:10]
    ]
    out["incremental_dbt_build_s"] = round(incr_dbt, 3)
    out["incremental_over_full"] = round(incr_dbt / full_dbt, 4) if full_dbt > 0 else None
    out["incremental_run_over_full_run"] = round(incremental.seconds / full.seconds, 4) if full.seconds > 0 else None
    return out
