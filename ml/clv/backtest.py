"""Calibration/holdout backtest of BG/NBD + Gamma-Gamma on any transactions table.

Fit on transactions up to `calibration_end` (inclusive), forecast each calibration customer's
repeat purchases over (calibration_end, holdout_end], and compare with what they did. Customers
whose first purchase falls in the holdout are not part of the test (they had no calibration
history); their number is reported. The same daily netting and purchase-day rules as scoring
apply (`ml.clv.summary`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ml.clv import bgnbd, gamma_gamma
from ml.clv._json import json_safe
from ml.clv._stats import roc_auc
from ml.clv.summary import (
    DateLike,
    daily_net,
    day_to_timestamp,
    summarise_daily,
    time_unit_days,
    to_day,
)

logger = logging.getLogger(__name__)

FREQUENCY_BUCKETS = ("0", "1", "2", "3", "4", "5", "6", "7+")


@dataclass(frozen=True)
class BacktestResult:
    settings: dict[str, Any]
    data: dict[str, Any]
    bgnbd: bgnbd.BgNbdFit
    gamma_gamma: gamma_gamma.GammaGammaFit | None
    customers: pd.DataFrame  # one row per calibration customer: summary, forecast, actual
    holdout: dict[str, float]
    per_customer: dict[str, float]
    by_frequency: pd.DataFrame
    auc: float
    spend: dict[str, float] | None
    cumulative: pd.DataFrame  # by week: actual, model (from each first purchase), forecast

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable summary (what `crm-warehouse clv backtest --json` prints)."""
        gg = self.gamma_gamma
        cumulative = self.cumulative.assign(date=self.cumulative["date"].dt.date.astype(str))
        return json_safe(
            {
                "settings": self.settings,
                "data": self.data,
                "bgnbd": {
                    **self.bgnbd.params.as_dict(),
                    "log_likelihood": self.bgnbd.log_likelihood,
                    "converged": self.bgnbd.converged,
                    "message": self.bgnbd.message,
                    "n_customers": self.bgnbd.n_customers,
                },
                "gamma_gamma": None
                if gg is None
                else {
                    **gg.params.as_dict(),
                    "log_likelihood": gg.log_likelihood,
                    "converged": gg.converged,
                    "message": gg.message,
                    "n_customers": gg.n_customers,
                },
                "holdout": self.holdout,
                "per_customer": self.per_customer,
                "by_frequency": self.by_frequency.to_dict(orient="records"),
                "auc": self.auc,
                "spend": self.spend,
                "cumulative_by_week": cumulative.to_dict(orient="records"),
            }
        )


