"""CLV benchmark: fit + score time and parameter recovery on simulated customers.

`clv_benchmark()` draws `n_customers` from the BG/NBD + Gamma-Gamma generative process
(`ml.clv.simulate`, deterministic seed) as raw transactions over a two-year window, then times:

- `score_customers`: summarise transactions, fit on the deterministic 200k sample (above the
  threshold), score everyone (the warehouse path; target: under 60 s for 1M customers);
- a fit of both models on *every* customer (no sampling), for recovery and raw fit speed;
- if `lifetimes` is importable (`uv sync --group bench`), `BetaGeoFitter`/`GammaGammaFitter`
  on `lifetimes_customers` customers, with our fit on the same customers for comparison; its
  time at `n_customers` is a linear extrapolation, marked as such.

Parameters are recovered from day-level data, so same-day purchases merge and T is rounded to
whole days; that recovery is close to, not exactly, the true parameters (alpha comes out ~5%
high). `continuous_time_fit` fits exact continuous-time draws of the same process, which shows
the estimator itself recovering the parameters.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ml.clv import (
    BgNbdParams,
    GammaGammaParams,
    bgnbd,
    gamma_gamma,
    score_summary,
    simulate_customers,
    simulate_transactions,
    summarise_transactions,
)
from ml.clv.score import ClvConfig, fit_sample

logger = logging.getLogger(__name__)

# CDNOW's published estimates (FHL 2005; Fader & Hardie 2013) with alpha converted to days.
TRUE_PURCHASES = BgNbdParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
TRUE_SPEND = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)


def _recovery(fitted: dict[str, float], truth: dict[str, float]) -> dict[str, dict[str, float]]:
    return {
        k: {"true": truth[k], "fitted": fitted[k], "relative_error": (fitted[k] - truth[k]) / truth[k]} for k in truth
    }


def clv_benchmark(
    n_customers: int = 1_000_000,
    *,
    seed: int = 20_240_601,
    start: str = "2023-01-01",
    as_of: str = "2024-12-31",
    lifetimes_customers: int | None = 100_000,
    config: ClvConfig | None = None,
) -> dict[str, Any]:
    """Simulate, fit and score; return timings (seconds) and parameter recovery as a dict."""
    config = config or ClvConfig()
    out: dict[str, Any] = {
        "n_customers": n_customers,
        "seed": seed,
        "window": {"start": start, "as_of": as_of},
        "true_params": {"bgnbd_per_day": TRUE_PURCHASES.as_dict(), "gamma_gamma": TRUE_SPEND.as_dict()},
    }

    t0 = time.perf_counter()
    txns = simulate_transactions(n_customers, TRUE_PURCHASES, TRUE_SPEND, start=start, as_of=as_of, seed=seed)
    out["simulate_s"] = time.perf_counter() - t0
    out["n_transactions"] = len(txns)
    logger.info("simulated %d transactions of %d customers in %.1fs", len(txns), n_customers, out["simulate_s"])

    # The warehouse path, end to end.
    t0 = time.perf_counter()
    summary = summarise_transactions(txns, as_of, date_col="txn_at")
    t_summary = time.perf_counter() - t0
    scores = score_summary(summary, config=config)
    t_total = time.perf_counter() - t0
    meta = scores.metadata
    out["score_customers"] = {
        "seconds": t_total,
        "summarise_s": t_summary,
        "fit_and_score_s": t_total - t_summary,
        "timings": meta.timings,
        "n_scored": meta.n_customers,
        "n_fit": meta.n_fit,
        "sampled": meta.sampled,
        "purchase_model": meta.purchase_model,
        "spend_model": meta.spend_model,
        "fallback_used": meta.fallback_used,
        "model_version": meta.model_version,
        "under_60s": t_total < 60.0,
        "recovery_bgnbd": _recovery(meta.purchase_params, TRUE_PURCHASES.as_dict())
        if meta.purchase_model == "bgnbd"
        else None,
        "recovery_gamma_gamma": _recovery(meta.spend_params, TRUE_SPEND.as_dict())
        if meta.spend_model == "gamma_gamma"
        else None,
    }

    # Both fits on everyone, no sampling.
    c = summary.customers
    x, t_x, T = (c[k].to_numpy(dtype=float) for k in ("frequency", "recency", "T"))
    m_x = c["monetary_value"].to_numpy(dtype=float)
    full_bg = bgnbd.fit(x, t_x, T)
    usable = gamma_gamma.usable_for_fit(x, m_x)
    full_gg = gamma_gamma.fit(x[usable], m_x[usable])
    out["full_fit"] = {
        "bgnbd_s": full_bg.seconds,
        "bgnbd_unique_rows": full_bg.n_unique_rows,
        "bgnbd_converged": full_bg.converged,
        "gamma_gamma_s": full_gg.seconds,
        "gamma_gamma_customers": full_gg.n_customers,
        "recovery_bgnbd": _recovery(full_bg.params.as_dict(), TRUE_PURCHASES.as_dict()),
        "recovery_gamma_gamma": _recovery(full_gg.params.as_dict(), TRUE_SPEND.as_dict()),
    }

    # The estimator itself, without day rounding: exact continuous-time draws, weekly units.
    weekly = BgNbdParams(TRUE_PURCHASES.r, TRUE_PURCHASES.alpha / 7, TRUE_PURCHASES.a, TRUE_PURCHASES.b)
    rng = np.random.default_rng(seed)
    sim = simulate_customers(n_customers, weekly, TRUE_SPEND, rng.uniform(1.0, 104.0, n_customers), seed=seed)
    exact_bg = bgnbd.fit(sim.x, sim.t_x, sim.T)
    repeat = sim.x > 0
    exact_gg = gamma_gamma.fit(sim.x[repeat], sim.m_x[repeat])
    out["continuous_time_fit"] = {
        "bgnbd_s": exact_bg.seconds,
        "bgnbd_unique_rows": exact_bg.n_unique_rows,
        "gamma_gamma_s": exact_gg.seconds,
        "recovery_bgnbd_per_week": _recovery(exact_bg.params.as_dict(), weekly.as_dict()),
        "recovery_gamma_gamma": _recovery(exact_gg.params.as_dict(), TRUE_SPEND.as_dict()),
    }

    out["lifetimes"] = _lifetimes(c, lifetimes_customers, n_customers) if lifetimes_customers else None
    return out


def _lifetimes(customers: Any, size: int, n_customers: int) -> dict[str, Any]:
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    except Exception as exc:  # noqa: BLE001 - ImportError, or lifetimes failing on this numpy/scipy
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}; install with `uv sync --group bench`"}
    subset = customers[fit_sample(customers["customer_id"], size)] if size < len(customers) else customers
    x, t_x, T = (subset[k].to_numpy(dtype=float) for k in ("frequency", "recency", "T"))
    m_x = subset["monetary_value"].to_numpy(dtype=float)
    usable = gamma_gamma.usable_for_fit(x, m_x)
    result: dict[str, Any] = {"available": True, "n_customers": len(subset)}

    t0 = time.perf_counter()
    ours_bg = bgnbd.fit(x, t_x, T)
    ours_gg = gamma_gamma.fit(x[usable], m_x[usable])
    ours_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours_pred = bgnbd.expected_purchases(ours_bg.params, 365.0, x, t_x, T)
    ours_predict = time.perf_counter() - t0
    result["ours"] = {
        "fit_s": ours_fit,
        "predict_365d_s": ours_predict,
        "bgnbd": ours_bg.params.as_dict(),
        "gamma_gamma": ours_gg.params.as_dict(),
        "log_likelihood": ours_bg.log_likelihood,
    }

    try:
        t0 = time.perf_counter()
        bgf = BetaGeoFitter(penalizer_coef=0.0).fit(x, t_x, T)
        t_bg = time.perf_counter() - t0
        t0 = time.perf_counter()
        ggf = GammaGammaFitter(penalizer_coef=0.0).fit(x[usable], m_x[usable])
        t_gg = time.perf_counter() - t0
        t0 = time.perf_counter()
        their_pred = np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(365.0, x, t_x, T), dtype=float)
        t_pred = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - report, not hide, a failure of the reference implementation
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    their_params = {k: float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")}
    scale = n_customers / len(subset)
    total = t_bg + t_gg + t_pred
    finite = np.isfinite(their_pred)
    result["lifetimes"] = {
        "bgnbd_fit_s": t_bg,
        "gamma_gamma_fit_s": t_gg,
        "predict_365d_s": t_pred,
        "bgnbd": their_params,
        "gamma_gamma": {k: float(ggf.params_[k]) for k in ("p", "q", "v")},
        "log_likelihood": bgnbd.log_likelihood(BgNbdParams(**their_params), x, t_x, T),
        "predictions_not_finite": int((~finite).sum()),
        "max_abs_prediction_difference": float(np.max(np.abs(their_pred[finite] - ours_pred[finite])))
        if finite.any()
        else math.nan,
        "fit_and_predict_s": total,
        "fit_and_predict_s_at_n_customers": total * scale,
        "at_n_customers": "measured"
        if len(subset) == n_customers
        else f"extrapolated linearly from {len(subset):,} to {n_customers:,} customers (lifetimes does not aggregate rows)",
    }
    return result


def main() -> None:  # pragma: no cover - manual entry point: python -m dagster_project.bench.clv [N] [LIFETIMES_N]
    import json
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    lifetimes_n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    print(json.dumps(clv_benchmark(n, lifetimes_customers=lifetimes_n or None), indent=2, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
