"""Gamma-Gamma spend model (Fader & Hardie 2013, after Colombo & Jiang 1999).

Each transaction's value is Gamma(p, nu) with a customer-specific rate nu ~ Gamma(q, gamma), so
a customer's mean transaction value is p/nu and the population mean is p*gamma/(q-1). The model
is fitted on customers with at least one repeat purchase and a positive mean repeat spend
`m_x`; it needs `q > 1` for a finite mean. Spend is assumed independent of purchase frequency,
which `spend_frequency_correlation` lets a caller check.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ml.clv._optim import maximise, standard_errors, unique_rows, wsum
from ml.clv._stats import spearman

FloatArray = NDArray[np.float64]
NAMES = ("p", "q", "gamma")


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float

    name = "gamma_gamma"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """Mean transaction value of a customer drawn at random (infinite unless q > 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else math.inf

    def expected_spend(self, x: ArrayLike, m_x: ArrayLike) -> FloatArray:
        return expected_spend(self, x, m_x)


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    converged: bool
    message: str
    n_customers: int
    n_unique_rows: int
    iterations: int
    seconds: float
    standard_errors: dict[str, float] | None = None


def _arrays(*values: ArrayLike) -> list[FloatArray]:
    return [np.asarray(v, dtype=float) for v in np.broadcast_arrays(*values)]


def customer_log_likelihood(params: GammaGammaParams, x: ArrayLike, m_x: ArrayLike) -> FloatArray:
    """Log density of each customer's mean spend `m_x` over `x` transactions (x >= 1, m_x > 0)."""
    x, m_x = _arrays(x, m_x)
    p, q, g = params.p, params.q, params.gamma
    px = p * x
    return (
        special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
        + q * math.log(g) + (px - 1) * np.log(m_x) + px * np.log(x) - (px + q) * np.log(g + x * m_x)
    )  # fmt: skip


def log_likelihood(params: GammaGammaParams, x: ArrayLike, m_x: ArrayLike, weights: ArrayLike | None = None) -> float:
    ll = customer_log_likelihood(params, x, m_x)
    return float(np.sum(ll if weights is None else ll * np.asarray(weights, dtype=float)))


def _objective(x: FloatArray, m_x: FloatArray, w: FloatArray):
    log_m, log_x = np.log(m_x), np.log(x)
    w_total = float(w.sum())

    def f(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, g = np.exp(theta)
        px = p * x
        log_gxm = np.log(g + x * m_x)
        ll = (
            special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
            + q * math.log(g) + (px - 1) * log_m + px * log_x - (px + q) * log_gxm
        )  # fmt: skip
        psi_pxq = special.digamma(px + q)
        g_p = x * (psi_pxq - special.digamma(px) + log_m + log_x - log_gxm)
        g_q = psi_pxq - special.digamma(q) + math.log(g) - log_gxm
        g_g = q / g - (px + q) / (g + x * m_x)
        value = -wsum(w, ll) / w_total
        grad = -np.array([p * wsum(w, g_p), q * wsum(w, g_q), g * wsum(w, g_g)]) / w_total
        return value, grad

    return f


def fit(x: ArrayLike, m_x: ArrayLike, *, weights: ArrayLike | None = None, max_iter: int = 500) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma fit on repeat buyers (x >= 1) with positive mean spend.

    Raises ValueError if a row has x < 1 or m_x <= 0 (filter them first: see `usable_for_fit`).
    A fit with q <= 1 (infinite population mean) is reported as not converged.
    """
    x, m_x = _arrays(x, m_x)
    bad = ~(np.isfinite(x) & np.isfinite(m_x) & (x >= 1) & (m_x > 0))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            f"row {i} (x={x[i]}, m_x={m_x[i]}) cannot enter a Gamma-Gamma fit: it needs x >= 1 repeat "
            "purchases and a positive mean spend; filter with ml.clv.gamma_gamma.usable_for_fit"
        )
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    (ux, um), counts, inverse = unique_rows(x, m_x)
    uw = np.bincount(inverse, weights=w, minlength=len(ux)) if weights is not None else counts
    total = float(uw.sum())
    nan = GammaGammaParams(math.nan, math.nan, math.nan)
    if total == 0:
        return GammaGammaFit(nan, math.nan, False, "no repeat buyer with positive spend to fit on", 0, 0, 0, 0.0)
    mean_spend = wsum(uw, um) / total
    # Starts that all reproduce the observed mean spend: p*gamma/(q-1) = mean.
    starts = [np.log([p0, q0, mean_spend * (q0 - 1) / p0]) for p0, q0 in ((1.0, 2.0), (5.0, 4.0), (0.5, 1.5))]
    opt = maximise(_objective(ux, um, uw), starts, total_weight=total, names=NAMES, max_iter=max_iter)
    params = GammaGammaParams(*(float(v) for v in np.exp(opt.log_params)))
    converged, message = opt.converged, opt.message
    if converged and params.q <= 1:
        converged = False
        message = f"fitted q={params.q:.3g} <= 1: the spend distribution has no finite mean"
    return GammaGammaFit(
        params, opt.log_likelihood, converged, message, round(total), len(ux), opt.iterations, opt.seconds,
        standard_errors(opt, NAMES),
    )  # fmt: skip


def usable_for_fit(x: ArrayLike, m_x: ArrayLike) -> NDArray[np.bool_]:
    """Rows the spend model can learn from: at least one repeat purchase and positive mean spend."""
    x, m_x = _arrays(x, m_x)
    return (x >= 1) & np.isfinite(m_x) & (m_x > 0)


def expected_spend(params: GammaGammaParams, x: ArrayLike, m_x: ArrayLike) -> FloatArray:
    """E[mean transaction value | x, m_x] = p (gamma + x m_x) / (p x + q - 1).

    A weighted average of the population mean and the customer's own mean, with weight
    p x / (p x + q - 1) on the latter. Customers with x = 0 get the population mean. A mean
    spend that is missing (x = 0) or not positive (refunds netted it away) enters as 0, i.e.
    the posterior mean after observing x transactions whose total is 0: the population prior
    pulled towards zero by the evidence of x purchases worth nothing.
    """
    x, m_x = _arrays(x, m_x)
    p, q, g = params.p, params.q, params.gamma
    spent = np.where((x > 0) & np.isfinite(m_x), np.maximum(m_x, 0.0), 0.0) * x
    return p * (g + spent) / (p * x + q - 1)


def spend_frequency_correlation(x: ArrayLike, m_x: ArrayLike) -> float:
    """Spearman correlation between repeat frequency and mean spend on the fitting rows.

    The Gamma-Gamma model assumes it is near zero; report it so that a strong dependence is seen.
    """
    x, m_x = _arrays(x, m_x)
    return spearman(x, m_x)
