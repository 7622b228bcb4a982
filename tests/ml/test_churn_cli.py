"""`crm-warehouse churn evaluate` end to end, on the IBM Telco churn table and small files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from dagster_project.cli import main

TELCO = Path(__file__).resolve().parents[1] / "data" / "telco_churn.csv"


def test_telco_five_fold_auc_reaches_the_published_level(tmp_path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main,
        [
            "churn",
            "evaluate",
            "--features",
            str(TELCO),
            "--label",
            "churn",
            "--id",
            "customer_id",
            "--folds",
            "5",
            "--json",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["auc"] >= 0.84
    assert report["model"] in {"scorecard", "challenger"}
    champion = report["candidates"][report["model"]]
    for key in ("auc", "accuracy", "sensitivity", "specificity", "lift_top20"):
        assert report[key] == champion[key]
    for name in ("scorecard", "challenger"):
        candidate = report["candidates"][name]
        assert len(candidate["auc_folds"]) == 5
        assert candidate["auc"] > 0.8
        assert candidate["lift_top20"] > 2.0
        assert (
            0.6 < candidate["sensitivity"] < 0.95
            and 0.6 < candidate["specificity"] < 0.95
        )
    assert report["rows"]["evaluated"] == 7043
    assert report["class_balance"]["all"]["churned"] == 1869
    assert "customer_id" not in report["features"]["numeric"]
    assert "contract" in report["features"]["categorical"]
    assert report["top_factors"][0]["feature"] == "contract"
    assert len(report["calibration"]["scorecard"]) == 10
    for name in ("metrics.json", "gains.png", "calibration.csv", "factors.csv"):
        assert (out / name).stat().st_size > 0
    factors = pd.read_csv(out / "factors.csv")
    assert len(factors) == 19 and factors["rank"].tolist() == list(range(1, 20))


@pytest.fixture
def small_table(tmp_path) -> Path:
    telco = pd.read_csv(TELCO).sample(600, random_state=3)
    telco["churn"] = telco["churn"].map({"Yes": "churned", "No": "retained"})
    telco.loc[telco.index[:5], "churn"] = None  # unlabelled rows are left out
    path = tmp_path / "customers.parquet"
    telco.to_parquet(path)
    return path


def test_text_report_on_a_parquet_table(small_table) -> None:
    result = CliRunner().invoke(
        main,
        [
            "churn",
            "evaluate",
            "--features",
            str(small_table),
            "--label",
            "churn",
            "--id",
            "customer_id",
            "--folds",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "595 labelled" in result.output
        and "5 without a label left out" in result.output
    )
    assert "stratified k-fold, 3 folds" in result.output
    assert "Champion:" in result.output and "Lift top 20%" in result.output
    assert "Key factors" in result.output


def test_unreadable_label_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"x": range(20), "status": ["gone", "here"] * 10}).to_csv(
        path, index=False
    )
    result = CliRunner().invoke(
        main, ["churn", "evaluate", "--features", str(path), "--label", "status"]
    )
    assert result.exit_code != 0
    assert "bad.csv" in result.output and "gone" in result.output


def test_unknown_label_column_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": range(20), "churn": [0, 1] * 10}).to_csv(path, index=False)
    result = CliRunner().invoke(
        main, ["churn", "evaluate", "--features", str(path), "--label", "left"]
    )
    assert result.exit_code != 0
    assert "no column 'left'" in result.output
