"""The churn Dagster assets and checks against a real DuckDB file and a real model registry.

The mart `marts.churn_features` is written here from `ml.churn.synthetic` rows (no dbt), so each
test controls exactly what the model learns from; tests/e2e/test_churn_pipeline.py runs the same
assets on a generated warehouse built by dbt.
"""

import json
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from dagster_project import settings
from dagster_project.defs.ml import churn as churn_defs
from dagster_project.defs.ml.churn import (
    CHURN_MODEL_KEY,
    CHURN_SCORES_KEY,
    churn_assets,
    churn_checks,
    churn_jobs,
    churn_model,
    churn_schedules,
    customer_churn_scores,
    nightly_selection,
)
from dagster_project.defs.resources import Warehouse
from ml.churn.registry import champion_pointer, list_versions, read_card, registry_dir
from ml.churn.synthetic import synthetic_churn_features

LABEL_TEXT = (
    "churned = 1 when the account is closed or no consumption transaction (purchase or refund) is made "
    "within the 90 days after the snapshot date, else 0"
)


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    frame = synthetic_churn_features(700, 10, seed=11)
    frame["customer_id"] = [f"C{int(i):08d}" for i in frame["customer_id"]]
    return frame


def write_mart(path: Path, frame: pd.DataFrame) -> None:
    """marts.churn_features as dbt would write it (the last snapshot is the scoring snapshot)."""
    frame = frame.copy()
    frame["is_scoring_snapshot"] = frame["snapshot_date"] == frame["snapshot_date"].max()
    frame["label_window_days"] = 90
    frame["label_definition"] = LABEL_TEXT
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema if not exists marts")
        con.register("mart_frame", frame)
        con.execute(
            "create or replace table marts.churn_features as "
            "select * replace (snapshot_date::date as snapshot_date, churned::integer as churned) from mart_frame"
        )
    finally:
        con.close()


