"""Freshness checks (severity WARN): stale published marts, and yesterday's extract missing from the inbox.

- `publish/marts: published_recently`: the newest of the published file's `_published.published_at`
  and the asset's last materialization is at most `CRM_FRESHNESS_MAX_AGE_HOURS` (default 26) old.
- `ods/<kind>: inbox_has_yesterdays_file` (source kinds): by the time of the latest nightly schedule
  tick, a file of that kind whose extract date is the day before that tick (or later) has arrived in
  the inbox or been loaded.

They run in every nightly run (after publish / ingestion) and, on their own, in the `freshness` job
on the `freshness_hourly` schedule below, so a night that never ran is noticed too.
"""

import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg

# Dagster's own cron arithmetic, so "the latest tick" means exactly what the scheduler means.
from dagster._utils.schedules import get_latest_completed_cron_tick

from ... import settings
from ...extracts.spec import SOURCE_KINDS
from ..resources import WAREHOUSE_POOL, Warehouse
from .assets import PUBLISH_KEY
from .inbox import list_inbox
from .publish import published_info
from .schedules import nightly_cron, nightly_timezone


def max_age() -> timedelta:
    return timedelta(hours=float(os.environ.get("CRM_FRESHNESS_MAX_AGE_HOURS", "26")))


def expected_extract_date(now: datetime, cron: str | None = None, tz: str | None = None) -> date:
    """The extract date that must have arrived by `now`: the day before the latest nightly tick."""
    tz = tz or nightly_timezone()
    tick = get_latest_completed_cron_tick(cron or nightly_cron(), now, tz)
    return tick.date() - timedelta(days=1)


def _age_text(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h"


@dg.asset_check(
    asset=PUBLISH_KEY,
    name="published_recently",
    description="The marts analysts query were published within the last 26 hours (CRM_FRESHNESS_MAX_AGE_HOURS).",
)
def published_recently(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    now = datetime.now(UTC)
    info = published_info(settings.published_path())
    candidates: list[datetime] = []
    if info is not None:
        candidates.append(info.published_at.astimezone(UTC))
    event = context.instance.get_latest_materialization_event(PUBLISH_KEY)
    if event is not None:
        candidates.append(datetime.fromtimestamp(event.timestamp, UTC))
    limit = max_age()
    meta: dict[str, dg.MetadataValue] = {
        "published_path": dg.MetadataValue.path(str(settings.published_path())),
        "max_age_hours": dg.MetadataValue.float(limit.total_seconds() / 3600),
    }
    if not candidates:
        meta["problem"] = dg.MetadataValue.text("the marts have never been published")
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=meta)
    newest = max(candidates)
    age = now - newest
    meta["last_published_at"] = dg.MetadataValue.text(newest.astimezone().isoformat(timespec="seconds"))
    meta["age_hours"] = dg.MetadataValue.float(round(age.total_seconds() / 3600, 2))
    if info is not None:
        meta["as_of_date"] = dg.MetadataValue.text(str(info.as_of_date or "unknown"))
    if age > limit:
        meta["problem"] = dg.MetadataValue.text(
            f"the published marts are {_age_text(age)} old (limit {_age_text(limit)}); see docs/operations.md"
        )
    return dg.AssetCheckResult(passed=age <= limit, severity=dg.AssetCheckSeverity.WARN, metadata=meta)


def newest_loaded_extract_date(warehouse: Warehouse, kind: str) -> date | None:
    if not warehouse.resolved_path().exists():
        return None
    with warehouse.connect(read_only=True) as con:
        has_log = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'ods' and table_name = 'load_log'"
        ).fetchone()[0]
        if not has_log:
            return None
        row = con.execute(
            "select max(extract_date) from ods.load_log where kind = ? and status = 'loaded'", [kind]
        ).fetchone()
    return row[0] if row else None


def build_inbox_check(kind: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["ods", kind]),
        name="inbox_has_yesterdays_file",
        pool=WAREHOUSE_POOL,
        description=(
            f"A {kind} file for the day before the latest nightly schedule tick has arrived (in the inbox or loaded)."
        ),
    )
    def _inbox_fresh(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        expected = expected_extract_date(datetime.now(UTC))
        files, problems = list_inbox(settings.inbox_dir(), settings.sources_dir(), [kind])
        in_inbox = max((f.extract_date for f in files if f.extract_date), default=None)
        loaded = newest_loaded_extract_date(warehouse, kind)
        newest = max((d for d in (in_inbox, loaded) if d), default=None)
        passed = newest is not None and newest >= expected
        meta = {
            "expected_extract_date": dg.MetadataValue.text(expected.isoformat()),
            "newest_in_inbox": dg.MetadataValue.text(in_inbox.isoformat() if in_inbox else "none"),
            "newest_loaded": dg.MetadataValue.text(loaded.isoformat() if loaded else "none"),
            "inbox": dg.MetadataValue.path(str(settings.inbox_dir())),
        }
        if problems:
            meta["mapping_problems"] = dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))
        if not passed:
            context.log.warning(f"{kind}: no extract file dated {expected} or later yet (newest: {newest or 'none'})")
        return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata=meta)

    return _inbox_fresh


freshness_checks: list[dg.AssetChecksDefinition] = [published_recently] + [
    build_inbox_check(kind) for kind in SOURCE_KINDS
]


def freshness_cron() -> str:
    """When the freshness job runs (`CRM_FRESHNESS_CRON`, default: every hour at :30), in the nightly timezone."""
    return os.environ.get("CRM_FRESHNESS_CRON", "30 * * * *").strip()


freshness_job = dg.define_asset_job(
    name="freshness",
    selection=dg.AssetSelection.checks(*freshness_checks),
    executor_def=dg.in_process_executor,
    description="Only the freshness checks: stale published marts, missing extract files. Reads, never writes.",
    tags={"crm/trigger": "freshness"},
)


def build_freshness_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="freshness_hourly",
        job=freshness_job,
        cron_schedule=freshness_cron(),
        execution_timezone=nightly_timezone(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs the freshness checks between nightly runs (CRM_FRESHNESS_CRON).",
    )
