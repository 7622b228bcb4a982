"""The marts, CLV and churn stages of `crm-warehouse bench`, through the CLI, at small sizes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from dagster_project.cli import main

if TYPE_CHECKING:  # annotations only: at run time another folder's conftest.py can shadow the name
    from conftest import CrmEnv


def _bench(*args: str) -> dict:
    result = CliRunner().invoke(main, ["bench", *args, "--json", "-"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _targets(report: dict) -> dict[str, dict]:
    return {t["name"]: t for t in report["targets"]}


@pytest.mark.slow
def test_marts_stage_builds_in_full_then_adds_exactly_one_day(crm_env: CrmEnv) -> None:
    report = _bench("--customers", "300", "--days", "20", "--stages", "generate,ingest,marts", "--repeat", "1")
    assert report["success"] is True
    generate, ingest, marts = report["stages"]
    details = marts["details"]

    # The full build is as of the day before the last; the incremental night adds the last day's
    # files, and together they are every generated row.
    full_as_of = date.fromisoformat(details["full_as_of"])
    assert ingest["details"]["through"] == details["full_as_of"]
    assert date.fromisoformat(details["incremental_as_of"]) == full_as_of + timedelta(days=1)
    assert details["full"]["success"] and details["incremental"]["success"]
    assert 0 < details["incremental"]["rows_loaded"] < ingest["rows"]
    assert ingest["rows"] + details["incremental"]["rows_loaded"] == generate["rows"]

    # The ceiling: the three slowest marts' own SQL, making the same rows as dbt's tables.
    bare = details["bare_heaviest"]["models"]
    assert len(bare) == 3
    assert all(m["path"].startswith("models/marts/") and m["materialized"] in ("table", "incremental") for m in bare)
    assert [m["dbt_execution_s"] for m in bare] == sorted((m["dbt_execution_s"] for m in bare), reverse=True)
    for m in bare:
        assert m["rows"] == m["dbt_rows"] and m["bare_s"] > 0

    # dbt runs as a child process: its memory is in the peak.
    assert details["full"]["peak_rss_children_mb"] > 50
    assert details["full"]["peak_rss_mb"] >= details["full"]["peak_rss_children_mb"]

    full_dbt, incr_dbt = details["full_dbt_build_s"], details["incremental_dbt_build_s"]
    assert full_dbt > 0 and incr_dbt > 0
    targets = _targets(report)
    assert targets["incremental dbt build / full dbt build"]["value"] == pytest.approx(incr_dbt / full_dbt, rel=1e-3)
    assert targets["full dbt build / bare SQL of heaviest three"]["value"] == pytest.approx(
        full_dbt / details["bare_heaviest"]["total_s"], rel=1e-3
    )


def test_clv_and_churn_stages_report_their_targets(crm_env: CrmEnv) -> None:
    report = _bench(
        "--customers", "300", "--days", "3", "--stages", "clv,churn",
        "--clv-customers", "5000", "--lifetimes-customers", "0",
        "--churn-train-rows", "20000", "--churn-score-rows", "3000",
    )  # fmt: skip
    assert report["success"] is True
    clv, churn = report["stages"]
    assert clv["rows"] == 5000 and clv["details"]["lifetimes"] is None
    assert churn["details"]["score"]["rows"] == 3000
    assert churn["rows"] == churn["details"]["train"]["train_rows"] >= 15_000

    targets = _targets(report)
    assert targets["clv fit + score seconds"]["measured_at"] == "5,000 customers"
    assert 0 < targets["clv fit + score seconds"]["value"] < 60
    assert 0 < targets["churn scoring seconds"]["value"] < 60
    assert targets["churn training seconds"]["value"] == churn["details"]["train"]["seconds"]
    assert all(t["met"] is True for t in targets.values())


def test_unknown_stage_is_refused(crm_env: CrmEnv) -> None:
    result = CliRunner().invoke(main, ["bench", "--customers", "300", "--days", "3", "--stages", "ingest,load"])
    assert result.exit_code == 2
    assert "load is not a stage" in result.output


def test_marts_without_a_second_day_is_refused(crm_env: CrmEnv) -> None:
    result = CliRunner().invoke(main, ["bench", "--customers", "300", "--days", "1", "--stages", "generate,marts"])
    assert result.exit_code == 2
    assert "--days 2 or more" in result.output
