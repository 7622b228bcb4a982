"""The churn pipeline end to end on generated demo extracts: real Dagster, real dbt, real DuckDB.

One small warehouse is built per module (500 customers x 400 days, one nightly run: ingestion,
dbt, and the churn scoring, which trains the first model because the registry is empty). The
tests then look at the result, change post-snapshot data in a copy of the warehouse to show that
no feature leaks, rebuild the mart with the classical label definition, and compare the champion
with the generator's ground truth.
"""

import json
import os
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from e2e_home import project_home, query

from dagster_project import settings
from dagster_project.cli import main
from dagster_project.defs.ml.churn import (
    CHURN_MODEL_KEY,
    CHURN_SCORES_KEY,
    churn_assets,
    churn_checks,
    churn_jobs,
    nightly_selection,
)
from dagster_project.demo import GeneratorConfig, generate
from ml.churn.features import warehouse_spec
from ml.churn.registry import champion_pointer, list_versions, read_card, registry_dir

END = date(2026, 11, 21)
SNAPSHOT = date(2026, 6, 30)  # the month-end whose features must not move when later data changes
FEATURES = list(warehouse_spec().features)


def nightly_definitions() -> dg.Definitions:
    """The nightly job's assets around the churn model: ingestion, the dbt models, churn (local wiring)."""
    from dagster_dbt import DbtCliResource

    from dagster_project.defs.dbt.project import DBT_DIR, dbt_executable, dbt_project, ensure_manifest

    ensure_manifest()
    from dagster_project.defs.dbt.assets import dbt_models
    from dagster_project.defs.ingest.assets import ingest_assets
    from dagster_project.defs.ingest.checks import ingest_checks
    from dagster_project.defs.resources import RunSettings, Warehouse

    nightly = dg.define_asset_job("nightly", selection=nightly_selection(), executor_def=dg.in_process_executor)
    return dg.Definitions(
        assets=[*ingest_assets, dbt_models, *churn_assets],
        asset_checks=[*ingest_checks, *churn_checks],
        jobs=[nightly, *churn_jobs],
        resources={
            "warehouse": Warehouse(),
            "run_settings": RunSettings(),
            "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()),
        },
    )


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    with project_home(tmp_path_factory.mktemp("churn")) as root:
        generate(
            GeneratorConfig(
                out_dir=settings.inbox_dir(),
                truth_dir=settings.ground_truth_dir(),
                customers=500,
                days=400,
                seed=5,
                end_date=END,
            )
        )
        with dg.DagsterInstance.ephemeral() as instance:
            job = nightly_definitions().resolve_job_def("nightly")
            result = job.execute_in_process(instance=instance, raise_on_error=False)
        yield {"root": root, "result": result}



def copy_warehouse(night, name: str) -> Path:
    target = night["root"] / name / "crm.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copy(settings.warehouse_path(), target)
    return target


