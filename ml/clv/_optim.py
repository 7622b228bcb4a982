"""Maximum-likelihood plumbing shared by the BG/NBD, NBD and Gamma-Gamma fits.

Every model is fitted on the log of its (positive) parameters with L-BFGS-B and an analytic
gradient. The objective is the weighted *mean* negative log-likelihood, so tolerances mean the
same thing whether the fit sees 2,000 or 200,000 customers. A fit counts as converged only when
the optimiser reports success, the log-likelihood and parameters are finite, the gradient is
small and no parameter sits on its bound (a parameter running off to 0 or infinity means the
data do not identify the model, which callers treat as a failure and answer with a fallback).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

logger = logging.getLogger(__name__)

try:  # installed with scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - fits still work, only slower on a busy machine
    threadpool_limits = None

# Bounds on log-parameters: exp(+-18) ~ 6.6e7 / 1.5e-8. A fitted value this extreme is not an
# estimate but a sign that the likelihood is flat in that direction.
LOG_BOUND = 18.0
GRADIENT_TOLERANCE = 1e-4
# A log-parameter whose standard error exceeds this (a factor of e^5 ~ 150 either way) is not
# identified by the data, however "converged" the optimiser says it is.
MAX_LOG_PARAM_SE = 5.0

Objective = Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64]]]


@dataclass(frozen=True)
class Optimum:
    """Outcome of one maximum-likelihood fit on log-parameters."""

    log_params: NDArray[np.float64]
    log_likelihood: float  # total (weighted sum), not the mean
    converged: bool
    message: str
    iterations: int
    seconds: float
    log_param_se: NDArray[np.float64] | None = None  # from the observed information, if positive definite


def maximise(
    objective: Objective,
    starts: Sequence[Sequence[float]],
    *,
    total_weight: float,
    names: Sequence[str],
    max_iter: int = 500,
) -> Optimum:
    """Minimise `objective` (mean negative log-likelihood and its gradient) from each start.

    Returns the best converged optimum, or the best failed one (with `converged=False` and a
    message naming the reason) when no start converges.
    """
    began = time.perf_counter()
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    best: tuple[float, NDArray[np.float64], bool, str, NDArray[np.float64] | None] | None = None
    iterations = 0
    for start in starts:
        x0 = np.asarray(start, dtype=float)
        try:
            with np.errstate(all="ignore"), _single_threaded_blas():
                res = optimize.minimize(
                    _guarded(objective),
                    x0,
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"maxiter": max_iter, "ftol": 1e-13, "gtol": 1e-8},
                )
        except (ValueError, FloatingPointError, ArithmeticError) as exc:  # pragma: no cover - defensive
            logger.debug("start %s raised %s", x0, exc)
            continue
        iterations += int(res.nit)
        with np.errstate(all="ignore"):
            ok, why, se = _verdict(res, objective, names, total_weight)
        candidate = (float(res.fun), np.asarray(res.x, dtype=float), ok, why, se)
        logger.debug("start %s -> %s (%s, %s)", x0, np.exp(res.x), res.fun, why)
        if best is None or _better(candidate, best):
            best = candidate
        if ok:
            break  # later starts are only tried while no start has converged
    seconds = time.perf_counter() - began
    if best is None:
        return Optimum(np.full(len(names), np.nan), math.nan, False, "every start raised an error", iterations, seconds)
    fun, x, ok, why, se = best
    return Optimum(x, -fun * total_weight, ok, why, iterations, seconds, se)


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """L-BFGS-B calls BLAS/LAPACK on 4x4-sized problems every iteration; OpenBLAS's worker
    threads then cost more than the work (measured: 250 ms instead of 55 ms for a 100k-customer
    BG/NBD fit on a busy two-core machine). Keep BLAS to one thread for the optimisation."""
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _better(candidate: tuple[float, Any, bool, str, Any], incumbent: tuple[float, Any, bool, str, Any]) -> bool:
    if candidate[2] != incumbent[2]:
        return candidate[2]
    if not math.isfinite(incumbent[0]):
        return True
    return math.isfinite(candidate[0]) and candidate[0] < incumbent[0]


def _guarded(objective: Objective) -> Objective:
    """Turn non-finite objective values into a large finite penalty L-BFGS-B can back off from."""

    def wrapped(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        value, grad = objective(theta)
        if not math.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e10, np.zeros_like(theta)
        return value, grad

    return wrapped


def _verdict(
    res: optimize.OptimizeResult, objective: Objective, names: Sequence[str], total_weight: float
) -> tuple[bool, str, NDArray[np.float64] | None]:
    x = np.asarray(res.x, dtype=float)
    if not np.all(np.isfinite(x)) or not math.isfinite(float(res.fun)) or res.fun >= 1e10:
        return False, "the log-likelihood is not finite at the optimum", None
    at_bound = [n for n, v in zip(names, x, strict=True) if abs(v) >= LOG_BOUND - 1e-3]
    if at_bound:
        values = ", ".join(f"{n}={math.exp(v):.3g}" for n, v in zip(names, x, strict=True) if n in at_bound)
        return False, (
            f"parameter(s) {values} ran to the edge of the search range: the data do not identify "
            "the model (too few repeat purchases, or no sign of the behaviour the parameter describes)"
        ), None  # fmt: skip
    _, grad = objective(x)
    grad_norm = float(np.max(np.abs(grad)))
    if not res.success and grad_norm > GRADIENT_TOLERANCE:
        return False, f"the optimiser stopped without converging ({res.message}); max |gradient| {grad_norm:.2g}", None
    if grad_norm > 100 * GRADIENT_TOLERANCE:
        return False, f"the optimiser stopped at a point with max |gradient| {grad_norm:.2g} (not a maximum)", None
    hessian = total_weight * numerical_hessian(objective, x)
    eigenvalues = np.linalg.eigvalsh(hessian) if np.all(np.isfinite(hessian)) else np.array([np.nan])
    if not np.all(eigenvalues > 0):
        return False, (
            "the optimum is not a proper maximum (the log-likelihood is flat or saddle-shaped there): "
            "the data do not identify every parameter"
        ), None  # fmt: skip
    se = np.sqrt(np.diag(np.linalg.inv(hessian)))
    loose = [f"log {n} +- {v:.1f}" for n, v in zip(names, se, strict=True) if not v < MAX_LOG_PARAM_SE]
    if loose:
        return False, (
            f"the data barely constrain {', '.join(loose)} (standard errors on the log scale): "
            "the model is not identified"
        ), se  # fmt: skip
    return True, "converged", se


def numerical_hessian(objective: Objective, x: NDArray[np.float64], step: float = 1e-4) -> NDArray[np.float64]:
    """Hessian of the objective by central differences of its analytic gradient (symmetrised)."""
    k = len(x)
    hessian = np.zeros((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        hessian[:, i] = (objective(x + e)[1] - objective(x - e)[1]) / (2 * step)
    return (hessian + hessian.T) / 2


def unique_rows(
    *columns: NDArray[np.float64],
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64], NDArray[np.int64]]:
    """Collapse identical rows of `columns` into (unique columns, counts, inverse index)."""
    n = len(columns[0])
    if n == 0:
        return [np.asarray(c, dtype=float) for c in columns], np.zeros(0), np.zeros(0, dtype=np.int64)
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in columns]) + 0.0  # -0.0 -> 0.0
    # A structured view lets np.unique sort rows in one pass (float keys, no NaN here).
    view = np.ascontiguousarray(stacked).view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1])))
    _, first, inverse, counts = np.unique(view.ravel(), return_index=True, return_inverse=True, return_counts=True)
    unique = stacked[first]
    return [unique[:, j] for j in range(stacked.shape[1])], counts.astype(float), inverse.ravel().astype(np.int64)


def wsum(weights: NDArray[np.float64], values: NDArray[np.float64]) -> float:
    """Weighted sum without BLAS: `weights @ values` goes through a multi-threaded BLAS dot,
    whose spinning threads made each fit ~15x slower on a busy two-core machine."""
    return float(np.multiply(weights, values).sum())


def standard_errors(opt: Optimum, names: Sequence[str]) -> dict[str, float] | None:
    """Standard errors of the parameters themselves (delta method: se(theta) = theta * se(log theta))."""
    if opt.log_param_se is None:
        return None
    return {n: float(math.exp(v) * se) for n, v, se in zip(names, opt.log_params, opt.log_param_se, strict=True)}
