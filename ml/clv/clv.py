"""Discounted, margin-adjusted customer lifetime value over a finite horizon.

CLV(H) = margin * E[spend per purchase] * sum_k (E[X(t_k)] - E[X(t_(k-1))]) * (1 + d)^(-t_k / year)

The horizon H is cut into calendar months (`periods_per_year` = 12 by default, i.e. periods of
365.25/12 days, the last one shortened to end at H). The purchases the model expects during
period k are discounted at the annual rate d as if they all happened at the period's end t_k,
which slightly understates value (by under half a month of discounting). Expected spend per
purchase does not change over the horizon (Gamma-Gamma is stationary).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
DAYS_PER_YEAR = 365.25


class PurchaseModel(Protocol):
    """What CLV needs from a purchase model (BG/NBD, or a fallback)."""

    name: str

    def expected_purchases(self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray: ...

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray: ...

    def as_dict(self) -> dict[str, float]: ...


def period_edges(horizon: float, *, unit_days: float = 1.0, periods_per_year: int = 12) -> FloatArray:
    """Ends of the discounting periods within (0, horizon], in model time units."""
    if horizon <= 0:
        raise ValueError(f"the CLV horizon must be positive, got {horizon}")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    period = DAYS_PER_YEAR / periods_per_year / unit_days
    n = max(1, math.ceil(horizon / period - 1e-9))
    return np.minimum(np.arange(1, n + 1) * period, horizon)


def discount_factors(edges: FloatArray, *, unit_days: float = 1.0, annual_discount_rate: float = 0.10) -> FloatArray:
    if annual_discount_rate <= -1:
        raise ValueError(f"annual discount rate must be above -100%, got {annual_discount_rate}")
    return (1.0 + annual_discount_rate) ** (-(edges * unit_days) / DAYS_PER_YEAR)


def discounted_purchases(
    model: PurchaseModel,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    horizon: float,
    unit_days: float = 1.0,
    annual_discount_rate: float = 0.10,
    periods_per_year: int = 12,
) -> tuple[FloatArray, FloatArray]:
    """(discounted, undiscounted) expected purchases over the next `horizon` time units."""
    edges = period_edges(horizon, unit_days=unit_days, periods_per_year=periods_per_year)
    factors = discount_factors(edges, unit_days=unit_days, annual_discount_rate=annual_discount_rate)
    previous = np.zeros(np.broadcast(x, t_x, T).shape)
    discounted = np.zeros_like(previous)
    for edge, factor in zip(edges, factors, strict=True):
        cumulative = model.expected_purchases(edge, x, t_x, T)
        discounted += (cumulative - previous) * factor
        previous = cumulative
    return discounted, previous


def customer_lifetime_value(
    model: PurchaseModel,
    expected_spend: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    horizon: float = 365.0,
    unit_days: float = 1.0,
    annual_discount_rate: float = 0.10,
    gross_margin: float = 1.0,
    periods_per_year: int = 12,
) -> FloatArray:
    """Discounted gross-margin value of each customer's expected purchases over `horizon`."""
    discounted, _ = discounted_purchases(
        model, x, t_x, T, horizon=horizon, unit_days=unit_days,
        annual_discount_rate=annual_discount_rate, periods_per_year=periods_per_year,
    )  # fmt: skip
    return gross_margin * np.asarray(expected_spend, dtype=float) * discounted