def dbt_run(warehouse: Path, args: list[str]) -> None:
    """`dbt run` against another warehouse file (own target and log folders: nothing shared is touched)."""
    from dagster_project.defs.dbt.project import DBT_DIR, dbt_executable

    work = warehouse.parent
    command = [
        dbt_executable(), "run", *args, "--profiles-dir", str(DBT_DIR),
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
    ]  # fmt: skip
    proc = subprocess.run(
        command, cwd=DBT_DIR, env={**os.environ, "CRM_WAREHOUSE_PATH": str(warehouse)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def features_at(path: Path, through: date) -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select * from marts.churn_features where snapshot_date <= ? order by snapshot_date, customer_id", [through]
        ).fetch_df()
    finally:
        con.close()


def test_the_night_succeeds_and_trains_the_first_champion_once(night) -> None:
    result = night["result"]
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    keys = [e.asset_key for e in result.get_asset_materialization_events()]
    assert dg.AssetKey(["marts", "churn_features"]) in keys and CHURN_SCORES_KEY in keys
    # the model is not part of the nightly job; the scoring trained it because no champion existed
    assert keys.count(CHURN_MODEL_KEY) == 1
    [version] = list_versions(settings.models_dir())
    assert champion_pointer(settings.models_dir())["version"] == version
    card = read_card(settings.models_dir(), version)
    assert card["training_window"]["validation_snapshot"] == "2026-07-31"
    assert card["label_definition"]["horizon_days"] == 90
    assert "no consumption transaction" in card["label_definition"]["description"]


def test_churn_features_hold_every_active_customer_per_snapshot(night) -> None:
    dates = [d for (d,) in query("select distinct snapshot_date from marts.churn_features order by 1")]
    assert dates[-1] == END and all((d + timedelta(days=1)).day == 1 for d in dates[:-1])
    states = query(
        """select count(*) from intermediate.int_customer_states_at_dates s
           where s.status = 'active' and s.reference_date in (select distinct snapshot_date from marts.churn_features)"""
    )
    assert query("select count(*) from marts.churn_features") == states
    assert query("select distinct is_scoring_snapshot from marts.churn_features where snapshot_date = ?", [END]) == [
        (True,)
    ]
    # labels: known exactly where the 90-day window is over by the as-of date, never on the scoring rows
    assert query(
        """select count(*) from marts.churn_features
           where (churned is null) <> (snapshot_date + 90 > ? or is_scoring_snapshot)""",
        [END],
    ) == [(0,)]


def test_labels_equal_the_generators_realized_labels(night) -> None:
    truth = settings.ground_truth_dir() / "churn_truth_snapshots.csv"
    [(compared, agree)] = query(
        """select count(*), count(*) filter (where f.churned = (t.realized_label_90d = 'true')::integer)
           from read_csv(?, all_varchar = true) t
           inner join marts.churn_features f
               on f.customer_id = t.customer_id and f.snapshot_date = t.snapshot_date::date
           where t.realized_label_90d <> ''""",
        [str(truth)],
    )
    assert compared > 3000
    assert agree == compared


def test_every_eligible_customer_gets_a_score_with_plain_language_reasons(night) -> None:
    [(expected,)] = query("select count(*) from marts.churn_features where is_scoring_snapshot and is_eligible")
    rows = query("select * from marts.customer_churn_scores order by churn_probability desc")
    assert len(rows) == expected > 300
    columns = [c for (c,) in query("select column_name from (describe marts.customer_churn_scores)")]
    assert columns == [
        "customer_id", "as_of_date", "churn_probability", "risk_band", "reason_1", "reason_2", "reason_3",
        "model_version",
    ]  # fmt: skip
    version = champion_pointer(settings.models_dir())["version"]
    assert {(r[1], r[7]) for r in rows} == {(END, version)}
    assert {r[3] for r in rows} == {"high", "medium", "low"}
    riskiest = rows[: len(rows) // 10]
    assert all(r[4] for r in riskiest)  # the riskiest customers all have a reason
    reasons = [text for r in rows for text in r[4:7] if text]
    assert not [t for t in reasons if "_" in t or "nan" in t.lower()]  # sentences, not column names
    assert any(t.startswith(("no purchase", "no purchases", "only")) for t in reasons)


def test_no_feature_leaks_data_after_the_snapshot(night) -> None:
    """Change everything after SNAPSHOT in the ODS; every feature up to SNAPSHOT stays the same."""
    copy = copy_warehouse(night, "leakage")
    after = SNAPSHOT + timedelta(days=1)
    con = duckdb.connect(str(copy))
    try:
        # customers active on the snapshot: a third lose all later transactions, calls and complaint
        # updates; a third have theirs altered; a third close their account ten days later
        con.execute(
            """create temp table grp as
               select customer_id, hash(customer_id) % 3 as g from marts.churn_features where snapshot_date = ?""",
            [SNAPSHOT],
        )
        for table, column in (("transactions", "txn_at"), ("calls", "started_at"), ("complaints", "updated_at")):
            con.execute(
                f"delete from ods.{table} where {column} >= ? and customer_id in (select customer_id from grp where g = 0)",
                [after],
            )
        con.execute(
            """update ods.transactions set amount = amount * 3 + 1, channel = 'branch', txn_type = 'purchase'
               where txn_at >= ? and customer_id in (select customer_id from grp where g = 1)""",
            [after],
        )
        con.execute(
            """update ods.calls set reason = 'cancel_request', outcome = 'abandoned', started_at = started_at - interval 1 day
               where started_at >= ? + interval 1 day and customer_id in (select customer_id from grp where g = 1)""",
            [after],
        )
        con.execute(
            """update ods.complaints set status = 'resolved', resolved_at = updated_at, satisfaction = 1
               where updated_at >= ? and customer_id in (select customer_id from grp where g = 1)""",
            [after],
        )
        con.execute(
            """insert into ods.complaints by name
               select 'LEAK' || customer_id as complaint_id, customer_id, ?::timestamp + interval 2 hour as opened_at,
                      'phone' as channel, 'billing' as category, 'critical' as severity, 'open' as status,
                      ?::timestamp + interval 2 hour as updated_at, false as _is_orphan, true as _is_current,
                      'leak.csv' as _source_file, 1 as _source_line, 999999 as _load_id, now() as _loaded_at
               from grp where g = 1""",
            [after, after],
        )
        con.execute(
            """create temp table closing as
               select * from ods.customers where _is_current and customer_id in (select customer_id from grp where g = 2)"""
        )
        con.execute(
            "update ods.customers set _is_current = false where customer_id in (select customer_id from closing)"
        )
        con.execute(
            """insert into ods.customers by name
               select * replace ('closed' as status, ?::timestamp as closed_at, ?::timestamp as updated_at,
                                 'north' as region, 999999 as _load_id, true as _is_current)
               from closing""",
            [after + timedelta(days=10), after + timedelta(days=10)],
        )
    finally:
        con.close()
    before = features_at(settings.warehouse_path(), SNAPSHOT)
    dbt_run(copy, ["--select", "+churn_features", "--full-refresh", "--vars", json.dumps({"as_of_date": str(END)})])
    rebuilt = features_at(copy, SNAPSHOT)

    assert len(before) > 2000
    # every column but the label (and the build watermark, bookkeeping of the incremental table)
    label_free = [c for c in before.columns if c not in ("churned", "built_through_load_id")]
    pd.testing.assert_frame_equal(rebuilt[label_free], before[label_free])
    # ... while the labels of SNAPSHOT and the features of later snapshots did change
    at = before["snapshot_date"] == pd.Timestamp(SNAPSHOT)
    assert (rebuilt.loc[at, "churned"] != before.loc[at, "churned"]).sum() > 100
    later = query("select * from marts.churn_features where snapshot_date = ? order by customer_id", [END], copy)
    assert later != query("select * from marts.churn_features where snapshot_date = ? order by customer_id", [END])


def test_the_classical_label_definition_through_vars(night) -> None:
    """Tenure over a year, a value threshold, closure within 365 days, inactivity not counted."""
    copy = copy_warehouse(night, "classical")
    min_value = 200
    classical = {
        "as_of_date": str(END),
        "churn_min_tenure_days": 366,
        "churn_min_value": min_value,
        "churn_label_window_days": 365,
        "churn_label_includes_inactivity": False,
    }
    dbt_run(copy, ["--select", "churn_features", "--vars", json.dumps(classical)])
    frame = features_at(copy, END)
    assert set(frame["label_window_days"]) == {365}
    [text] = set(frame["label_definition"])
    assert "no consumption" not in text and "tenure >= 366 days" in text and f">= {min_value}" in text
    expected_eligible = (frame["tenure_days"] >= 366) & (frame["net_revenue_12m"] >= min_value)
    assert (frame["is_eligible"] == expected_eligible).all()
    assert 0 < expected_eligible.sum() < len(frame)

    # the label, recomputed from the ODS: a closure recorded by the as-of date that takes effect in
    # the 365 days after the snapshot, or is dated earlier but was recorded only after the snapshot
    closures: dict[str, list[tuple[date, date]]] = {}
    for customer, closed, recorded in query(
        """select customer_id, coalesce(closed_at::date, updated_at::date), updated_at::date from ods.customers
           where status = 'closed' and updated_at < ?::date + 1""",
        [END],
        copy,
    ):
        closures.setdefault(customer, []).append((closed, recorded))
    labelled = frame[frame["churned"].notna()]
    assert set(labelled["snapshot_date"].dt.date) == {date(2025, 10, 31)}  # the only window over by END
    expected = [
        int(
            any(
                closed <= s.date() + timedelta(days=365) and (closed > s.date() or recorded > s.date())
                for closed, recorded in closures.get(c, [])
            )
        )
        for c, s in zip(labelled["customer_id"], labelled["snapshot_date"], strict=True)
    ]
    assert labelled["churned"].astype(int).tolist() == expected
    assert 0 < sum(expected) < len(expected)
    default = features_at(settings.warehouse_path(), END)
    default_rate = default.loc[default["churned"].notna(), "churned"].mean()
    assert labelled["churned"].mean() < default_rate  # stopping to buy no longer counts


def test_oracle_compares_the_champion_with_the_ground_truth(night) -> None:
    models = settings.models_dir()
    result = CliRunner().invoke(
        main, ["churn", "oracle", "--truth", str(settings.ground_truth_dir()), "--models-dir", str(models), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    version = champion_pointer(models)["version"]
    assert report["version"] == version and report["validation_snapshot"] == "2026-07-31"
    assert 0.5 < report["champion_auc"] <= 1 and 0.5 < report["oracle_auc"] <= 1
    assert report["ratio"] == pytest.approx(report["champion_auc"] / report["oracle_auc"])
    assert report["label_agreement"] == 1.0
    assert report["customers"] + report["not_in_truth"] == report["validation_rows"]
    card = read_card(models, version)
    assert card["evaluation"]["oracle"]["oracle_auc"] == report["oracle_auc"]
    assert card["evaluation"]["oracle"]["meets_target"] == (report["ratio"] >= 0.9)
    assert not [p for p in (registry_dir(models) / version).iterdir() if p.name.startswith(".")]

    text = CliRunner().invoke(main, ["churn", "oracle", "--truth", str(settings.ground_truth_dir())])
    assert text.exit_code == 0, text.output
    assert "oracle AUC (p_label_90d)" in text.output and "ratio" in text.output
    missing = CliRunner().invoke(main, ["churn", "oracle", "--truth", str(night["root"])])
    assert missing.exit_code != 0 and "churn_truth_snapshots.csv not found" in missing.output
