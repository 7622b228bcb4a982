"""Synthetic `marts.churn_features` rows for benchmarks and tests.

Each customer has a latent engagement that drifts month to month; the features are noisy
read-outs of it (spend, purchase recency, calls, complaints ...) and churn in the label window
is drawn from a logistic model of engagement, open complaints beyond SLA, cancel-intent calls
and a spend drop. The numbers are plausible, not realistic; what matters is that the table has
the warehouse's columns, types, missing values and snapshot/label-window structure, and that
the label is learnable (a good model reaches an AUC around 0.8).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.churn.features import WAREHOUSE_CATEGORICAL, WAREHOUSE_NUMERIC

REGIONS = ("north", "northeast", "east", "central", "south", "southwest", "northwest")


def snapshot_dates(as_of: str | pd.Timestamp, n_snapshots: int) -> pd.DatetimeIndex:
    """`n_snapshots` month-end dates ending at the month end on or before `as_of`."""
    return pd.date_range(end=pd.Timestamp(as_of), periods=n_snapshots, freq="ME")


def synthetic_churn_features(
    n_customers: int,
    n_snapshots: int = 12,
    *,
    as_of: str | pd.Timestamp = "2025-12-31",
    horizon_days: int = 90,
    seed: int = 0,
    id_offset: int = 0,
) -> pd.DataFrame:
    """One row per customer per month-end snapshot, labelled where the window is complete.

    The label of a snapshot is null when snapshot + `horizon_days` is after the last snapshot
    (the as-of date), as the warehouse mart does.
    """
    rng = np.random.default_rng(seed)
    dates = snapshot_dates(as_of, n_snapshots)
    c, s = n_customers, n_snapshots
    n = c * s
    base = rng.normal(0.0, 1.0, c)
    drift = np.cumsum(rng.normal(0.0, 0.25, (c, s)), axis=1)
    engagement = (base[:, None] + drift).reshape(
        n
    )  # row = customer-major, snapshot-minor
    customer = np.repeat(np.arange(c, dtype=np.int64) + id_offset, s)
    snapshot = np.tile(np.arange(s), c)

    start_tenure = rng.gamma(2.0, 500.0, c)
    tenure = np.repeat(start_tenure, s) + 30.4 * snapshot
    value_draw = np.repeat(rng.normal(0.0, 1.0, c), s)
    tier = np.where(
        value_draw > 1.6, "vip", np.where(value_draw > 0.8, "major", "ordinary")
    )
    region = np.repeat(rng.choice(np.array(REGIONS), c), s)
    customer_type = np.repeat(
        np.where(rng.random(c) < 0.82, "individual", "business"), s
    )

    activity = np.exp(0.6 * engagement + 0.5 * value_draw)
    spend_30d = rng.gamma(1.5, 120.0 * activity / 1.5) * (rng.random(n) > 0.08)
    prior_monthly = rng.gamma(
        2.0, 120.0 * np.exp(0.6 * (engagement + 0.3) + 0.5 * value_draw) / 2.0
    )
    spend_90d = spend_30d + rng.gamma(2.0, prior_monthly)
    spend_365d = spend_90d + rng.gamma(3.0, 3.0 * prior_monthly)
    trend_30 = spend_30d / np.maximum(prior_monthly, 1.0) - 1.0
    trend_90 = spend_90d / np.maximum(3.0 * prior_monthly, 1.0) - 1.0
    txn_90 = rng.poisson(6.0 * activity)
    other_90 = rng.poisson(3.0 + 2.0 * activity)
    days_consumption = np.minimum(rng.exponential(12.0 / np.sqrt(activity)), tenure)
    days_consumption[txn_90 == 0] += 90.0
    days_txn = np.minimum(days_consumption, rng.exponential(8.0, n))

    stress = np.exp(-0.5 * engagement)
    complaints_365 = rng.poisson(0.5 * stress)
    complaints_90 = rng.binomial(complaints_365, 0.35)
    open_complaints = rng.binomial(complaints_90, 0.4)
    beyond_sla = rng.binomial(open_complaints, 0.5)
    longest_open = np.where(
        open_complaints > 0, rng.gamma(2.0, 8.0 + 6.0 * beyond_sla), 0.0
    )
    has_complaints = complaints_365 > 0
    resolved_share = np.where(has_complaints, rng.beta(6.0, 2.0, n), np.nan)
    satisfaction = np.where(
        has_complaints,
        np.clip(np.round(3.4 + 0.6 * engagement + rng.normal(0, 1, n)), 1, 5),
        np.nan,
    )
    calls_90 = rng.poisson(1.0 + 1.5 * stress)
    calls_30 = rng.binomial(calls_90, 0.36)
    cancel_calls = rng.poisson(0.06 * stress**2)
    transfers = rng.binomial(calls_90, 0.2)
    abandoned = rng.binomial(calls_90, 0.1)
    repeat_contacts = rng.binomial(calls_30, 0.3)
    digital = rng.beta(2.0 + np.exp(0.3 * engagement), 2.0)
    branch = (1.0 - digital) * rng.beta(2.0, 3.0, n)

    def score_1_to_5(values: np.ndarray) -> np.ndarray:
        ranks = pd.Series(values).rank(method="first", pct=True).to_numpy()
        return np.ceil(ranks * 5).clip(1, 5)

    logit = (
        -2.3
        - 0.9 * engagement
        + 0.7 * beyond_sla
        + 0.9 * cancel_calls
        + 0.25 * repeat_contacts
        + 0.4 * (trend_30 < -0.5)
        + 0.3 * (tier == "ordinary")
        - 0.15 * np.log1p(tenure / 365.0)
    )
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype("float64")
    label_end = dates[snapshot] + pd.Timedelta(days=horizon_days)
    churned[np.asarray(label_end > dates[-1])] = np.nan

    columns: dict[str, object] = {
        "customer_id": customer,
        "snapshot_date": dates[snapshot],
        "tenure_days": np.round(tenure),
        "days_since_last_consumption": np.round(days_consumption),
        "days_since_last_txn": np.round(days_txn),
        "consumption_txn_count_90d": txn_90,
        "non_consumption_txn_count_90d": other_90,
        "spend_30d": np.round(spend_30d, 2),
        "spend_90d": np.round(spend_90d, 2),
        "spend_365d": np.round(spend_365d, 2),
        "spend_trend_30d_vs_prior_90d": np.round(trend_30, 4),
        "spend_trend_90d_vs_prior_90d": np.round(trend_90, 4),
        "recency_score": score_1_to_5(-days_consumption),
        "frequency_score": score_1_to_5(txn_90 + rng.random(n)),
        "monetary_score": score_1_to_5(spend_90d),
        "complaints_90d": complaints_90,
        "complaints_365d": complaints_365,
        "open_complaints": open_complaints,
        "open_complaints_beyond_sla": beyond_sla,
        "longest_open_complaint_days": np.round(longest_open),
        "share_resolved_within_sla": np.round(resolved_share, 3),
        "last_satisfaction": satisfaction,
        "calls_30d": calls_30,
        "calls_90d": calls_90,
        "cancel_intent_calls_90d": cancel_calls,
        "transfers_90d": transfers,
        "abandoned_calls_90d": abandoned,
        "repeat_contacts_30d": repeat_contacts,
        "digital_share_90d": np.round(digital, 3),
        "branch_share_90d": np.round(branch, 3),
        "value_tier": tier,
        "region": region,
        "customer_type": customer_type,
        "churned": pd.array(churned, dtype="Float64").astype("Int8"),
        "is_eligible": rng.random(n) < 0.97,
    }
    frame = pd.DataFrame(columns)
    for column in WAREHOUSE_CATEGORICAL:
        frame[column] = frame[column].astype("string")
    assert set(WAREHOUSE_NUMERIC) <= set(frame.columns)
    return frame
