"""Calibration/holdout backtest on CDNOW, as a function and as `crm-warehouse clv backtest`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from dagster_project.cli import main
from ml.clv import BacktestResult, backtest, plot_cumulative
from ml.clv._stats import roc_auc, spearman

CDNOW = Path(__file__).resolve().parents[1] / "data" / "CDNOW_sample.txt"
NAMES = "customer_id,sample_id,date,cds,amount"
CLI_BASE = [
    "clv", "backtest", "--customer-col", "customer_id", "--date-col", "date", "--amount-col", "amount",
    "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
]  # fmt: skip


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW, sep=r"\s+", header=None, names=NAMES.split(","), dtype={"customer_id": str, "date": str})


@pytest.fixture(scope="module")
def result(cdnow: pd.DataFrame) -> BacktestResult:
    return backtest(
        cdnow, customer_col="customer_id", date_col="date", amount_col="amount", date_format="%Y%m%d",
        calibration_end="1997-09-30", holdout_end="1998-06-30",
    )  # fmt: skip


def test_holdout_forecast_is_within_15_percent_of_the_actual_1882(result: BacktestResult) -> None:
    h = result.holdout
    assert h["actual_repeat_purchases"] == 1882
    assert abs(h["forecast_repeat_purchases"] - 1882) / 1882 < 0.15
    assert h["relative_error"] == pytest.approx((h["forecast_repeat_purchases"] - 1882) / 1882)
    assert result.settings["holdout_length"] == 39.0
    assert result.bgnbd.converged and result.bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert result.gamma_gamma is not None and result.gamma_gamma.params.q == pytest.approx(3.74, rel=0.01)


def test_per_customer_metrics_and_buckets_are_consistent(result: BacktestResult) -> None:
    c = result.customers
    err = c["expected_holdout_purchases"] - c["actual_holdout_purchases"]
    assert result.per_customer["mae"] == pytest.approx(err.abs().mean())
    assert result.per_customer["correlation"] == pytest.approx(
        np.corrcoef(c["expected_holdout_purchases"], c["actual_holdout_purchases"])[0, 1]
    )
    assert 0.5 < result.per_customer["correlation"] < 1
    b = result.by_frequency
    assert list(b["frequency"]) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert b["customers"].sum() == 2357 and b.loc[0, "customers"] == 1411
    assert b["actual_total"].sum() == 1882
    assert b["forecast_total"].sum() == pytest.approx(result.holdout["forecast_repeat_purchases"])
    assert (b["forecast_mean"].diff().dropna() > 0).all()  # more past purchases, more forecast


def test_auc_matches_scikit_learn(result: BacktestResult) -> None:
    c = result.customers
    bought_again = c["actual_holdout_purchases"] > 0
    assert result.auc == pytest.approx(roc_auc_score(bought_again, c["expected_holdout_purchases"]))
    assert 0.7 < result.auc < 0.9


def test_rank_statistics_handle_ties() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.1, 0.2])
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    assert spearman([1, 2, 3, 4], [10, 20, 20, 40]) == pytest.approx(0.9486832980505138)


def test_cumulative_curve_and_chart(result: BacktestResult, tmp_path: Path) -> None:
    cum = result.cumulative
    assert cum["week"].iloc[-1] == 78.0 and len(cum) == 78
    at_cal = cum.loc[cum["week"] == 39.0].iloc[0]
    assert at_cal["actual"] == 2457 and at_cal["forecast"] == 2457  # calibration repeat purchases
    assert cum["actual"].iloc[-1] == 2457 + 1882
    assert cum["forecast"].iloc[-1] == pytest.approx(2457 + result.holdout["forecast_repeat_purchases"])
    assert (np.diff(cum["model"]) > 0).all()
    assert cum["model"].iloc[38] == pytest.approx(2457, rel=0.05)  # the fit tracks the calibration period
    path = tmp_path / "cum.png"
    plot_cumulative(result, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_invalid_periods_are_rejected(cdnow: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="must be after calibration end"):
        backtest(cdnow, customer_col="customer_id", date_col="date", amount_col="amount", date_format="%Y%m%d",
                 calibration_end="1998-01-01", holdout_end="1997-06-30")  # fmt: skip
    with pytest.raises(ValueError, match="no transaction on or before"):
        backtest(cdnow, customer_col="customer_id", date_col="date", amount_col="amount", date_format="%Y%m%d",
                 calibration_end="1990-01-01", holdout_end="1990-06-30")  # fmt: skip


def test_cli_json_on_the_cdnow_sample(tmp_path: Path) -> None:
    chart = tmp_path / "charts" / "cdnow.png"
    args = ["--transactions", str(CDNOW), "--names", NAMES, "--date-format", "%Y%m%d", "--json", "--chart", str(chart)]
    run = CliRunner().invoke(main, CLI_BASE + args)
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert {"bgnbd", "gamma_gamma", "holdout", "per_customer", "by_frequency", "auc"} <= set(out)
    assert out["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01)
    assert out["bgnbd"]["alpha"] == pytest.approx(4.414, rel=0.01)
    assert out["bgnbd"]["a"] == pytest.approx(0.793, rel=0.01)
    assert out["bgnbd"]["b"] == pytest.approx(2.426, rel=0.01)
    assert out["gamma_gamma"]["p"] == pytest.approx(6.25, rel=0.01)
    assert out["gamma_gamma"]["q"] == pytest.approx(3.74, rel=0.01)
    assert out["gamma_gamma"]["gamma"] == pytest.approx(15.44, rel=0.01)
    assert out["holdout"]["actual_repeat_purchases"] == 1882
    assert abs(out["holdout"]["relative_error"]) < 0.15
    assert 0 < out["per_customer"]["mae"] < 1.5 and out["per_customer"]["correlation"] > 0.5
    assert [row["frequency"] for row in out["by_frequency"]] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert 0.7 < out["auc"] < 0.9
    assert out["chart"] == str(chart) and chart.read_bytes()[:4] == b"\x89PNG"
    assert out["data"]["n_customers"] == 2357


def test_cli_report_and_other_file_formats(cdnow: pd.DataFrame, tmp_path: Path) -> None:
    text = CliRunner().invoke(
        main, CLI_BASE + ["--transactions", str(CDNOW), "--names", NAMES, "--date-format", "%Y%m%d"]
    )
    assert text.exit_code == 0, text.output
    assert "Holdout repeat purchases: forecast 1,653" in text.output and "actual 1,882" in text.output
    assert "r=0.2426" in text.output and "7+" in text.output

    # Semicolon CSV with a header and ISO dates: the separator is sniffed.
    csv_path = tmp_path / "cdnow.csv"
    iso = cdnow.assign(date=pd.to_datetime(cdnow["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d"))
    iso.to_csv(csv_path, sep=";", index=False)
    sniffed = CliRunner().invoke(main, CLI_BASE + ["--transactions", str(csv_path), "--json"])
    assert sniffed.exit_code == 0, sniffed.output
    assert json.loads(sniffed.stdout)["holdout"]["actual_repeat_purchases"] == 1882

    parquet = tmp_path / "cdnow.parquet"
    iso.assign(date=pd.to_datetime(iso["date"])).to_parquet(parquet)
    days = CliRunner().invoke(main, CLI_BASE + ["--transactions", str(parquet), "--time-unit", "days", "--json"])
    assert days.exit_code == 0, days.output
    out = json.loads(days.stdout)
    assert out["bgnbd"]["alpha"] == pytest.approx(4.414 * 7, rel=0.01)  # same model, alpha in days
    weeks = json.loads(sniffed.stdout)["holdout"]["forecast_repeat_purchases"]
    assert out["holdout"]["forecast_repeat_purchases"] == pytest.approx(weeks, rel=1e-4)


def test_cli_errors_are_actionable(tmp_path: Path) -> None:
    headerless = CliRunner().invoke(main, CLI_BASE + ["--transactions", str(CDNOW)])
    assert headerless.exit_code != 0
    assert "no column(s)" in headerless.output and "--names" in headerless.output
    bad_sep = CliRunner().invoke(main, CLI_BASE + ["--transactions", str(CDNOW), "--sep", "x"])
    assert bad_sep.exit_code != 0 and "--sep" in bad_sep.output
    no_format = CliRunner().invoke(main, CLI_BASE + ["--transactions", str(CDNOW), "--names", "customer_id,a,date,b"])
    assert no_format.exit_code != 0
