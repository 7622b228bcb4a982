"""Simpler models used when the BG/NBD or Gamma-Gamma fit fails.

Purchases: BG/NBD -> NBD (gamma-Poisson, no dropout) -> pooled empirical rate.
Spend:     Gamma-Gamma -> each customer's own mean net spend per purchase day.

The purchase fallbacks do not model dropout, so their P(alive) is NaN ("not modelled"), never a
made-up 1.0. Which fallback was used, and why, is recorded in the scoring metadata.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ml.clv._optim import maximise, standard_errors, unique_rows, wsum

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NbdParams:
    """NBD: each customer buys at a constant Poisson rate drawn from Gamma(r, alpha); nobody leaves."""

    r: float
    alpha: float

    name = "nbd"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def expected_purchases(self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        t, x, _, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(t, x, t_x, T))
        return (self.r + x) / (self.alpha + T) * t

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        return np.full(np.broadcast(x, t_x, T).shape, np.nan)


@dataclass(frozen=True)
class NbdFit:
    params: NbdParams
    log_likelihood: float
    converged: bool
    message: str
    n_customers: int
    iterations: int
    seconds: float
    standard_errors: dict[str, float] | None = None


@dataclass(frozen=True)
class PooledRate:
    """Last resort: everyone buys at the population's pooled rate, sum(x) / sum(T)."""

    rate: float

    name = "empirical"

    def as_dict(self) -> dict[str, float]:
        return {"rate": self.rate}

    def expected_purchases(self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        t = np.broadcast_arrays(np.asarray(t, dtype=float), x, t_x, T)[0]
        return self.rate * t

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        return np.full(np.broadcast(x, t_x, T).shape, np.nan)


def fit_nbd(x: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None, max_iter: int = 500) -> NbdFit:
    """Maximum-likelihood NBD on (x, T): log L = log G(r+x) - log G(r) + r log a - (r+x) log(a+T)."""
    x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    (ux, uT), counts, inverse = unique_rows(x, T)
    uw = np.bincount(inverse, weights=w, minlength=len(ux)) if weights is not None else counts
    total = float(uw.sum())
    purchases, exposure = wsum(uw, ux), wsum(uw, uT)
    if total == 0 or exposure == 0:
        return NbdFit(
            NbdParams(math.nan, math.nan), math.nan, False, "no observation time to fit on", round(total), 0, 0.0
        )
    if purchases == 0:
        return NbdFit(
            NbdParams(math.nan, math.nan), math.nan, False,
            "no customer made a repeat purchase: the purchase rate is zero, not estimable", round(total), 0, 0.0,
        )  # fmt: skip
    rate = purchases / exposure

    def f(theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha = np.exp(theta)
        log_at = np.log(alpha + uT)
        ll = special.gammaln(r + ux) - special.gammaln(r) + r * math.log(alpha) - (r + ux) * log_at
        g_r = special.digamma(r + ux) - special.digamma(r) + math.log(alpha) - log_at
        g_a = r / alpha - (r + ux) / (alpha + uT)
        return -wsum(uw, ll) / total, -np.array([r * wsum(uw, g_r), alpha * wsum(uw, g_a)]) / total

    scale = 1.0 / rate if rate > 0 else exposure / total
    starts = [np.log([r0, r0 * scale]) for r0 in (1.0, 0.3, 3.0)]
    opt = maximise(f, starts, total_weight=total, names=("r", "alpha"), max_iter=max_iter)
    params = NbdParams(*(float(v) for v in np.exp(opt.log_params)))
    return NbdFit(
        params, opt.log_likelihood, opt.converged, opt.message, round(total), opt.iterations, opt.seconds,
        standard_errors(opt, ("r", "alpha")),
    )  # fmt: skip


def pooled_rate(x: ArrayLike, T: ArrayLike) -> PooledRate:
    """Repeat purchases per unit of observed time over everyone; NaN when no time was observed."""
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    exposure = float(T.sum())
    return PooledRate(float(x.sum()) / exposure if exposure > 0 else math.nan)


def empirical_spend(x: ArrayLike, total_spend: ArrayLike) -> FloatArray:
    """Own mean net spend per purchase day, first purchase included (x + 1 days), floored at 0."""
    x, total_spend = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, total_spend))
    return np.maximum(total_spend, 0.0) / (x + 1.0)
