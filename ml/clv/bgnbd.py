"""BG/NBD purchase model (Fader, Hardie & Lee 2005): maximum-likelihood fit and predictions.

Inputs per customer, in one time unit of the caller's choice (weeks for CDNOW, days in the
warehouse): `x` repeat purchases, `t_x` time of the last purchase and `T` length of observation,
both measured from the customer's first purchase. Parameter `alpha` is in that time unit.

Numerical choices (see docs/clv.md for the formulas):
- The log-likelihood is evaluated as gammaln/log terms combined with `logaddexp`, never as a
  product of gammas or powers, so large `x` or long histories cannot overflow.
- Identical (x, t_x, T) rows are collapsed into one row with a count before fitting.
- The conditional expectation uses the Euler transform of its Gauss hypergeometric function,
  2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1-r-x) 2F1(a+b-1-r, a-1; a+b+x-1; z), which cancels the
  ((alpha+T)/(alpha+T+t))^(r+x) factor exactly: the remaining 2F1 stays close to 1 for large `x`
  instead of overflowing. The division by (a-1) is done on 2F1 - 1 so that a ~ 1 is stable too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ml.clv._optim import maximise, standard_errors, unique_rows, wsum

FloatArray = NDArray[np.float64]

# Below this |a - 1| the hypergeometric tail (F - 1) / (a - 1) is summed as a series instead of
# being formed from scipy's 2F1, where the subtraction would lose digits.
_SMALL_B = 1e-4
NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters: purchase rates ~ Gamma(r, alpha), dropout probabilities ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    name = "bgnbd"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def expected_purchases(self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        return expected_purchases(self, t, x, t_x, T)

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        return p_alive(self, x, t_x, T)


@dataclass(frozen=True)
class BgNbdFit:
    """A fitted BG/NBD model and how the fit went."""

    params: BgNbdParams
    log_likelihood: float
    converged: bool
    message: str
    n_customers: int
    n_unique_rows: int
    iterations: int
    seconds: float
    standard_errors: dict[str, float] | None = None  # delta method from the observed information


def check_rfm(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    """Raise ValueError naming the first row that is not a valid (x, t_x, T) summary."""
    problems = (
        (~np.isfinite(x) | ~np.isfinite(t_x) | ~np.isfinite(T), "is not finite"),
        ((x < 0) | (np.floor(x) != x), "has a frequency that is not a non-negative whole number"),
        ((t_x < 0) | (t_x > T * (1 + 1e-12) + 1e-12), "has a recency outside [0, T]"),
        ((x == 0) & (t_x != 0), "has no repeat purchase but a non-zero recency"),
    )
    for bad, what in problems:
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(
                f"customer row {i} (x={x[i]}, t_x={t_x[i]}, T={T[i]}) {what}; "
                f"{int(bad.sum())} row(s) affected. Summarise transactions with ml.clv.summarise_transactions."
            )


def _arrays(*values: ArrayLike) -> list[FloatArray]:
    return [np.asarray(v, dtype=float) for v in np.broadcast_arrays(*values)]


def customer_log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """Log-likelihood of each customer's (x, t_x, T) under `params` (FHL 2005, eq. 6)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xm = np.maximum(x, 1.0)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha)
    a2 = special.gammaln(b + x) - special.gammaln(a + b + x) - special.gammaln(b) + special.gammaln(a + b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(x > 0, math.log(a) - np.log(b + xm - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def log_likelihood(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> float:
    """Total (weighted) log-likelihood."""
    ll = customer_log_likelihood(params, x, t_x, T)
    return float(np.sum(ll if weights is None else ll * np.asarray(weights, dtype=float)))


def _objective(x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray):
    """Mean negative log-likelihood and its gradient with respect to log(r, alpha, a, b)."""
    xs, xi = np.unique(x, return_inverse=True)  # gammas and digammas once per distinct x
    xi = xi.ravel()
    xsm = np.maximum(xs, 1.0)
    has_repeat = x > 0
    w_total = float(w.sum())

    def f(theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(theta)
        a1 = (special.gammaln(r + xs) - special.gammaln(r))[xi] + r * math.log(alpha)
        a2 = (special.gammaln(b + xs) - special.gammaln(a + b + xs))[xi] - special.gammaln(b) + special.gammaln(a + b)
        log_at = np.log(alpha + T)
        log_atx = np.log(alpha + t_x)
        rx = r + x
        a3 = -rx * log_at
        log_b_term = np.log(b + xsm - 1)
        a4 = np.where(has_repeat, math.log(a) - log_b_term[xi] - rx * log_atx, -np.inf)
        m = np.logaddexp(a3, a4)
        ll = a1 + a2 + m
        s4 = np.exp(a4 - m)  # share of the "dropped out after the last purchase" branch
        s3 = 1.0 - s4
        psi_rx = (special.digamma(r + xs) - special.digamma(r))[xi]
        psi_abx = special.digamma(a + b + xs)[xi]
        psi_ab = special.digamma(a + b)
        g_r = psi_rx + math.log(alpha) - s3 * log_at - s4 * log_atx
        g_alpha = r / alpha - rx * (s3 / (alpha + T) + s4 / (alpha + t_x))
        g_a = psi_ab - psi_abx + s4 / a
        g_b = special.digamma(b + xs)[xi] - special.digamma(b) + psi_ab - psi_abx - s4 / (b + xsm - 1)[xi]
        value = -wsum(w, ll) / w_total
        grad = -np.array([r * wsum(w, g_r), alpha * wsum(w, g_alpha), a * wsum(w, g_a), b * wsum(w, g_b)]) / w_total
        return value, grad

    return f


def fit(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    max_iter: int = 500,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD fit.

    `weights` (optional) counts how many customers each row stands for. Identical rows are
    collapsed before fitting either way. Never raises for a fit that fails to converge: the
    returned `converged`/`message` say so and the caller decides on a fallback.
    """
    x, t_x, T = _arrays(x, t_x, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    check_rfm(x, t_x, T)
    (ux, utx, uT), counts, inverse = unique_rows(x, t_x, T)
    uw = np.bincount(inverse, weights=w, minlength=len(ux)) if weights is not None else counts
    keep = uw > 0
    ux, utx, uT, uw = ux[keep], utx[keep], uT[keep], uw[keep]
    total = float(uw.sum())
    if total == 0 or not np.any(uT > 0):
        return BgNbdFit(
            BgNbdParams(math.nan, math.nan, math.nan, math.nan), math.nan, False,
            "no customer has been observed for any length of time (every T is 0): nothing to fit",
            int(total), len(ux), 0, 0.0,
        )  # fmt: skip
    if not np.any(ux > 0):
        return BgNbdFit(
            BgNbdParams(math.nan, math.nan, math.nan, math.nan), math.nan, False,
            "no customer made a repeat purchase: nothing identifies purchase rates or dropout",
            round(total), len(ux), 0, 0.0,
        )  # fmt: skip
    # Start where the gamma mean r/alpha matches the pooled purchase rate.
    rate = wsum(uw, ux) / wsum(uw, uT)
    starts = []
    for r0, a0, b0 in ((1.0, 1.0, 1.0), (0.3, 0.7, 3.0), (3.0, 2.0, 8.0)):
        alpha0 = r0 / rate if rate > 0 else r0 * wsum(uw, uT) / total
        starts.append(np.log([r0, alpha0, a0, b0]))
    opt = maximise(_objective(ux, utx, uT, uw), starts, total_weight=total, names=NAMES, max_iter=max_iter)
    params = BgNbdParams(*(float(v) for v in np.exp(opt.log_params)))
    return BgNbdFit(
        params, opt.log_likelihood, opt.converged, opt.message, round(total), len(ux), opt.iterations, opt.seconds,
        standard_errors(opt, NAMES),
    )  # fmt: skip


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(customer still active at T | x, t_x, T) (FHL 2005, eq. 13)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xm = np.maximum(x, 1.0)
    log_odds_dead = math.log(a) - np.log(b + xm - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, special.expit(-log_odds_dead), 1.0)


def expected_purchases(params: BgNbdParams, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10), vectorised over customers and t."""
    t, x, t_x, T = _arrays(t, x, t_x, T)
    return _growth(params, t, x, T) * p_alive(params, x, t_x, T)


def expected_purchases_new_customer(params: BgNbdParams, t: ArrayLike) -> FloatArray:
    """E[X(t)]: repeat purchases expected in the first `t` time units after a first purchase (eq. 9)."""
    t = np.asarray(t, dtype=float)
    zero = np.zeros_like(t)
    return expected_purchases(params, t, zero, zero, zero)


def _growth(params: BgNbdParams, t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
    """(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)].

    With z = t/(alpha+T+t), the Euler transform turns the bracket into
    1 - (1-z)^B F with F = 2F1(A, B; C; z), A = a+b-1-r, B = a-1, C = a+b+x-1, and
    [1 - (1-z)^B F] / B = -expm1(B log(1-z)) / B - (1-z)^B (F - 1) / B.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    A, B = a + b - 1.0 - r, a - 1.0
    C = a + b + x - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_1mz = np.log(alpha + T) - np.log(alpha + T + t)
        z = t / (alpha + T + t)
        if abs(B) >= _SMALL_B:
            tail = (special.hyp2f1(A, B, C, z) - 1.0) / B
            first = -np.expm1(B * log_1mz) / B
        else:
            tail = hyp2f1_tail(A, B, C, z)
            first = -log_1mz if B == 0 else -np.expm1(B * log_1mz) / B
        out = C * (first - np.exp(B * log_1mz) * tail)
    return np.where(t == 0, 0.0, out)


def hyp2f1_tail(
    A: float, B: float, C: ArrayLike, z: ArrayLike, *, rtol: float = 1e-15, max_terms: int = 200_000
) -> FloatArray:
    """(2F1(A, B; C; z) - 1) / B by direct summation, exact in the limit B -> 0.

    Sum over n >= 1 of (A)_n (B+1)_{n-1} z^n / ((C)_n n!). Used only when |B| is tiny, where
    forming (F - 1) / B from F would cancel. Converges for 0 <= z < 1.
    """
    C, z = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(C, z))
    shape = C.shape
    C, z = C.ravel(), z.ravel()
    # Terms eventually shrink like z^n, so the rest of the sum is at most |term| z / (1 - z).
    tail_factor = z / (1.0 - z)
    term = A * z / C
    total = term.copy()
    active = np.flatnonzero(np.abs(term) > 0)
    n = 1
    while active.size and n < max_terms:
        term_a = term[active] * (A + n) * (B + n) * z[active] / ((C[active] + n) * (n + 1))
        term[active] = term_a
        total[active] += term_a
        active = active[np.abs(term_a) * tail_factor[active] > rtol * np.abs(total[active])]
        n += 1
    if active.size:
        total[active] = np.nan  # not converged: never return a silently truncated sum
    return total.reshape(shape)
