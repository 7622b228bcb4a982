"""The CLV benchmark function: runs end to end on a small population and reports what it promises."""

from __future__ import annotations

from dagster_project.bench.clv import clv_benchmark


def test_small_benchmark_reports_timings_and_recovery() -> None:
    out = clv_benchmark(20_000, seed=1, lifetimes_customers=None)
    assert out["n_customers"] == 20_000 and out["n_transactions"] > 20_000
    score = out["score_customers"]
    assert score["n_scored"] == 20_000 and not score["sampled"] and not score["fallback_used"]
    assert score["seconds"] > 0 and score["under_60s"]
    # Exact continuous-time draws: the estimator recovers the generating parameters.
    exact = out["continuous_time_fit"]
    for name, row in {**exact["recovery_bgnbd_per_week"], **exact["recovery_gamma_gamma"]}.items():
        assert abs(row["relative_error"]) < 0.25, name
    assert abs(exact["recovery_bgnbd_per_week"]["a"]["relative_error"]) < 0.15
    assert out["lifetimes"] is None
