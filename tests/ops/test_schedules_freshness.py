"""The nightly schedule's settings, the freshness checks, and the whole ops layer wired like definitions.py."""

from __future__ import annotations

import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from ops_testkit import customers_file, write

from dagster_project.defs.ingest.assets import ingest_assets
from dagster_project.defs.ingest.checks import ingest_checks
from dagster_project.defs.ingest.quality_checks import quality_checks
from dagster_project.defs.ops import (
    PUBLISH_KEY,
    build_docs_asset,
    build_publish_asset,
    failure_hooks,
    freshness_checks,
    schedules,
    sensors,
)
from dagster_project.defs.ops.freshness import expected_extract_date, freshness_job
from dagster_project.defs.ops.publish import publish_marts
from dagster_project.defs.ops.schedules import build_nightly_schedule
from dagster_project.defs.resources import RunSettings, Warehouse


def test_nightly_schedule_defaults_and_environment(monkeypatch):
    monkeypatch.delenv("CRM_SCHEDULE_CRON", raising=False)
    monkeypatch.delenv("CRM_SCHEDULE_TZ", raising=False)
    schedule = build_nightly_schedule()
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 2 * * *",
        "Asia/Shanghai",
        "nightly",
    )
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING

    monkeypatch.setenv("CRM_SCHEDULE_CRON", "30 5 * * 1-5")
    monkeypatch.setenv("CRM_SCHEDULE_TZ", "Europe/Berlin")
    schedule = build_nightly_schedule()
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 5 * * 1-5", "Europe/Berlin")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 5, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags["crm/trigger"] == "schedule"

    monkeypatch.setenv("CRM_SCHEDULE_CRON", "every night at two")
    with pytest.raises(ValueError, match="CRM_SCHEDULE_CRON"):
        build_nightly_schedule()
    monkeypatch.setenv("CRM_SCHEDULE_CRON", "0 2 * * *")
    monkeypatch.setenv("CRM_SCHEDULE_TZ", "Mars/Olympus")
    with pytest.raises(ValueError, match="CRM_SCHEDULE_TZ"):
        build_nightly_schedule()


def test_expected_extract_date_follows_the_schedule_tick():
    shanghai = ZoneInfo("Asia/Shanghai")
    # 01:59 local: tonight's 02:00 run has not happened, so the day before yesterday's file is the latest due
    assert expected_extract_date(datetime(2026, 11, 22, 1, 59, tzinfo=shanghai), "0 2 * * *", "Asia/Shanghai") == date(
        2026, 11, 20
    )
    assert expected_extract_date(datetime(2026, 11, 22, 2, 1, tzinfo=shanghai), "0 2 * * *", "Asia/Shanghai") == date(
        2026, 11, 21
    )
    # 20:00 UTC on the 21st is 04:00 on the 22nd in Shanghai
    utc = datetime(2026, 11, 21, 20, 0, tzinfo=ZoneInfo("UTC"))
    assert expected_extract_date(utc, "0 2 * * *", "Asia/Shanghai") == date(2026, 11, 21)


def _warehouse_with_marts(path) -> None:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.dim_customers as select 1 as customer_id")
    con.close()


def _evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.event_specific_data.asset_key.to_user_string()}:{e.event_specific_data.check_name}": e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _freshness_defs(crm_env) -> dg.Definitions:
    return dg.Definitions(
        assets=[*ingest_assets, build_publish_asset([])],
        asset_checks=freshness_checks,
        jobs=[freshness_job],
        resources={"warehouse": Warehouse(path=str(crm_env.warehouse)), "run_settings": RunSettings()},
    )


def test_freshness_job_flags_stale_marts_and_missing_extracts(crm_env, instance, monkeypatch):
    monkeypatch.setenv("CRM_SCHEDULE_TZ", "UTC")
    monkeypatch.setenv("CRM_SCHEDULE_CRON", "0 0 * * *")  # the latest tick is today 00:00 UTC: yesterday is due
    defs = _freshness_defs(crm_env)
    job = defs.resolve_job_def("freshness")

    result = job.execute_in_process(instance=instance)
    assert result.success  # WARN checks never fail the run
    evals = _evaluations(result)
    assert set(evals) == {"publish/marts:published_recently"} | {
        f"ods/{k}:inbox_has_yesterdays_file" for k in ("customers", "transactions", "calls", "complaints")
    }
    assert all(not e.passed and e.severity == dg.AssetCheckSeverity.WARN for e in evals.values())
    assert evals["publish/marts:published_recently"].metadata["problem"].value == "the marts have never been published"

    yesterday = datetime.now(ZoneInfo("UTC")).date().toordinal() - 1
    day = date.fromordinal(yesterday).strftime("%Y%m%d")
    write(crm_env.inbox, f"customers/customers_{day}.csv", customers_file(day, ["C1"]))
    _warehouse_with_marts(crm_env.warehouse)
    publish_marts(crm_env.warehouse, crm_env.warehouse.parent / "marts.duckdb", run_id="r1")

    evals = _evaluations(job.execute_in_process(instance=instance))
    assert evals["publish/marts:published_recently"].passed
    assert evals["ods/customers:inbox_has_yesterdays_file"].passed
    assert (
        evals["ods/customers:inbox_has_yesterdays_file"].metadata["newest_in_inbox"].value
        == date.fromordinal(yesterday).isoformat()
    )
    assert not evals["ods/transactions:inbox_has_yesterdays_file"].passed

    monkeypatch.setenv("CRM_FRESHNESS_MAX_AGE_HOURS", str(0.5 / 3600))  # half a second
    time.sleep(1.0)
    stale = _evaluations(job.execute_in_process(instance=instance))["publish/marts:published_recently"]
    assert not stale.passed and "old (limit" in stale.metadata["problem"].value


def test_the_ops_layer_loads_as_definitions_py_will_wire_it():
    """The exports combined with the existing ingestion assets resolve: job names, check targets, hooks."""
    publish = build_publish_asset([dg.AssetKey(["ods", "transactions"])])
    docs = build_docs_asset([dg.AssetKey(["ods", "transactions"])])
    nightly = dg.define_asset_job(
        "nightly",
        selection=dg.AssetSelection.all(),
        executor_def=dg.in_process_executor,
        hooks=failure_hooks,
        tags={"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"},
    )
    defs = dg.Definitions(
        assets=[*ingest_assets, publish, docs],
        asset_checks=[*ingest_checks, *quality_checks, *freshness_checks],
        jobs=[nightly],
        schedules=schedules,
        sensors=sensors,
        resources={"warehouse": Warehouse(), "run_settings": RunSettings()},
    )
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {s.name for s in repo.schedule_defs} == {"nightly_schedule", "freshness_hourly"}
    assert {s.name for s in repo.sensor_defs} == {"inbox_sensor", "run_failure_alerts"}
    assert repo.has_job("freshness") and repo.get_job("nightly").hook_defs == failure_hooks
    job = repo.get_job("nightly")
    checks = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
    assert {"quality_errors", "quality_warnings", "published_recently", "inbox_has_yesterdays_file"} <= checks
    assert PUBLISH_KEY in job.asset_layer.asset_graph.get_all_asset_keys()
