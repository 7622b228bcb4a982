"""Score every customer: P(alive), expected purchases, expected order value and CLV, with fit metadata.

This is the function the warehouse asset calls. Times are in days. The flow:

1. Summarise transactions at `as_of` (`ml.clv.summary`: daily netting, purchase days, spend).
2. Choose the customers to fit on: everyone, or above `max_fit_customers` a deterministic
   sample of that size (the customers whose 64-bit hash of `str(customer_id)` is smallest).
3. Fit BG/NBD; on failure fall back to NBD, then to a pooled empirical rate.
4. Fit Gamma-Gamma on repeat buyers with positive mean spend; on failure fall back to each
   customer's own mean spend per purchase day.
5. Score everyone; predictions that come out non-finite also trigger the fallback.

Every fallback is logged as a warning and recorded in the metadata with its reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ml.clv import bgnbd, gamma_gamma
from ml.clv._json import json_safe
from ml.clv.clv import PurchaseModel, discounted_purchases
from ml.clv.fallback import empirical_spend, fit_nbd, pooled_rate
from ml.clv.summary import DateLike, RfmSummary, summarise_transactions, time_unit_days

logger = logging.getLogger(__name__)

# Bump when the scoring math or its conventions change; it is part of every model_version.
CODE_VERSION = "1.0.0"

SAMPLE_METHOD = (
    "customers with the smallest pandas.util.hash_array(str(customer_id)) (64-bit SipHash, fixed key): "
    "deterministic, and stable as the population grows"
)


@dataclass(frozen=True)
class ClvConfig:
    """Tunables of the CLV scoring. Defaults are documented in docs/clv.md."""

    horizon_days: float = 365.0
    annual_discount_rate: float = 0.10
    gross_margin: float = 1.0  # 1.0: CLV in revenue terms
    periods_per_year: int = 12  # discount monthly
    max_fit_customers: int = 200_000  # above this, fit on a deterministic sample of this size
    min_fit_customers: int = 30  # fewer: no BG/NBD/NBD fit, pooled empirical rate
    min_spend_fit_customers: int = 30  # fewer usable repeat buyers: empirical spend
    max_iter: int = 500

    def __post_init__(self) -> None:
        if not self.horizon_days > 0:
            raise ValueError(f"horizon_days must be positive, got {self.horizon_days}")
        if not 0 <= self.annual_discount_rate < 10:
            raise ValueError(f"annual_discount_rate is a fraction (0.10 = 10%), got {self.annual_discount_rate}")
        if not 0 < self.gross_margin <= 1:
            raise ValueError(f"gross_margin is a fraction in (0, 1] (0.3 = 30%), got {self.gross_margin}")
        if self.max_fit_customers < max(self.min_fit_customers, 1):
            raise ValueError("max_fit_customers must be at least min_fit_customers")


@dataclass
class ClvMetadata:
    """How the scores were produced; JSON-ready through `to_dict()`."""

    model_version: str
    code_version: str
    as_of: str | None
    time_unit: str
    horizon_days: float
    annual_discount_rate: float
    gross_margin: float
    periods_per_year: int
    purchase_model: str  # bgnbd | nbd | empirical
    purchase_params: dict[str, float]
    spend_model: str  # gamma_gamma | empirical
    spend_params: dict[str, float]
    log_likelihood: float  # of the purchase model used (NaN for the empirical rate)
    converged: bool  # True when both fits converged and no fallback was needed
    fallback_used: bool
    fallbacks: list[str]
    n_customers: int
    n_fit: int
    n_fit_spend: int
    sampled: bool
    sample_method: str | None
    n_spend_not_positive: int
    spend_frequency_correlation: float
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)  # every fit attempted
    n_transactions: int | None = None
    n_transactions_after_as_of: int | None = None
    n_customers_without_purchase: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


@dataclass(frozen=True)
class ClvScores:
    """One row per customer with a purchase up to `as_of`, and the metadata of the fit."""

    customers: pd.DataFrame
    metadata: ClvMetadata


def horizon_label(horizon_days: float) -> str:
    return f"{int(horizon_days)}d" if float(horizon_days).is_integer() else f"{horizon_days:g}d"


def fit_sample(customer_ids: pd.Series | pd.Index, size: int) -> NDArray[np.bool_]:
    """Deterministic sample of `size` customers: the smallest 64-bit hashes of str(customer_id).

    The same ids always give the same sample, whatever their order, and a customer in today's
    sample stays in it tomorrow unless newcomers with smaller hashes push them out.
    """
    n = len(customer_ids)
    mask = np.zeros(n, dtype=bool)
    if size >= n:
        mask[:] = True
        return mask
    hashes = pd.util.hash_array(np.asarray(pd.Index(customer_ids).astype(str), dtype=object))
    mask[np.argpartition(hashes, size - 1)[:size]] = True
    return mask


def model_version(
    purchase: PurchaseModel, spend_model: str, spend_params: dict[str, float], config: ClvConfig, time_unit: str
) -> str:
    """`clv-<code version>-<12 hex>` from the code version, both models' parameters and the settings."""
    payload = {
        "code": CODE_VERSION,
        "purchase": [purchase.name, {k: f"{v:.10g}" for k, v in purchase.as_dict().items()}],
        "spend": [spend_model, {k: f"{v:.10g}" for k, v in spend_params.items()}],
        "time_unit": time_unit,
        "horizon_days": f"{config.horizon_days:.10g}",
        "annual_discount_rate": f"{config.annual_discount_rate:.10g}",
        "gross_margin": f"{config.gross_margin:.10g}",
        "periods_per_year": config.periods_per_year,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"clv-{CODE_VERSION}-{digest}"


def score_customers(
    transactions: pd.DataFrame,
    as_of: DateLike,
    *,
    customer_col: str = "customer_id",
    date_col: str = "txn_date",
    amount_col: str = "amount",
    date_format: str | None = None,
    config: ClvConfig | None = None,
) -> ClvScores:
    """Fit and score CLV from consumption transactions up to and including `as_of`.

    `amount_col` holds signed net amounts (purchases positive, refunds negative); rows of one
    customer on one day are netted here. Output times (recency, T) are in days.
    """
    began = time.perf_counter()
    summary = summarise_transactions(
        transactions, as_of, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
        date_format=date_format, time_unit="days",
    )  # fmt: skip
    summarised = time.perf_counter() - began
    scores = score_summary(summary, config=config)
    scores.metadata.timings = {"summarise_s": summarised, **scores.metadata.timings}
    scores.metadata.timings["total_s"] = time.perf_counter() - began
    return scores


def score_summary(summary: RfmSummary, *, config: ClvConfig | None = None) -> ClvScores:
    """Fit and score from an `RfmSummary` (see `score_rfm` for a plain DataFrame)."""
    scores = score_rfm(summary.customers, as_of=summary.as_of, time_unit=summary.time_unit, config=config)
    scores.metadata.n_transactions = summary.n_transactions
    scores.metadata.n_transactions_after_as_of = summary.n_transactions_after_as_of
    scores.metadata.n_customers_without_purchase = summary.n_customers_without_purchase
    return scores


def score_rfm(
    customers: pd.DataFrame,
    *,
    as_of: DateLike | None = None,
    time_unit: str = "days",
    config: ClvConfig | None = None,
) -> ClvScores:
    """Fit and score from per-customer columns customer_id, frequency, recency, T, monetary_value
    and total_spend (as produced by `summarise_transactions`; recency and T in `time_unit`)."""
    config = config or ClvConfig()
    unit = time_unit_days(time_unit)
    horizon = config.horizon_days / unit
    began = time.perf_counter()
    required = ["customer_id", "frequency", "recency", "T", "monetary_value", "total_spend"]
    missing = [c for c in required if c not in customers.columns]
    if missing:
        raise ValueError(f"customer summary lacks column(s) {missing}; build it with ml.clv.summarise_transactions")
    x = customers["frequency"].to_numpy(dtype=float)
    t_x = customers["recency"].to_numpy(dtype=float)
    T = customers["T"].to_numpy(dtype=float)
    m_x = customers["monetary_value"].to_numpy(dtype=float)
    total_spend = customers["total_spend"].to_numpy(dtype=float)
    bgnbd.check_rfm(x, t_x, T)

    n = len(customers)
    sampled = n > config.max_fit_customers
    in_fit = fit_sample(customers["customer_id"], config.max_fit_customers) if sampled else np.ones(n, dtype=bool)
    if sampled:
        logger.info("fitting on a deterministic sample of %d of %d customers", config.max_fit_customers, n)
    fits: dict[str, dict[str, Any]] = {}
    fallbacks: list[str] = []

    # Purchases: try each model in turn until one fits and predicts finite values for everyone.
    t0 = time.perf_counter()
    purchase, log_lik, discounted, expected, alive = _purchase_predictions(
        x, t_x, T, in_fit, horizon=horizon, unit=unit, config=config, fits=fits, fallbacks=fallbacks
    )
    t_purchase = time.perf_counter() - t0

    # Spend.
    t0 = time.perf_counter()
    usable = gamma_gamma.usable_for_fit(x, m_x)
    n_not_positive = int(np.sum((x > 0) & ~usable))
    spend_rows = usable & in_fit
    correlation = gamma_gamma.spend_frequency_correlation(x[spend_rows], m_x[spend_rows])
    spend, spend_model, spend_params = _spend_predictions(
        x, m_x, total_spend, spend_rows, config=config, fits=fits, fallbacks=fallbacks
    )
    t_spend = time.perf_counter() - t0

    clv = config.gross_margin * spend * discounted
    label = horizon_label(config.horizon_days)
    frame = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "frequency": customers["frequency"].to_numpy(),
            "recency": t_x,
            "T": T,
            "monetary_value": m_x,
            "p_alive": alive,
            f"expected_purchases_{label}": expected,
            "expected_avg_order_value": spend,
            f"clv_{label}": clv,
        }
    )
    metadata = ClvMetadata(
        model_version=model_version(purchase, spend_model, spend_params, config, time_unit),
        code_version=CODE_VERSION,
        as_of=None if as_of is None else pd.Timestamp(as_of).date().isoformat(),
        time_unit=time_unit,
        horizon_days=float(config.horizon_days),
        annual_discount_rate=config.annual_discount_rate,
        gross_margin=config.gross_margin,
        periods_per_year=config.periods_per_year,
        purchase_model=purchase.name,
        purchase_params=purchase.as_dict(),
        spend_model=spend_model,
        spend_params=spend_params,
        log_likelihood=log_lik,
        converged=not fallbacks,
        fallback_used=bool(fallbacks),
        fallbacks=fallbacks,
        n_customers=n,
        n_fit=int(in_fit.sum()),
        n_fit_spend=int(spend_rows.sum()),
        sampled=sampled,
        sample_method=SAMPLE_METHOD if sampled else None,
        n_spend_not_positive=n_not_positive,
        spend_frequency_correlation=correlation,
        fits=fits,
        timings={
            "fit_score_purchases_s": t_purchase,
            "fit_score_spend_s": t_spend,
            "fit_score_total_s": time.perf_counter() - began,
        },
    )
    return ClvScores(frame, metadata)