def shuffle_labels(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """The same rows with `share` of the known labels permuted among themselves (weaker signal)."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    known = np.flatnonzero(out["churned"].notna().to_numpy())
    picked = rng.choice(known, size=int(share * len(known)), replace=False)
    values = out["churned"].to_numpy(dtype="float64", na_value=np.nan)
    values[picked] = rng.permutation(values[picked])
    out["churned"] = pd.array(values, dtype="Float64").astype("Int8")
    return out


@pytest.fixture
def env(crm_env) -> Path:
    """The warehouse path of a fresh CRM folder (models under crm_env.models)."""
    return crm_env.warehouse


def run(selection: list, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(selection, resources={"warehouse": Warehouse()}, instance=instance, raise_on_error=False)


def checks_by_name(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    assert events, f"{key.to_user_string()} was not materialized"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def test_training_reads_a_deterministic_sample_of_whole_customers_above_the_row_cap(env, synthetic) -> None:
    write_mart(env, synthetic)
    con = duckdb.connect(str(env), read_only=True)
    try:
        labelled = churn_defs.feature_counts(con)["labelled_rows"]
        assert churn_defs.training_sample_fraction(labelled, labelled) == 1.0
        fraction = churn_defs.training_sample_fraction(labelled, labelled // 4)
        everyone = churn_defs.read_training_rows(con)
        sample = churn_defs.read_training_rows(con, fraction)
        again = churn_defs.read_training_rows(con, fraction)
    finally:
        con.close()
    assert len(everyone) == labelled
    assert 0.15 * labelled < len(sample) < 0.35 * labelled  # about a quarter
    pd.testing.assert_frame_equal(sample, again)  # the same customers every time
    # whole customers: a sampled customer has every one of their labelled snapshots
    per_customer = everyone.groupby("customer_id").size()
    sampled = sample.groupby("customer_id").size()
    assert (sampled == per_customer.loc[sampled.index]).all()
    assert sample["snapshot_date"].nunique() == everyone["snapshot_date"].nunique()
    with pytest.raises(ValueError, match="max_training_rows must be positive"):
        churn_defs.training_sample_fraction(labelled, 0)

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [churn_model],
            resources={"warehouse": Warehouse()},
            instance=instance,
            run_config={"ops": {"ml__churn_model": {"config": {"max_training_rows": labelled // 4}}}},
        )
    meta = metadata(result, CHURN_MODEL_KEY)
    assert meta["training_rows_read"] == len(sample)
    assert meta["customer_sample_fraction"] == pytest.approx(fraction)
    assert meta["train_rows"] + meta["validation_rows"] + meta["labelled_unused_rows"] == len(sample)


def test_training_registers_promotes_and_reports(env, synthetic) -> None:
    write_mart(env, synthetic)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run([churn_model, churn_defs.churn_model_promotion_gate], instance)
    assert result.success
    meta = metadata(result, CHURN_MODEL_KEY)
    version = meta["version"]
    assert meta["promoted"] is True and meta["champion_version"] == version
    assert meta["previous_champion"] == "none"
    assert 0.7 < meta["scorecard_auc"] < 1 and 0.7 < meta["challenger_auc"] < 1
    assert meta["auc"] == meta[f"{meta['champion_model']}_auc"]
    labelled = int(synthetic["churned"].notna().sum())
    eligible_labelled = int((synthetic["churned"].notna() & synthetic["is_eligible"]).sum())
    assert meta["labelled_rows"] == eligible_labelled < labelled
    assert meta["train_rows"] + meta["validation_rows"] + meta["labelled_unused_rows"] == eligible_labelled
    assert meta["label_definition"] == LABEL_TEXT
    assert Path(meta["report_gains"]).stat().st_size > 0
    assert "| scorecard |" in meta["candidates"]
    gate = checks_by_name(result)["churn_model_promotion_gate"]
    assert gate.passed

    card = read_card(settings.models_dir(), version)
    assert card["label_definition"] == {"column": "churned", "horizon_days": 90, "description": LABEL_TEXT}
    # the validation rows' predictions are kept for `churn oracle` (a change in ml/churn/training.py)
    predictions = pd.read_csv(registry_dir(settings.models_dir()) / version / card["files"]["validation_predictions"])
    validation_date = card["training_window"]["validation_snapshot"]
    assert set(predictions["snapshot_date"]) == {validation_date}
    assert len(predictions) == meta["validation_rows"]
    assert list(predictions.columns) == ["customer_id", "snapshot_date", "churned", "scorecard", "challenger"]
    assert predictions[["scorecard", "challenger"]].stack().between(0, 1).all()


@pytest.mark.parametrize(
    ("share", "phrase"),
    [(1.0, "below the floor"), (0.35, "more than 0.02 below the champion")],
    ids=["below-floor", "too-far-below-champion"],
)
def test_promotion_gate_blocks_a_worse_candidate_and_keeps_the_champion(env, synthetic, share, phrase) -> None:
    write_mart(env, synthetic)
    with dg.DagsterInstance.ephemeral() as instance:
        first = run([churn_model, churn_defs.churn_model_promotion_gate], instance)
        assert first.success
        champion = champion_pointer(settings.models_dir())
        assert champion is not None

        write_mart(env, shuffle_labels(synthetic, share, seed=3))
        second = run(
            [churn_model, customer_churn_scores, *churn_checks],
            instance,
        )
    meta = metadata(second, CHURN_MODEL_KEY)
    gate = checks_by_name(second)["churn_model_promotion_gate"]
    assert not gate.passed
    assert phrase in gate.description
    assert meta["promoted"] is False and phrase in meta["promotion_reason"]
    gate_meta = {k: v.value for k, v in gate.metadata.items()}
    assert gate_meta["candidate_version"] == meta["version"] != champion["version"]
    assert gate_meta["champion_now"] == champion["version"]
    assert gate_meta["previous_champion_auc"] == pytest.approx(champion["auc"])
    if share < 1:
        assert 0.65 <= gate_meta["candidate_auc"] < champion["auc"] - 0.02
    # the champion pointer did not move, the refusal is on record, and the blocking check stopped
    # the scoring that would have run after the model in the same run
    assert champion_pointer(settings.models_dir()) == champion
    assert len(list_versions(settings.models_dir())) == 2
    history = (registry_dir(settings.models_dir()) / "promotions.jsonl").read_text().splitlines()
    assert [json.loads(line)["promoted"] for line in history] == [True, False]
    assert CHURN_SCORES_KEY not in {e.asset_key for e in second.get_asset_materialization_events()}


def test_scoring_uses_the_champion_and_never_retrains(env, synthetic) -> None:
    write_mart(env, synthetic)
    with dg.DagsterInstance.ephemeral() as instance:
        trained = run([churn_model], instance)
        assert trained.success
        version = champion_pointer(settings.models_dir())["version"]
        scored = run([customer_churn_scores, *churn_checks[1:]], instance)
    assert scored.success
    assert list_versions(settings.models_dir()) == [version]  # a champion exists: no training
    meta = metadata(scored, CHURN_SCORES_KEY)
    assert "first_model" not in meta
    assert meta["model_version"] == version
    checks = checks_by_name(scored)
    assert set(checks) == {
        "customer_id_unique_and_not_null",
        "churn_probability_between_0_and_1",
        "risk_band_accepted_values",
        "every_scoring_customer_scored",
    }
    assert all(c.passed for c in checks.values())

    scoring = synthetic[(synthetic["snapshot_date"] == synthetic["snapshot_date"].max()) & synthetic["is_eligible"]]
    con = duckdb.connect(str(env), read_only=True)
    try:
        rows = con.execute(
            "select customer_id, as_of_date, churn_probability, risk_band, reason_1, model_version "
            "from marts.customer_churn_scores order by customer_id"
        ).fetchall()
        types = dict(
            con.execute("select column_name, column_type from (describe marts.customer_churn_scores)").fetchall()
        )
    finally:
        con.close()
    assert [r[0] for r in rows] == sorted(scoring["customer_id"])
    assert {r[1] for r in rows} == {scoring["snapshot_date"].max().date()}
    assert {r[5] for r in rows} == {version}
    assert meta["rows"] == len(rows) == meta["risk_high"] + meta["risk_medium"] + meta["risk_low"]
    assert {r[3] for r in rows} <= {"high", "medium", "low"}
    assert all(r[3] == ("high" if r[2] >= 0.5 else "medium" if r[2] >= 0.2 else "low") for r in rows)
    reasons = [r[4] for r in rows if r[4]]
    assert len(reasons) > len(rows) / 2 and not any("_" in r for r in reasons)
    assert types == {
        "customer_id": "VARCHAR",
        "as_of_date": "DATE",
        "churn_probability": "DOUBLE",
        "risk_band": "VARCHAR",
        "reason_1": "VARCHAR",
        "reason_2": "VARCHAR",
        "reason_3": "VARCHAR",
        "model_version": "VARCHAR",
    }


def test_first_night_without_history_writes_empty_scores_and_warns(env, synthetic) -> None:
    # two snapshots only: no label window has closed, so no model can be trained yet
    recent = synthetic[synthetic["snapshot_date"] >= sorted(synthetic["snapshot_date"].unique())[-2]]
    write_mart(env, recent)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run([customer_churn_scores, *churn_checks[1:]], instance)
    assert result.success  # the night goes on; the completeness check warns
    meta = metadata(result, CHURN_SCORES_KEY)
    assert meta["rows"] == 0 and meta["model_version"] == "none"
    assert meta["first_model"].startswith("cannot train yet")
    complete = checks_by_name(result)["every_scoring_customer_scored"]
    assert not complete.passed and complete.severity == dg.AssetCheckSeverity.WARN
    assert champion_pointer(settings.models_dir()) is None


def test_first_night_trains_the_first_champion_and_records_it(env, synthetic) -> None:
    write_mart(env, synthetic)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run([customer_churn_scores, *churn_checks[1:]], instance)
        model_events = [e for e in result.get_asset_materialization_events() if e.asset_key == CHURN_MODEL_KEY]
    assert result.success
    [version] = list_versions(settings.models_dir())
    assert champion_pointer(settings.models_dir())["version"] == version
    meta = metadata(result, CHURN_SCORES_KEY)
    assert meta["first_model"].startswith(f"trained {version}: promoted")
    assert meta["model_version"] == version and meta["rows"] > 0
    assert len(model_events) == 1  # the first training shows up in ml/churn_model's history
    assert model_events[0].materialization.metadata["version"].value == version
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_jobs_schedule_and_nightly_selection(monkeypatch) -> None:
    defs = dg.Definitions(
        assets=churn_assets,
        asset_checks=churn_checks,
        jobs=[*churn_jobs, dg.define_asset_job("nightly", selection=nightly_selection())],
        schedules=churn_schedules,
        resources={"warehouse": Warehouse()},
    )
    training = defs.resolve_job_def("churn_training")
    assert set(training.graph.node_dict) == {"ml__churn_model", "ml__churn_model_churn_model_promotion_gate"}
    nightly = defs.resolve_job_def("nightly")
    assert nightly.asset_layer.executable_asset_keys == {CHURN_SCORES_KEY}
    assert set(nightly.graph.node_dict) == {
        "marts__customer_churn_scores",
        *(f"marts__customer_churn_scores_{next(iter(check.check_specs)).name}" for check in churn_checks[1:]),
    }

    [schedule] = churn_schedules
    assert schedule.cron_schedule == "0 3 * * 0" and schedule.execution_timezone == "Asia/Shanghai"
    assert schedule.job_name == "churn_training"
    monkeypatch.setenv("CRM_CHURN_TRAINING_CRON", "30 4 * * 6")
    assert churn_defs.build_training_schedule().cron_schedule == "30 4 * * 6"
    monkeypatch.setenv("CRM_CHURN_TRAINING_CRON", "every sunday")
    with pytest.raises(ValueError, match="CRM_CHURN_TRAINING_CRON='every sunday' is not a valid cron"):
        churn_defs.build_training_schedule()
