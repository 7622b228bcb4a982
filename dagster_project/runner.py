"""Run the nightly job in this process (no daemon) and summarise what it did.

Used by `crm-warehouse run` and `crm-warehouse bench`. The run is recorded in the project's
Dagster instance (DAGSTER_HOME), so it shows up in `dagster dev` next to scheduled runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from . import settings

log = logging.getLogger(__name__)

MANAGED_MARKER = "# Managed by crm-warehouse: rewritten on upgrade. Delete this line to keep your own edits."
DAGSTER_YAML = f"""\
{MANAGED_MARKER}
# Project-local Dagster instance (DAGSTER_HOME): run history, schedules, sensors.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1   # DuckDB takes one writing process at a time
  pools:
    default_limit: 1         # and within a run, one writing step at a time
run_retries:
  enabled: true              # jobs opt in with the dagster/max_retries tag (nightly: 2)
"""


@dataclass
class StepTiming:
    name: str
    started: float
    finished: float | None = None
    status: str = "running"
    is_check: bool = False

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    as_of_date: date | None
    steps: list[StepTiming] = field(default_factory=list)
    materialized: list[str] = field(default_factory=list)
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    checks_passed: int = 0
    failure: str | None = None
    duration_s: float = 0.0
    log_path: Path | None = None
    reports: list[str] = field(default_factory=list)


def prepare_instance() -> Path:
    """Point DAGSTER_HOME at the project folder (unless set) and give it a dagster.yaml."""
    home = settings.dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text(encoding="utf-8").startswith(MANAGED_MARKER):
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    return home


Event = Callable[[str, str, dict], None]


def run_nightly(
    as_of_date: date | None = None,
    full_refresh: bool = False,
    on_event: Event | None = None,
    tags: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> RunOutcome:
    """Execute the `nightly` job in-process. `on_event(kind, name, info)` sees progress as it happens.

    With `log_path`, whatever the steps print (dbt's own log lines) goes to that file instead of
    this process's stdout; `on_event` callbacks still run and can write to the terminal.
    """
    prepare_instance()
    from .defs.dbt.project import ensure_manifest

    ensure_manifest()
    import dagster as dg

    from .definitions import defs

    steps: dict[str, StepTiming] = {}
    outcome = RunOutcome(run_id="", success=False, as_of_date=as_of_date)
    emit = on_event or (lambda kind, name, info: None)

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
            meta = getattr(record, "dagster_meta", None) or {}
            event = meta.get("dagster_event")
            if event is None:
                return
            kind = event.event_type_value
            step = event.step_key
            now = record.created
            if kind == "STEP_START" and step:
                steps[step] = StepTiming(step, now, is_check=step in check_steps)
                outcome.steps.append(steps[step])
                if step not in check_steps:
                    emit("step_start", step, {})
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and step in steps:
                steps[step].finished = now
                steps[step].status = "ok" if kind == "STEP_SUCCESS" else "failed"
                info = {"seconds": steps[step].seconds}
                if kind == "STEP_FAILURE":
                    info["error"] = _error_text(event)
                    outcome.failure = outcome.failure or f"{step}: {info['error']}"
                if step not in check_steps or kind == "STEP_FAILURE":
                    emit("step_end", step, info)
            elif kind == "ASSET_MATERIALIZATION":
                key = event.asset_key.to_user_string()
                outcome.materialized.append(key)
                emit("materialized", key, {"metadata": _plain_metadata(event)})
            elif kind == "ASSET_CHECK_EVALUATION":
                evaluation = event.event_specific_data
                name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                report = (evaluation.metadata or {}).get("report")
                if report is not None and str(report.value) not in outcome.reports:
                    outcome.reports.append(str(report.value))
                if evaluation.passed:
                    outcome.checks_passed += 1
                elif evaluation.severity == dg.AssetCheckSeverity.WARN:
                    outcome.checks_warned.append(name)
                else:
                    outcome.checks_failed.append(name)
                emit("check", name, {"passed": evaluation.passed, "severity": evaluation.severity.value})

    @dg.logger
    def progress_logger(_init_context):
        logger = logging.Logger("crm_progress", level=logging.DEBUG)
        logger.addHandler(_Handler())
        return logger

    run_config: dict = {
        # the progress logger reports; Dagster's own console logger only speaks up for warnings
        "loggers": {"progress": {}, "console": {"config": {"log_level": "WARNING"}}},
        "resources": {
            "run_settings": {
                "config": {
                    "as_of_date": as_of_date.isoformat() if as_of_date else None,
                    "full_refresh": full_refresh,
                }
            }
        },
    }
    job = defs.resolve_job_def("nightly")
    check_steps = {check.node_def.name for check in (defs.asset_checks or [])}
    job = job.with_logger_defs({**job.loggers, "progress": progress_logger})
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(log_path.open("w", encoding="utf-8"))))
            outcome.log_path = log_path
        instance = stack.enter_context(dg.DagsterInstance.get())
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            raise_on_error=False,
            tags={"crm/trigger": "cli", **(tags or {})},
        )
    outcome.run_id = result.run_id
    outcome.success = result.success
    outcome.duration_s = time.perf_counter() - t0
    if not result.success and outcome.failure is None:
        outcome.failure = "the run failed; see the Dagster run log for details"
    return outcome


def _error_text(event) -> str:
    data = event.event_specific_data
    error = getattr(data, "error", None)
    if error is None:
        return "failed"
    cause = error
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause
    lines = [line.strip() for line in (cause.message or error.message or "failed").strip().splitlines() if line.strip()]
    return " ".join(lines[:4])


def _plain_metadata(event) -> dict:
    out = {}
    for key, value in (event.event_specific_data.materialization.metadata or {}).items():
        raw = getattr(value, "value", value)
        if isinstance(raw, (int, float, str)):
            out[key] = raw
    return out