def backtest(
    transactions: pd.DataFrame,
    *,
    calibration_end: DateLike,
    holdout_end: DateLike,
    customer_col: str = "customer_id",
    date_col: str = "txn_date",
    amount_col: str = "amount",
    date_format: str | None = None,
    time_unit: str = "weeks",
    min_spend_fit_customers: int = 30,
) -> BacktestResult:
    """Fit on the calibration period, forecast the holdout, and measure the forecast."""
    unit = time_unit_days(time_unit)
    cal_day, hold_day = to_day(calibration_end), to_day(holdout_end)
    if hold_day <= cal_day:
        raise ValueError(f"holdout end {holdout_end} must be after calibration end {calibration_end}")
    daily = daily_net(
        transactions, customer_col=customer_col, date_col=date_col, amount_col=amount_col, date_format=date_format
    )
    if len(daily.day) and int(daily.day.min()) > cal_day:
        raise ValueError(f"no transaction on or before the calibration end {calibration_end}")
    cal = summarise_daily(daily, calibration_end, time_unit=time_unit)
    frame = cal.customers.copy()
    codes = daily.labels.get_indexer(frame["customer_id"])
    x = frame["frequency"].to_numpy(dtype=float)
    t_x = frame["recency"].to_numpy(dtype=float)
    T = frame["T"].to_numpy(dtype=float)
    m_x = frame["monetary_value"].to_numpy(dtype=float)
    horizon = (hold_day - cal_day) / unit

    # What calibration customers did in the holdout.
    in_holdout = (daily.day > cal_day) & (daily.day <= hold_day)
    row_of_code = np.full(len(daily.labels), -1, dtype=np.int64)
    row_of_code[codes] = np.arange(len(frame))
    h_row = row_of_code[daily.code[in_holdout]]
    h_net = daily.net[in_holdout]
    h_buy = daily.is_purchase[in_holdout]
    cohort = h_row >= 0
    actual = np.bincount(h_row[cohort & h_buy], minlength=len(frame)).astype(float)
    actual_spend = np.bincount(h_row[cohort], weights=h_net[cohort], minlength=len(frame))
    first_days = frame["first_purchase_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    newcomers = np.unique(daily.code[in_holdout][~cohort & h_buy])

    fit = bgnbd.fit(x, t_x, T)
    if not fit.converged:
        logger.warning("BG/NBD calibration fit did not converge: %s", fit.message)
    expected = bgnbd.expected_purchases(fit.params, horizon, x, t_x, T)
    alive = bgnbd.p_alive(fit.params, x, t_x, T)

    usable = gamma_gamma.usable_for_fit(x, m_x)
    gg_fit = None
    spend_expected = np.full(len(frame), np.nan)
    if usable.sum() >= min_spend_fit_customers:
        gg_fit = gamma_gamma.fit(x[usable], m_x[usable])
        if not gg_fit.converged:
            logger.warning("Gamma-Gamma calibration fit did not converge: %s", gg_fit.message)
        spend_expected = gamma_gamma.expected_spend(gg_fit.params, x, m_x)
    else:
        logger.warning("only %d repeat buyers with positive spend: Gamma-Gamma not fitted", int(usable.sum()))

    frame = frame.assign(
        p_alive=alive,
        expected_holdout_purchases=expected,
        actual_holdout_purchases=actual,
        expected_avg_order_value=spend_expected,
        actual_holdout_spend=actual_spend,
    )
    forecast_total, actual_total = float(expected.sum()), float(actual.sum())
    holdout = {
        "forecast_repeat_purchases": forecast_total,
        "actual_repeat_purchases": actual_total,
        "relative_error": (forecast_total - actual_total) / actual_total if actual_total else math.nan,
    }
    err = expected - actual
    per_customer = {
        "mae": float(np.mean(np.abs(err))) if len(err) else math.nan,
        "rmse": float(np.sqrt(np.mean(err**2))) if len(err) else math.nan,
        "correlation": _pearson(expected, actual),
    }
    bought_again = actual > 0
    auc = roc_auc(bought_again, expected)
    spend = None if gg_fit is None else _spend_metrics(expected, spend_expected, actual, actual_spend)
    cumulative = _cumulative_by_week(daily, frame, first_days, codes, cal_day, hold_day, unit, fit.params)

    settings = {
        "calibration_end": day_to_timestamp(cal_day).date().isoformat(),
        "holdout_end": day_to_timestamp(hold_day).date().isoformat(),
        "time_unit": time_unit,
        "holdout_length": horizon,
    }
    data = {
        "n_transactions": int(daily.rows.sum()),
        "n_customers": len(frame),
        "n_repeat_buyers": int((x > 0).sum()),
        "n_customers_without_purchase": cal.n_customers_without_purchase,
        "n_new_customers_in_holdout": len(newcomers),
        "calibration_start": day_to_timestamp(int(first_days.min())).date().isoformat() if len(frame) else None,
    }
    return BacktestResult(
        settings,
        data,
        fit,
        gg_fit,
        frame,
        holdout,
        per_customer,
        by_frequency(x, expected, actual),
        auc,
        spend,
        cumulative,
    )


def _pearson(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def by_frequency(x: NDArray[np.float64], expected: NDArray[np.float64], actual: NDArray[np.float64]) -> pd.DataFrame:
    """Forecast vs actual holdout purchases by calibration frequency 0, 1, ..., 6, 7+."""
    bucket = np.minimum(x, 7).astype(int)
    rows = []
    for k, label in enumerate(FREQUENCY_BUCKETS):
        sel = bucket == k
        n = int(sel.sum())
        rows.append(
            {
                "frequency": label,
                "customers": n,
                "forecast_mean": float(expected[sel].mean()) if n else math.nan,
                "actual_mean": float(actual[sel].mean()) if n else math.nan,
                "forecast_total": float(expected[sel].sum()),
                "actual_total": float(actual[sel].sum()),
            }
        )
    return pd.DataFrame(rows)


def _spend_metrics(
    expected: NDArray[np.float64],
    spend_expected: NDArray[np.float64],
    actual: NDArray[np.float64],
    actual_spend: NDArray[np.float64],
) -> dict[str, float]:
    buyers = actual > 0
    realised_aov = actual_spend[buyers] / actual[buyers]
    return {
        "forecast_revenue": float(np.sum(expected * spend_expected)),
        "actual_revenue": float(actual_spend.sum()),
        "holdout_buyers": int(buyers.sum()),
        "aov_mae": float(np.mean(np.abs(spend_expected[buyers] - realised_aov))) if buyers.any() else math.nan,
        "aov_correlation": _pearson(spend_expected[buyers], realised_aov),
    }


def _cumulative_by_week(
    daily: Any,
    frame: pd.DataFrame,
    first_days: NDArray[np.int64],
    codes: NDArray[np.int64],
    cal_day: int,
    hold_day: int,
    unit: float,
    params: bgnbd.BgNbdParams,
) -> pd.DataFrame:
    """Cumulative repeat purchases at weekly boundaries, actual vs model.

    `model`: the BG/NBD as fitted, run from each customer's first purchase (FHL 2005, fig. 2).
    `forecast`: actual up to the calibration end, then the conditional expectation per customer.
    Boundaries are exclusive day numbers: week k ends before day start + 7k.
    """
    if len(frame) == 0:
        return pd.DataFrame(columns=["week", "date", "actual", "model", "forecast"])
    start = int(first_days.min())
    end = hold_day + 1
    edges = np.unique(np.r_[np.arange(start + 7, end, 7), cal_day + 1, end])
    edges = edges[edges > start]

    # Actual repeat purchase days of calibration customers, calibration and holdout alike.
    first_of_code = np.full(len(daily.labels), np.iinfo(np.int64).max, dtype=np.int64)
    first_of_code[codes] = first_days
    repeat = daily.is_purchase & (daily.day > first_of_code[daily.code]) & (daily.day <= hold_day)
    repeat_days = np.sort(daily.day[repeat])
    actual = np.searchsorted(repeat_days, edges, side="left").astype(float)

    # Unconditional model: customers grouped by first purchase day.
    births, counts = np.unique(first_days, return_counts=True)
    elapsed = (edges[:, None] - 1 - births[None, :]) / unit
    grid = bgnbd.expected_purchases_new_customer(params, np.maximum(elapsed, 0.0))
    model = (grid * counts[None, :]).sum(axis=1)

    # Conditional forecast from the calibration end.
    forecast = np.full(len(edges), np.nan)
    after = edges >= cal_day + 1
    base = float(actual[edges == cal_day + 1][0])
    x = frame["frequency"].to_numpy(dtype=float)
    t_x = frame["recency"].to_numpy(dtype=float)
    T = frame["T"].to_numpy(dtype=float)
    for i in np.flatnonzero(after):
        horizon = (edges[i] - 1 - cal_day) / unit
        forecast[i] = base + float(bgnbd.expected_purchases(params, horizon, x, t_x, T).sum())
    return pd.DataFrame(
        {
            "week": (edges - start) / 7.0,
            "date": day_to_timestamp(edges - 1),
            "actual": actual,
            "model": model,
            "forecast": forecast,
        }
    )


def plot_cumulative(result: BacktestResult, path: str | Path) -> None:
    """Write a PNG of cumulative repeat purchases by week: actual, model and holdout forecast."""
    # The object-oriented API with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    c = result.cumulative
    fig = Figure(figsize=(9, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(c["week"], c["actual"], color="black", linewidth=2, label="actual")
    ax.plot(c["week"], c["model"], color="tab:blue", linestyle="--", label="BG/NBD from first purchase")
    ax.plot(c["week"], c["forecast"], color="tab:red", linestyle=":", linewidth=2, label="conditional forecast")
    cal_week = c.loc[c["forecast"].notna(), "week"].min()
    ax.axvline(cal_week, color="grey", linewidth=1)
    ax.annotate("calibration | holdout", (cal_week, 0), xytext=(4, 4), textcoords="offset points", color="grey")
    h = result.holdout
    ax.set_title(
        f"Cumulative repeat purchases: holdout forecast {h['forecast_repeat_purchases']:,.0f} "
        f"vs actual {h['actual_repeat_purchases']:,.0f}"
    )
    ax.set_xlabel("week")
    ax.set_ylabel("cumulative repeat purchases")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, format="png")
