"""The nightly schedule: run the `nightly` job at CRM_SCHEDULE_CRON in CRM_SCHEDULE_TZ.

Default: 02:00 every day, Asia/Shanghai. The values are read when the code location loads, so a
change takes effect after restarting `dagster dev` (see docs/operations.md).
"""

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

NIGHTLY_JOB = "nightly"
DEFAULT_CRON = "0 2 * * *"
DEFAULT_TZ = "Asia/Shanghai"


def nightly_cron() -> str:
    return os.environ.get("CRM_SCHEDULE_CRON", "").strip() or DEFAULT_CRON


def nightly_timezone() -> str:
    return os.environ.get("CRM_SCHEDULE_TZ", "").strip() or DEFAULT_TZ


def env_schedule(
    *,
    name: str,
    job: object,
    cron_var: str,
    default_cron: str,
    what: str,
) -> dg.ScheduleDefinition:
    """A schedule whose cron comes from `cron_var` and time zone from CRM_SCHEDULE_TZ, validated with
    messages naming the variable (read when the code location loads)."""
    cron = os.environ.get(cron_var, "").strip() or default_cron
    tz = nightly_timezone()
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"CRM_SCHEDULE_TZ={tz!r} is not a known time zone; use an IANA name like Asia/Shanghai") from exc
    target = {"job_name": job} if isinstance(job, str) else {"job": job}
    try:
        return dg.ScheduleDefinition(
            name=name,
            cron_schedule=cron,
            execution_timezone=tz,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            tags={"crm/trigger": "schedule"},
            description=f"{what} at '{cron}' ({tz}); change with {cron_var} / CRM_SCHEDULE_TZ.",
            **target,
        )
    except dg.DagsterInvalidDefinitionError as exc:
        raise ValueError(
            f"{cron_var}={cron!r} is not a valid cron expression (five fields, e.g. '{default_cron}'): {exc}"
        ) from exc


def build_nightly_schedule() -> dg.ScheduleDefinition:
    return env_schedule(
        name="nightly_schedule", job=NIGHTLY_JOB, cron_var="CRM_SCHEDULE_CRON", default_cron=DEFAULT_CRON,
        what="The nightly run",
    )