def _fit_record(fit: Any) -> dict[str, Any]:
    return {
        "params": fit.params.as_dict(),
        "log_likelihood": fit.log_likelihood,
        "converged": fit.converged,
        "message": fit.message,
        "n_customers": fit.n_customers,
        "iterations": fit.iterations,
        "seconds": fit.seconds,
        "standard_errors": fit.standard_errors,
    }


def _fallback(fallbacks: list[str], message: str) -> None:
    logger.warning("CLV fallback: %s", message)
    fallbacks.append(message)


def _purchase_predictions(
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    T: NDArray[np.float64],
    in_fit: NDArray[np.bool_],
    *,
    horizon: float,
    unit: float,
    config: ClvConfig,
    fits: dict[str, dict[str, Any]],
    fallbacks: list[str],
) -> tuple[PurchaseModel, float, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    fx, ftx, fT = x[in_fit], t_x[in_fit], T[in_fit]
    n_fit = int(in_fit.sum())

    def predict(model: PurchaseModel) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        discounted, expected = discounted_purchases(
            model, x, t_x, T, horizon=horizon, unit_days=unit,
            annual_discount_rate=config.annual_discount_rate, periods_per_year=config.periods_per_year,
        )  # fmt: skip
        return discounted, expected, model.p_alive(x, t_x, T)

    if n_fit < config.min_fit_customers:
        _fallback(
            fallbacks,
            f"only {n_fit} customers to fit on (minimum {config.min_fit_customers}): "
            "BG/NBD and NBD not fitted; using the pooled empirical purchase rate",
        )
    else:
        bg = bgnbd.fit(fx, ftx, fT, max_iter=config.max_iter)
        fits["bgnbd"] = _fit_record(bg)
        if bg.converged:
            discounted, expected, alive = predict(bg.params)
            bad = ~(np.isfinite(discounted) & np.isfinite(expected) & np.isfinite(alive))
            if not bad.any():
                logger.info("BG/NBD fit %s, log-likelihood %.2f", bg.params, bg.log_likelihood)
                return bg.params, bg.log_likelihood, discounted, expected, alive
            i = int(np.argmax(bad))
            _fallback(
                fallbacks,
                f"BG/NBD predictions are not finite for {int(bad.sum())} customers (first: x={x[i]:g}, "
                f"t_x={t_x[i]:g}, T={T[i]:g}) with {bg.params}; falling back to NBD",
            )
        else:
            _fallback(
                fallbacks, f"BG/NBD fit failed: {bg.message}; falling back to NBD (no dropout, P(alive) not modelled)"
            )
        nbd = fit_nbd(fx, fT, max_iter=config.max_iter)
        fits["nbd"] = _fit_record(nbd)
        if nbd.converged:
            discounted, expected, alive = predict(nbd.params)
            if np.all(np.isfinite(discounted)):
                return nbd.params, nbd.log_likelihood, discounted, expected, alive
            _fallback(fallbacks, "NBD predictions are not finite; using the pooled empirical purchase rate")
        else:
            _fallback(fallbacks, f"NBD fit failed: {nbd.message}; using the pooled empirical purchase rate")
    pooled = pooled_rate(fx, fT)
    if not math.isfinite(pooled.rate):
        _fallback(
            fallbacks, "no observed customer time (no customers, or every T is 0): expected purchases and CLV are NaN"
        )
    fits["empirical"] = {"params": pooled.as_dict(), "n_customers": n_fit}
    discounted, expected, alive = predict(pooled)
    return pooled, math.nan, discounted, expected, alive


def _spend_predictions(
    x: NDArray[np.float64],
    m_x: NDArray[np.float64],
    total_spend: NDArray[np.float64],
    rows: NDArray[np.bool_],
    *,
    config: ClvConfig,
    fits: dict[str, dict[str, Any]],
    fallbacks: list[str],
) -> tuple[NDArray[np.float64], str, dict[str, float]]:
    n_rows = int(rows.sum())
    if n_rows < config.min_spend_fit_customers:
        _fallback(
            fallbacks,
            f"only {n_rows} repeat buyers with positive spend (minimum {config.min_spend_fit_customers}): "
            "Gamma-Gamma not fitted; expected order value is each customer's own mean spend per purchase day",
        )
    else:
        gg = gamma_gamma.fit(x[rows], m_x[rows], max_iter=config.max_iter)
        fits["gamma_gamma"] = _fit_record(gg)
        if gg.converged:
            spend = gamma_gamma.expected_spend(gg.params, x, m_x)
            if np.all(np.isfinite(spend)):
                return spend, "gamma_gamma", gg.params.as_dict()
            _fallback(fallbacks, "Gamma-Gamma predictions are not finite; using each customer's own mean spend")
        else:
            _fallback(
                fallbacks,
                f"Gamma-Gamma fit failed: {gg.message}; using each customer's own mean spend per purchase day",
            )
    return empirical_spend(x, total_spend), "empirical", {}
