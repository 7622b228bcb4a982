"""Sensors: start the nightly job when new extract files arrive; alert on runs that fail outside ops.

`inbox_sensor` (every CRM_INBOX_SENSOR_INTERVAL seconds, default 60) lists the inbox exactly as
ingestion does and requests a `nightly` run for the files ingestion would load, with a run key
derived from their content: sha256 of the sorted (kind, path, content sha256). The same files give
the same key, and Dagster never starts two runs for one key of a sensor, so a re-scan never starts
a duplicate run; the cursor also remembers the last key and the hashes of pending files.

It never opens the warehouse read-write. While a nightly run is queued or running it does not open
the warehouse at all and keeps its cursor (that run scans the inbox itself; what it leaves is
requested once it has finished). Otherwise it reads `ods.load_log` read-only; if another process
holds the file (e.g. `crm-warehouse publish`), it skips the tick and keeps its cursor. It waits until
the newest new file is CRM_INBOX_QUIET_SECONDS old (default 120) so a delivery of several files
starts one run.

`run_failure_alerts` records an alert (alerts.py) for every failed run of this code location that
the op failure hook has not already reported, e.g. a run whose worker died.
"""

import json
import os
import time

import dagster as dg

from ... import settings
from ..ingest.assets import INGEST_KINDS
from .alerts import Alert, alerted_runs, record_alert, truncate_error
from .hooks import RETRY_NUMBER_TAG
from .inbox import PendingFile, WarehouseBusy, list_inbox, pending_files, read_warehouse, run_key
from .schedules import NIGHTLY_JOB

# A nightly run in any of these states will (still) scan the inbox, or is scanning it right now.
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def sensor_interval() -> int:
    return int(os.environ.get("CRM_INBOX_SENSOR_INTERVAL", "60"))


def quiet_seconds() -> float:
    return float(os.environ.get("CRM_INBOX_QUIET_SECONDS", "120"))


def _read_cursor(raw: str | None) -> tuple[str | None, dict[tuple[str, str, int, int], str]]:
    if not raw:
        return None, {}
    try:
        data = json.loads(raw)
        hashes = {(k, r, int(s), int(m)): h for k, r, s, m, h in data.get("hashes", [])}
        return data.get("last_key"), hashes
    except (ValueError, TypeError):
        return None, {}


def _cursor(last_key: str | None, pending: list[PendingFile]) -> str:
    return json.dumps(
        {"last_key": last_key, "hashes": [[p.kind, p.rel, p.size, p.mtime_ns, p.sha256] for p in pending]},
        separators=(",", ":"),
    )


def _describe(pending: list[PendingFile], limit: int = 5) -> str:
    names = [p.rel for p in pending[:limit]]
    more = f" and {len(pending) - limit} more" if len(pending) > limit else ""
    return ", ".join(names) + more


@dg.sensor(
    name="inbox_sensor",
    job_name=NIGHTLY_JOB,
    minimum_interval_seconds=sensor_interval(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a nightly run when new extract files arrive in the inbox (one run per set of files).",
)
def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    last_key, known_hashes = _read_cursor(context.cursor)
    # First the run history: while a nightly run is queued or running, the warehouse is not opened at
    # all (a reader, even read-only, would stop that run from taking its write lock for that moment).
    active = context.instance.get_runs(dg.RunsFilter(job_name=NIGHTLY_JOB, statuses=ACTIVE_STATUSES), limit=1)
    if active:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"nightly run {active[0].run_id} is {active[0].status.value.lower()}; "
                "the inbox is checked again when it has finished"
            ),
            cursor=context.cursor,
        )
    files, problems = list_inbox(settings.inbox_dir(), settings.sources_dir(), INGEST_KINDS)
    for problem in problems:
        context.log.warning(problem)
    try:
        view = read_warehouse(settings.warehouse_path())
    except WarehouseBusy as exc:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"the warehouse is being written; the inbox is checked again later ({exc})"),
            cursor=context.cursor,
        )
    pending = pending_files(files, view, known_hashes)
    if not pending:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new extract files"), cursor=_cursor(last_key, []))
    newest_age = time.time() - max(p.mtime_ns for p in pending) / 1e9
    if newest_age < quiet_seconds():
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{len(pending)} new file(s), the newest only {newest_age:.0f}s old; waiting for the delivery to finish"
            ),
            cursor=_cursor(last_key, pending),
        )
    key = run_key(pending)
    if key == last_key:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"a run was already requested for these {len(pending)} file(s) ({key})"),
            cursor=_cursor(last_key, pending),
        )
    context.log.info(f"requesting a nightly run for {len(pending)} new file(s): {_describe(pending)}")
    request = dg.RunRequest(
        run_key=key,
        tags={"crm/trigger": "inbox_sensor", "crm/new_files": str(len(pending))},
    )
    return dg.SensorResult(run_requests=[request], cursor=_cursor(key, pending))


def _event_error(event: dg.DagsterEvent) -> str:
    """The error of a failure event with its causes (the event message alone only says which step)."""
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return event.message or "the run failed"
    parts = [f"{event.step_key or 'run'}: {error.message.strip()}"]
    cause = error.cause
    while cause is not None:
        parts.append(f"caused by: {cause.message.strip()}")
        cause = cause.cause
    return "\n".join(parts)


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records an alert for failed runs the op failure hook did not report (e.g. the run worker died).",
)
def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    if run.run_id in alerted_runs():
        context.log.info(f"run {run.run_id} already alerted by its failure hook")
        return
    steps = context.get_step_failure_events()
    step = steps[0].step_key if steps else None
    messages = [_event_error(e) for e in steps] or [_event_error(context.failure_event)]
    record_alert(
        Alert(
            run_id=run.run_id,
            job=run.job_name,
            step=step,
            error=truncate_error("\n".join(messages)),
            source="run_failure_sensor",
            attempt=int(run.tags.get(RETRY_NUMBER_TAG, 0)),
        )
    )
