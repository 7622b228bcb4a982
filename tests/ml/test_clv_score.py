"""score_customers: what the warehouse asset gets, including the awkward customers and fallbacks."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.clv import (
    BgNbdParams,
    ClvConfig,
    GammaGammaParams,
    bgnbd,
    customer_lifetime_value,
    gamma_gamma,
    score_customers,
    simulate_transactions,
)
from ml.clv.clv import period_edges
from ml.clv.score import fit_sample

CDNOW = Path(__file__).resolve().parents[1] / "data" / "CDNOW_sample.txt"
PER_DAY = BgNbdParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = GammaGammaParams(6.25, 3.74, 15.44)
OUTPUT_COLUMNS = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases_365d",
    "expected_avg_order_value",
    "clv_365d",
]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = pd.read_csv(
        CDNOW, sep=r"\s+", header=None, names=["customer_id", "sample_id", "txn_date", "cds", "amount"],
        dtype={"customer_id": str, "txn_date": str},
    )  # fmt: skip
    frame["txn_date"] = pd.to_datetime(frame["txn_date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_transactions(3000, PER_DAY, SPEND, start="2023-01-01", as_of="2024-06-30", seed=5).rename(
        columns={"txn_at": "txn_date"}
    )


def test_cdnow_scores_in_days(cdnow: pd.DataFrame) -> None:
    scores = score_customers(cdnow, "1997-09-30")
    meta = scores.metadata
    assert list(scores.customers.columns) == OUTPUT_COLUMNS
    assert len(scores.customers) == meta.n_customers == 2357
    assert meta.converged and not meta.fallback_used and meta.fallbacks == []
    assert (meta.purchase_model, meta.spend_model, meta.time_unit) == ("bgnbd", "gamma_gamma", "days")
    # Days rescale alpha only: the weekly estimates r=0.243, alpha=4.414 become alpha=30.9 per day.
    fitted = meta.purchase_params
    assert fitted["r"] == pytest.approx(0.243, rel=0.01) and fitted["alpha"] == pytest.approx(4.414 * 7, rel=0.01)
    assert meta.spend_params["p"] == pytest.approx(6.25, rel=0.01)
    assert meta.n_fit == 2357 and meta.n_fit_spend == 946 and not meta.sampled
    assert meta.n_transactions == 4960 and meta.n_transactions_after_as_of == 1959
    row = scores.customers.set_index("customer_id").loc["00004"]  # x=2, t_x=213 days, T=272 days
    params = BgNbdParams(**fitted)
    assert row["expected_purchases_365d"] == pytest.approx(float(bgnbd.expected_purchases(params, 365, 2, 213, 272)))
    assert row["p_alive"] == pytest.approx(float(bgnbd.p_alive(params, 2, 213, 272)))
    spend = GammaGammaParams(**meta.spend_params)
    assert row["expected_avg_order_value"] == pytest.approx(
        float(gamma_gamma.expected_spend(spend, 2, row["monetary_value"]))
    )
    assert set(meta.timings) >= {"summarise_s", "fit_score_purchases_s", "fit_score_spend_s", "total_s"}
    assert meta.to_dict()["fits"]["bgnbd"]["converged"] is True


def test_clv_is_discounted_margin_times_spend_times_purchases(cdnow: pd.DataFrame) -> None:
    plain = score_customers(cdnow, "1997-09-30", config=ClvConfig(annual_discount_rate=0.0, gross_margin=1.0)).customers
    np.testing.assert_allclose(plain["clv_365d"], plain["expected_purchases_365d"] * plain["expected_avg_order_value"])
    discounted = score_customers(cdnow, "1997-09-30", config=ClvConfig(annual_discount_rate=0.10)).customers
    ratio = discounted["clv_365d"] / plain["clv_365d"]
    # Monthly discounting at 10% a year: every month's purchases lose between 0.8% and 10%.
    assert ratio.between(1 / 1.1, 1 / 1.1 ** (1 / 12)).all()
    margin = score_customers(cdnow, "1997-09-30", config=ClvConfig(annual_discount_rate=0.10, gross_margin=0.3))
    np.testing.assert_allclose(margin.customers["clv_365d"], 0.3 * discounted["clv_365d"])
    assert margin.metadata.model_version != score_customers(cdnow, "1997-09-30").metadata.model_version


def test_discounting_periods_are_months_ending_at_the_horizon() -> None:
    edges = period_edges(365.0)
    assert len(edges) == 12 and edges[-1] == 365.0 and edges[0] == pytest.approx(365.25 / 12)
    assert period_edges(52.0, unit_days=7.0)[-1] == 52.0
    # Constant-rate model: CLV equals the discounted sum of 12 equal monthly slices (last one short).
    from ml.clv.fallback import PooledRate

    model = PooledRate(rate=0.1)
    value = customer_lifetime_value(model, 10.0, 0, 0, 100, horizon=365.0, annual_discount_rate=0.2, gross_margin=0.5)
    slices = np.diff(np.r_[0.0, edges]) * 0.1
    expected = 0.5 * 10.0 * np.sum(slices * 1.2 ** (-edges / 365.25))
    assert float(value) == pytest.approx(expected)


def test_model_version_is_deterministic_and_follows_the_data(cdnow: pd.DataFrame) -> None:
    first = score_customers(cdnow, "1997-09-30").metadata.model_version
    shuffled = cdnow.sample(frac=1.0, random_state=1)
    assert score_customers(shuffled, "1997-09-30").metadata.model_version == first
    assert re.fullmatch(r"clv-\d+\.\d+\.\d+-[0-9a-f]{12}", first)
    assert score_customers(cdnow, "1997-12-31").metadata.model_version != first


def test_awkward_customers_are_scored_sensibly(simulated: pd.DataFrame) -> None:
    extra = pd.DataFrame(
        [
            ("once", "2024-01-15", 30.0),  # one-time buyer
            ("today", "2024-06-30", 12.0),  # first purchase on as_of: T = 0
            ("returner", "2024-01-02", 80.0),
            ("returner", "2024-02-01", 40.0),
            ("returner", "2024-03-01", 40.0),
            ("returner", "2024-03-05", -95.0),  # returns more than the two repeat purchases
            ("freebie", "2024-02-01", 25.0),
            ("freebie", "2024-03-01", 0.0),  # repeat purchase worth nothing
            ("refund_only", "2024-05-01", -10.0),
        ],
        columns=["customer_id", "txn_date", "amount"],
    )
    extra["txn_date"] = pd.to_datetime(extra["txn_date"])
    scores = score_customers(pd.concat([simulated, extra], ignore_index=True), "2024-06-30")
    meta = scores.metadata
    assert meta.converged, meta.fallbacks
    c = scores.customers.set_index("customer_id")
    assert "refund_only" not in c.index and meta.n_customers_without_purchase == 1
    numeric = c.drop(columns=["monetary_value"])
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()
    params, spend = BgNbdParams(**meta.purchase_params), GammaGammaParams(**meta.spend_params)

    assert c.loc["once", "p_alive"] == 1.0  # BG/NBD: nobody drops out before a repeat purchase
    assert c.loc["once", "expected_avg_order_value"] == pytest.approx(spend.population_mean)
    new = float(bgnbd.expected_purchases_new_customer(params, 365.0))
    assert c.loc["today", "T"] == 0 and c.loc["today", "expected_purchases_365d"] == pytest.approx(new)
    # Net repeat spend <= 0: left out of the spend fit, scored with zero observed spend.
    assert meta.n_spend_not_positive == 2
    zero_spend = spend.p * spend.gamma / (spend.p * 2 + spend.q - 1)
    assert c.loc["returner", "monetary_value"] == pytest.approx(-7.5)
    assert c.loc["returner", "expected_avg_order_value"] == pytest.approx(zero_spend)
    assert c.loc["freebie", "expected_avg_order_value"] == pytest.approx(
        spend.p * spend.gamma / (spend.p + spend.q - 1)
    )
    assert (c["clv_365d"] >= 0).all()


def test_fit_sample_is_deterministic_order_free_and_sized() -> None:
    ids = pd.Index([f"C{i:05d}" for i in range(5000)])
    mask = fit_sample(ids, 1200)
    assert mask.sum() == 1200
    reordered = ids[::-1]
    assert set(reordered[fit_sample(reordered, 1200)]) == set(ids[mask])
    grown = ids.append(pd.Index([f"N{i:05d}" for i in range(100)]))
    kept = set(grown[fit_sample(grown, 1200)])
    assert len(kept & set(ids[mask])) >= 1100  # newcomers displace only a few


def test_large_populations_are_fitted_on_a_sample_and_everyone_is_scored(simulated: pd.DataFrame) -> None:
    config = ClvConfig(max_fit_customers=1000)
    scores = score_customers(simulated, "2024-06-30", config=config)
    meta = scores.metadata
    assert meta.sampled and meta.n_fit == 1000 and meta.n_customers == len(scores.customers) > 2500
    assert meta.sample_method is not None and "hash" in meta.sample_method
    assert meta.fits["bgnbd"]["n_customers"] == 1000
    assert scores.customers["expected_purchases_365d"].notna().all()
    again = score_customers(simulated.sample(frac=1.0, random_state=3), "2024-06-30", config=config)
    assert again.metadata.purchase_params == pytest.approx(meta.purchase_params, rel=1e-6)


def test_optimiser_failure_falls_back_and_says_so(simulated: pd.DataFrame) -> None:
    scores = score_customers(simulated, "2024-06-30", config=ClvConfig(max_iter=1))
    meta = scores.metadata
    assert meta.fallback_used and not meta.converged
    assert (meta.purchase_model, meta.spend_model) == ("empirical", "empirical")
    assert any(m.startswith("BG/NBD fit failed: the optimiser stopped without converging") for m in meta.fallbacks)
    assert any(m.startswith("NBD fit failed") for m in meta.fallbacks)
    assert any(m.startswith("Gamma-Gamma fit failed") for m in meta.fallbacks)
    c = scores.customers
    assert c["p_alive"].isna().all()  # not modelled, rather than a made-up number
    rate = meta.purchase_params["rate"]
    np.testing.assert_allclose(c["expected_purchases_365d"], 365 * rate)
    assert meta.fits["bgnbd"]["converged"] is False
    assert meta.model_version.startswith("clv-")


def test_no_dropout_population_falls_back_to_nbd() -> None:
    rng = np.random.default_rng(8)
    rows = []
    for i in range(2000):
        birth = rng.uniform(0, 200)
        rate = rng.gamma(0.8, 1 / 20)  # per day, nobody ever leaves
        t = birth
        rows.append((f"c{i}", birth, 20.0))
        while True:
            t += rng.exponential(1 / rate)
            if t >= 400:
                break
            rows.append((f"c{i}", t, float(rng.gamma(5, 4))))
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    frame["txn_date"] = pd.Timestamp("2023-01-01") + pd.to_timedelta(frame["day"], unit="D")
    scores = score_customers(frame, pd.Timestamp("2023-01-01") + pd.Timedelta(days=399))
    meta = scores.metadata
    assert meta.purchase_model == "nbd", meta.fallbacks
    assert meta.fallbacks[0].startswith("BG/NBD fit failed") and "NBD" in meta.fallbacks[0]
    assert meta.spend_model == "gamma_gamma"
    assert meta.purchase_params["r"] == pytest.approx(0.8, rel=0.2)
    c = scores.customers
    assert c["p_alive"].isna().all()
    r, alpha = meta.purchase_params["r"], meta.purchase_params["alpha"]
    np.testing.assert_allclose(c["expected_purchases_365d"], (r + c["frequency"]) / (alpha + c["T"]) * 365)


def test_nobody_came_back_gives_zero_expected_purchases_with_reasons() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(200)],
            "txn_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(200) % 90, unit="D"),
            "amount": 10.0,
        }
    )
    scores = score_customers(frame, "2024-06-30")
    meta = scores.metadata
    assert meta.purchase_model == "empirical" and meta.purchase_params["rate"] == 0.0
    assert "no customer made a repeat purchase" in meta.fallbacks[0]
    assert (scores.customers["expected_purchases_365d"] == 0).all()
    assert meta.spend_model == "empirical"  # no repeat buyer to learn spend from
    assert (scores.customers["expected_avg_order_value"] == 10.0).all()


def test_too_few_customers_and_no_history_are_reported() -> None:
    few = pd.DataFrame(
        {"customer_id": ["a", "a", "b"], "txn_date": ["2024-01-01", "2024-02-01", "2024-01-15"], "amount": 5.0}
    )
    scores = score_customers(few, "2024-03-01")
    assert scores.metadata.purchase_model == "empirical"
    assert "only 2 customers to fit on (minimum 30)" in scores.metadata.fallbacks[0]
    assert scores.customers["expected_purchases_365d"].gt(0).all()

    first_day = pd.DataFrame({"customer_id": [f"c{i}" for i in range(50)], "txn_date": "2024-03-01", "amount": 5.0})
    scores = score_customers(first_day, "2024-03-01")
    assert any("every T is 0" in m for m in scores.metadata.fallbacks)
    assert scores.customers["clv_365d"].isna().all()  # unknown, not zero


def test_heavy_tailed_spend_falls_back_to_own_means() -> None:
    rng = np.random.default_rng(0)
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(600)],
            "frequency": rng.integers(1, 6, 600),
            "recency": 50.0,
            "T": 100.0,
            "monetary_value": (rng.pareto(0.7, 600) + 1) * 10,  # no finite mean
        }
    )
    customers["total_spend"] = customers["monetary_value"] * (customers["frequency"] + 1)
    from ml.clv import score_rfm

    scores = score_rfm(customers, config=ClvConfig(min_fit_customers=10_000))  # purchases: empirical
    assert scores.metadata.spend_model == "empirical"
    assert any(m.startswith("Gamma-Gamma fit failed") for m in scores.metadata.fallbacks)
    np.testing.assert_allclose(scores.customers["expected_avg_order_value"], customers["monetary_value"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gross_margin": 30}, "gross_margin is a fraction"),
        ({"annual_discount_rate": -0.1}, "annual_discount_rate is a fraction"),
        ({"horizon_days": 0}, "horizon_days must be positive"),
    ],
)
def test_config_is_validated(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClvConfig(**kwargs)


def test_metadata_is_json_ready(cdnow: pd.DataFrame) -> None:
    import json

    meta = score_customers(cdnow.head(50), "1997-09-30").metadata.to_dict()
    text = json.dumps(meta, allow_nan=False)
    assert "model_version" in text and not math.isnan(meta["gross_margin"])
