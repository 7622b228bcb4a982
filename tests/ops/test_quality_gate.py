"""The Great Expectations checks as Dagster asset checks: a bad file fails a blocking check and the
marts downstream are not built in that run; warnings do not block; the report is linked."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from ops_testkit import (
    MART_KEYS,
    build_defs,
    check_evaluations,
    customers_file,
    dbt_keys_on_transactions,
    dbt_models_def,
    dbt_on_transactions,
    extract,
    materialized_keys,
    nightly_job,
    sample_marts,
    transactions_file,
    write,
)

from dagster_project.defs.ingest.assets import ingest_assets
from dagster_project.defs.ingest.quality_checks import ERRORS_CHECK, WARNINGS_CHECK, run_lineage
from dagster_project.defs.ops.alerts import alerts_log_path


@pytest.fixture
def dbt_models():
    return dbt_models_def()


def _run(crm_env, module_instance, dbt_models=None):
    """Ingestion, its checks, the sample marts and (when given) the dbt models that read ods.transactions."""
    selection = dg.AssetSelection.assets(*ingest_assets, sample_marts)
    assets = [sample_marts]
    if dbt_models is not None:
        selection = selection | dbt_on_transactions(dbt_models)
        assets.append(dbt_models)
    defs = build_defs(assets, [nightly_job(selection)], crm_env.warehouse)
    return defs.resolve_job_def("nightly").execute_in_process(instance=module_instance, raise_on_error=False)


def test_future_dates_fail_the_blocking_check_and_the_marts_are_not_built(
    crm_env, module_instance, monkeypatch, dbt_models
):
    monkeypatch.setenv("CRM_WAREHOUSE_PATH", str(crm_env.warehouse))
    write(crm_env.inbox, "customers/customers_20261120.csv", customers_file("20261120", ["C1", "C2"]))
    # The loader accepts these rows (valid values), but T3 happened a month after the extract date.
    write(
        crm_env.inbox,
        "transactions/transactions_20261120.csv",
        extract(
            "transactions",
            "T1,C1,2026-11-20 10:00:00,purchase,online,12.50,CNY,groceries",
            "T2,C2,2026-11-21 23:59:00,purchase,online,3.00,CNY,dining",  # +1 day: tolerated
            "T3,C2,2026-12-25 09:00:00,purchase,online,5.00,CNY,dining",
        ),
    )
    result = _run(crm_env, module_instance, dbt_models)

    checks = check_evaluations(result)
    failed = checks[("ods/transactions", ERRORS_CHECK)]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert checks[("ods/customers", ERRORS_CHECK)].passed
    failures = failed.metadata["failures"].value
    assert "transactions/transactions_20261120.csv" in failures
    assert "txn_at is not after the file's extract date + 1 day" in failures and "2026-12-25 09:00:00" in failures
    assert "2026-11-21" not in failures  # the +1 day row is fine

    # Blocking: neither the dbt models on ods.transactions nor the marts were built in this run.
    materialized = materialized_keys(result)
    assert dg.AssetKey(["ods", "transactions"]) in materialized
    dbt_keys = dbt_keys_on_transactions(dbt_models)
    assert dbt_keys and not (dbt_keys & materialized)
    assert not (set(MART_KEYS) & materialized)
    assert not result.success
    # the failed gate is a failed step, so the failure hook recorded an alert
    [alert] = [json.loads(line) for line in alerts_log_path().read_text(encoding="utf-8").splitlines()]
    assert alert["run_id"] == result.run_id and alert["step"] == "ods_transactions_quality"

    report = Path(failed.metadata["report"].value)
    assert report.exists() and report.is_relative_to(crm_env.data / "quality")
    page = report.read_text(encoding="utf-8")
    assert "transactions/transactions_20261120.csv" in page and "2026-12-25 09:00:00" in page
    assert (crm_env.data / "quality" / "index.html").exists()


def test_clean_files_pass_and_the_marts_are_built(crm_env, module_instance, monkeypatch):
    monkeypatch.setenv("CRM_WAREHOUSE_PATH", str(crm_env.warehouse))
    write(crm_env.inbox, "customers/customers_20261120.csv", customers_file("20261120", ["C1", "C2"]))
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 30))
    result = _run(crm_env, module_instance)
    assert result.success
    checks = check_evaluations(result)
    for kind in ("customers", "transactions"):
        assert checks[(f"ods/{kind}", ERRORS_CHECK)].passed
        assert checks[(f"ods/{kind}", WARNINGS_CHECK)].passed
        assert checks[(f"ods/{kind}", ERRORS_CHECK)].metadata["files_checked"].value == 1
    assert checks[("ods/calls", ERRORS_CHECK)].metadata["files_checked"].value == 0
    assert set(MART_KEYS) <= materialized_keys(result)


def test_a_repeated_key_in_a_customers_file_blocks_everything_downstream(crm_env, module_instance, monkeypatch):
    monkeypatch.setenv("CRM_WAREHOUSE_PATH", str(crm_env.warehouse))
    # Customers have updated_at, so the loader keeps both versions of C1; within one daily file that is a defect.
    write(
        crm_env.inbox,
        "customers/customers_20261120.csv",
        extract(
            "customers",
            "C1,Zhang Wei,13800138000,zw@example.cn,east,individual,2020-01-01,active,,2026-11-20 08:00:00",
            "C1,Zhang Wei,13800138000,zw@example.cn,north,individual,2020-01-01,active,,2026-11-20 09:00:00",
            "C2,Li Ming,13900139000,lm@example.cn,north,business,2021-05-05,active,,2026-11-20 08:00:00",
        ),
    )
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 5))
    result = _run(crm_env, module_instance)
    checks = check_evaluations(result)
    failed = checks[("ods/customers", ERRORS_CHECK)]
    assert not failed.passed
    assert "customer_id is unique within the file" in failed.metadata["failures"].value
    assert "C1" in failed.metadata["failures"].value
    # ods/transactions depends on ods/customers, so nothing downstream ran.
    assert materialized_keys(result) == {dg.AssetKey(["ods", "customers"])}


def test_a_retry_rechecks_the_files_of_the_run_it_re_executes(module_instance):
    """A retry from failure does not re-load (ingestion succeeded), so it must re-check the parent's files."""
    module_instance.add_run(dg.DagsterRun(job_name="nightly", run_id="night-1", status=dg.DagsterRunStatus.FAILURE))
    module_instance.add_run(
        dg.DagsterRun(
            job_name="nightly",
            run_id="night-1-retry-1",
            parent_run_id="night-1",
            root_run_id="night-1",
            status=dg.DagsterRunStatus.FAILURE,
        )
    )
    retry2 = dg.DagsterRun(
        job_name="nightly", run_id="night-1-retry-2", parent_run_id="night-1-retry-1", root_run_id="night-1"
    )
    assert run_lineage(module_instance, retry2) == ["night-1-retry-2", "night-1-retry-1", "night-1"]
    assert run_lineage(module_instance, dg.DagsterRun(job_name="nightly", run_id="fresh")) == ["fresh"]
