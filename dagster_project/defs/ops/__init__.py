"""Operations: schedules, sensors, failure alerts, freshness checks, publishing and the docs site.

What `definitions.py` wires in:

    schedules          nightly_schedule (CRM_SCHEDULE_CRON / CRM_SCHEDULE_TZ) and freshness_hourly
    sensors            inbox_sensor (new extract files -> nightly run) and run_failure_alerts
    failure_hooks      hooks for the nightly job: every failed step records an alert
    freshness_checks   stale published marts, yesterday's extract missing (severity WARN)
    build_publish_asset(upstream_keys)  -> publish/marts: marts.duckdb for analysts, replaced atomically
    build_docs_asset(upstream_keys)     -> publish/dbt_docs: <data>/docs/index.html

The work itself lives in modules that do not import Dagster (publish.py, docs_site.py, alerts.py,
inbox.py); the ones here wrap them.
"""

import dagster as dg

from .assets import DOCS_KEY, PUBLISH_KEY, build_docs_asset, build_publish_asset
from .freshness import build_freshness_schedule, freshness_checks, freshness_job
from .hooks import failure_hooks
from .schedules import build_nightly_schedule
from .sensors import inbox_sensor, run_failure_alerts

# Assigned after the submodule imports above, so these names are the lists, not the modules.
schedules: list[dg.ScheduleDefinition] = [build_nightly_schedule(), build_freshness_schedule()]
sensors: list[dg.SensorDefinition] = [inbox_sensor, run_failure_alerts]

__all__ = [
    "DOCS_KEY",
    "PUBLISH_KEY",
    "build_docs_asset",
    "build_publish_asset",
    "failure_hooks",
    "freshness_checks",
    "freshness_job",
    "schedules",
    "sensors",
]
