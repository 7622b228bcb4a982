"""BG/NBD and Gamma-Gamma: published CDNOW estimates, numerical stability, internal consistency."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from ml.clv import BgNbdParams, GammaGammaParams, bgnbd, gamma_gamma, simulate_customers
from ml.clv._optim import numerical_hessian, unique_rows
from ml.clv.fallback import fit_nbd
from ml.clv.summary import summarise_transactions

CDNOW = Path(__file__).resolve().parents[1] / "data" / "CDNOW_sample.txt"
PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def load_cdnow() -> pd.DataFrame:
    return pd.read_csv(
        CDNOW, sep=r"\s+", header=None, names=["customer_id", "sample_id", "date", "cds", "amount"],
        dtype={"customer_id": str, "date": str},
    )  # fmt: skip


@pytest.fixture(scope="module")
def cdnow_calibration() -> pd.DataFrame:
    """The FHL 2005 calibration summary: 39 weeks to 1997-09-30, same-day purchases merged."""
    return summarise_transactions(
        load_cdnow(), "1997-09-30", date_col="date", date_format="%Y%m%d", time_unit="weeks"
    ).customers


def _rfm(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(frame[k].to_numpy(dtype=float) for k in ("frequency", "recency", "T"))  # type: ignore[return-value]


def test_cdnow_calibration_summary_matches_the_paper(cdnow_calibration: pd.DataFrame) -> None:
    assert len(cdnow_calibration) == 2357
    assert int((cdnow_calibration["frequency"] > 0).sum()) == 946  # repeat buyers in the GG note
    assert int(cdnow_calibration["frequency"].sum()) == 2457  # calibration repeat transactions
    first = cdnow_calibration.iloc[0]  # customer 00004: FHL's example x=2, t_x=30.43, T=38.86
    assert first["customer_id"] == "00004"
    assert (first["frequency"], round(first["recency"], 2), round(first["T"], 2)) == (2, 30.43, 38.86)


def test_bgnbd_reproduces_published_cdnow_estimates(cdnow_calibration: pd.DataFrame) -> None:
    fit = bgnbd.fit(*_rfm(cdnow_calibration))
    assert fit.converged, fit.message
    for name, published in PUBLISHED.as_dict().items():
        assert getattr(fit.params, name) == pytest.approx(published, rel=0.01), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert fit.n_customers == 2357 and fit.n_unique_rows < 2357  # identical rows were collapsed
    assert fit.seconds < 2.0


def test_conditional_expectation_of_the_paper_example() -> None:
    value = bgnbd.expected_purchases(PUBLISHED, 39, 2, 30.43, 38.86)
    assert float(value) == pytest.approx(1.226, abs=5e-4)


def test_gamma_gamma_reproduces_published_cdnow_estimates(cdnow_calibration: pd.DataFrame) -> None:
    x = cdnow_calibration["frequency"].to_numpy(dtype=float)
    m = cdnow_calibration["monetary_value"].to_numpy(dtype=float)
    usable = gamma_gamma.usable_for_fit(x, m)
    assert usable.sum() == 946
    fit = gamma_gamma.fit(x[usable], m[usable])
    assert fit.converged, fit.message
    assert fit.params.p == pytest.approx(6.25, rel=0.01)
    assert fit.params.q == pytest.approx(3.74, rel=0.01)
    assert fit.params.gamma == pytest.approx(15.44, rel=0.01)
    assert fit.standard_errors is not None and all(v > 0 for v in fit.standard_errors.values())


def test_log_likelihood_matches_the_closed_form_product() -> None:
    """Direct (overflow-prone) formula of FHL eq. 6 on small inputs equals the log-space version."""
    p = PUBLISHED
    for x, t_x, T in [(0, 0.0, 30.0), (1, 5.0, 30.0), (4, 20.5, 38.0)]:
        beta = special.beta
        common = special.gamma(p.r + x) * p.alpha**p.r / special.gamma(p.r)
        direct = beta(p.a, p.b + x) / beta(p.a, p.b) * common / (p.alpha + T) ** (p.r + x)
        if x > 0:
            direct += beta(p.a + 1, p.b + x - 1) / beta(p.a, p.b) * common / (p.alpha + t_x) ** (p.r + x)
        assert float(bgnbd.customer_log_likelihood(p, x, t_x, T)) == pytest.approx(math.log(direct), rel=1e-12)


def test_analytic_gradient_matches_finite_differences(cdnow_calibration: pd.DataFrame) -> None:
    (ux, utx, uT), counts, _ = unique_rows(*_rfm(cdnow_calibration))
    objective = bgnbd._objective(ux, utx, uT, counts)
    theta = np.log([0.3, 5.0, 0.7, 2.0])
    _, grad = objective(theta)
    h = 1e-6
    numeric = [(objective(theta + h * e)[0] - objective(theta - h * e)[0]) / (2 * h) for e in np.eye(4)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)
    x = cdnow_calibration["frequency"].to_numpy(dtype=float)
    m = cdnow_calibration["monetary_value"].to_numpy(dtype=float)
    use = x > 0
    gg_objective = gamma_gamma._objective(x[use], m[use], np.ones(int(use.sum())))
    theta = np.log([5.0, 3.0, 12.0])
    _, grad = gg_objective(theta)
    numeric = [(gg_objective(theta + h * e)[0] - gg_objective(theta - h * e)[0]) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_weights_are_equivalent_to_repeated_rows() -> None:
    x, t_x, T = np.array([0, 1, 3, 0, 2.0]), np.array([0, 4, 20, 0, 9.0]), np.array([30, 30, 31, 25, 28.0])
    w = np.array([40, 12, 5, 33, 9])
    weighted = bgnbd.log_likelihood(PUBLISHED, x, t_x, T, weights=w)
    repeated = bgnbd.log_likelihood(PUBLISHED, np.repeat(x, w), np.repeat(t_x, w), np.repeat(T, w))
    assert weighted == pytest.approx(repeated, rel=1e-12)
    fit_w = bgnbd.fit(x, t_x, T, weights=w)
    fit_r = bgnbd.fit(np.repeat(x, w), np.repeat(t_x, w), np.repeat(T, w))
    assert fit_w.n_customers == fit_r.n_customers == w.sum()
    np.testing.assert_allclose(list(fit_w.params.as_dict().values()), list(fit_r.params.as_dict().values()), rtol=1e-5)


def test_p_alive_properties() -> None:
    p = PUBLISHED
    assert float(bgnbd.p_alive(p, 0, 0, 30)) == 1.0  # no repeat purchase: cannot have dropped out yet
    recent = bgnbd.p_alive(p, 5, 38, 39)
    stale = bgnbd.p_alive(p, 5, 5, 39)
    assert 0 < stale < recent < 1
    # P(alive) of a frequent buyer silent for long is tiny but computed without overflow.
    extreme = bgnbd.p_alive(p, 5000, 10, 1000)
    assert np.isfinite(extreme) and 0 <= extreme < 1e-100


def _expected_by_integration(p: BgNbdParams, t: float, x: float, t_x: float, T: float) -> float:
    """Independent reference for eq. 10: given alive, lambda ~ Gamma(r+x, alpha+T) and
    p ~ Beta(a, b+x), and E[purchases in t | lambda, p] = (1 - exp(-lambda p t)) / p, so
    E = P(alive) * integral of [1 - ((alpha+T)/(alpha+T+q t))^(r+x)] / q  Beta(q; a, b+x) dq."""

    def integrand(q: float) -> float:
        tail = math.exp((p.b + x - 1) * math.log1p(-q)) if q < 1 else 0.0  # (1-q)^(b+x-1)
        if q == 0.0:
            return (p.r + x) * t / (p.alpha + T)  # the limit as q -> 0
        return -math.expm1((p.r + x) * (math.log(p.alpha + T) - math.log(p.alpha + T + q * t))) / q * tail

    # q^(a-1) is handled by the quadrature weight; the Beta mass is gone beyond 200/(b+x).
    upper = min(1.0, 200.0 / (p.b + x))
    value, _ = integrate.quad(integrand, 0.0, upper, weight="alg", wvar=(p.a - 1, 0.0), limit=200)
    return float(bgnbd.p_alive(p, x, t_x, T)) * value / math.exp(special.betaln(p.a, p.b + x))


@pytest.mark.parametrize(
    ("params", "t", "x", "t_x", "T"),
    [
        (PUBLISHED, 39.0, 0, 0.0, 38.86),
        (PUBLISHED, 39.0, 2, 30.43, 38.86),
        (PUBLISHED, 39.0, 7, 35.0, 38.0),
        (PUBLISHED, 500.0, 1, 1.0, 2.0),  # long horizon, short history: z close to 1
        (PUBLISHED, 39.0, 0, 0.0, 0.0),  # first purchase today
        (BgNbdParams(0.9, 25.0, 0.5, 3.0), 365.0, 300, 700.0, 730.0),  # per-day, heavy buyer
        (BgNbdParams(0.9, 25.0, 0.5, 3.0), 365.0, 3000, 730.0, 730.0),  # bought today, 4 a day
        (BgNbdParams(2.0, 10.0, 3.0, 40.0), 365.0, 50, 600.0, 730.0),  # a > 1
    ],
)
def test_expected_purchases_matches_numerical_integration(
    params: BgNbdParams, t: float, x: float, t_x: float, T: float
) -> None:
    ours = float(bgnbd.expected_purchases(params, t, x, t_x, T))
    assert np.isfinite(ours)
    assert ours == pytest.approx(_expected_by_integration(params, t, x, t_x, T), rel=1e-7)


def test_p_alive_of_a_heavy_buyer_gone_quiet_is_tiny_not_nan() -> None:
    """27 purchases a day for two years, then a day of silence: the model calls it a dropout."""
    p = BgNbdParams(0.9, 25.0, 0.5, 3.0)
    alive = float(bgnbd.p_alive(p, 20000, 729, 730))
    assert 0 < alive < 1e-6
    assert np.isfinite(bgnbd.expected_purchases(p, 365.0, 20000, 729, 730))


def test_expected_purchases_grows_with_horizon_and_starts_at_zero() -> None:
    t = np.array([0.0, 1.0, 10.0, 52.0, 520.0, 5200.0])
    out = bgnbd.expected_purchases(PUBLISHED, t, 2, 30.43, 38.86)
    assert out[0] == 0.0
    assert np.all(np.diff(out) > 0)


def test_series_tail_agrees_with_scipy_hyp2f1() -> None:
    A, B = 2.1, 0.37
    C = np.array([0.8, 1.5, 3.0, 12.0, 300.0])
    z = np.array([0.0, 0.1, 0.5, 0.9, 0.99])
    ours = bgnbd.hyp2f1_tail(A, B, C[:, None], z[None, :])
    reference = (special.hyp2f1(A, B, C[:, None], z[None, :]) - 1.0) / B
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-14)


def test_a_equal_to_one_is_handled_without_cancellation() -> None:
    """At a = 1 the closed form divides 0 by 0; the series branch gives the limit continuously."""
    x, t_x, T = np.array([0, 1, 4.0]), np.array([0, 10, 30.0]), np.array([39, 39, 39.0])

    def at(a: float) -> np.ndarray:
        return bgnbd.expected_purchases(BgNbdParams(0.24, 4.4, a, 2.4), 39.0, x, t_x, T)

    for a in (1.0, 1 + 5e-5, 1 - 5e-5):  # series branch (|a - 1| < 1e-4)
        h = 1e-3  # neighbours on the scipy branch
        assert np.all(np.isfinite(at(a)))
        np.testing.assert_allclose(at(a), (at(a - h) + at(a + h)) / 2, rtol=1e-5)


def test_unconditional_expectation_matches_simulation() -> None:
    """E[X(t)] of a new customer equals the mean of simulated repeat purchases over t."""
    spend = GammaGammaParams(6.25, 3.74, 15.44)
    sim = simulate_customers(400_000, PUBLISHED, spend, 39.0, seed=7)
    expected = float(bgnbd.expected_purchases_new_customer(PUBLISHED, 39.0))
    standard_error = sim.x.std() / math.sqrt(len(sim.x))
    assert abs(sim.x.mean() - expected) < 4 * standard_error


def test_conditional_expectation_matches_simulated_future() -> None:
    """Simulate 78 weeks of purchase paths; forecast weeks 40-78 from weeks 1-39 and compare."""
    rng = np.random.default_rng(3)
    n, cap = 200_000, 100
    lam = rng.gamma(PUBLISHED.r, 1 / PUBLISHED.alpha, n)
    drop = rng.beta(PUBLISHED.a, PUBLISHED.b, n)
    times = np.cumsum(rng.exponential(1.0, (n, cap)), axis=1) / lam[:, None]
    last_before_leaving = rng.geometric(drop)  # repeat purchase after which the customer leaves
    bought = (np.arange(1, cap + 1)[None, :] <= last_before_leaving[:, None]) & (times <= 78.0)
    calibration = bought & (times <= 39.0)
    x = calibration.sum(axis=1).astype(float)
    t_x = np.where(calibration, times, 0.0).max(axis=1)
    future = (bought & (times > 39.0)).sum(axis=1)
    forecast = bgnbd.expected_purchases(PUBLISHED, 39.0, x, t_x, 39.0)
    assert forecast.sum() == pytest.approx(future.sum(), rel=0.03)
    for k in (0, 1, 3):
        cell = x == k
        assert forecast[cell].mean() == pytest.approx(future[cell].mean(), rel=0.08, abs=0.01)


def test_parameter_recovery_from_simulated_customers() -> None:
    true_spend = GammaGammaParams(6.25, 3.74, 15.44)
    T = np.random.default_rng(11).uniform(27, 39, 200_000)
    sim = simulate_customers(200_000, PUBLISHED, true_spend, T, seed=11)
    fit = bgnbd.fit(sim.x, sim.t_x, sim.T)
    assert fit.converged, fit.message
    for name, value in PUBLISHED.as_dict().items():
        assert getattr(fit.params, name) == pytest.approx(value, rel=0.08), name
    use = sim.x > 0
    gg = gamma_gamma.fit(sim.x[use], sim.m_x[use])
    for name, value in true_spend.as_dict().items():
        assert getattr(gg.params, name) == pytest.approx(value, rel=0.08), name


def test_no_dropout_data_is_reported_as_not_identified_and_nbd_fits() -> None:
    rng = np.random.default_rng(0)
    T = rng.uniform(20, 52, 3000)
    k = rng.poisson(rng.gamma(0.5, 1 / 5, 3000) * T).astype(float)  # nobody ever leaves
    t_x = np.where(k > 0, T * rng.beta(np.maximum(k, 1), 1), 0.0)
    fit = bgnbd.fit(k, t_x, T)
    assert not fit.converged
    assert "identify" in fit.message
    nbd = fit_nbd(k, T)
    assert nbd.converged
    assert nbd.params.r == pytest.approx(0.5, rel=0.15) and nbd.params.alpha == pytest.approx(5.0, rel=0.15)


def test_fit_failures_are_reported_not_raised() -> None:
    T = np.linspace(1, 40, 500)
    zeros = np.zeros(500)
    none_repeat = bgnbd.fit(zeros, zeros, T)
    assert not none_repeat.converged and "no customer made a repeat purchase" in none_repeat.message
    no_time = bgnbd.fit(zeros, zeros, zeros)
    assert not no_time.converged and "every T is 0" in no_time.message
    x = np.r_[np.ones(250), np.zeros(250)]
    capped = bgnbd.fit(x, x * T / 2, T, max_iter=1)
    assert not capped.converged and "without converging" in capped.message


def test_invalid_summaries_are_rejected_with_the_row() -> None:
    with pytest.raises(ValueError, match=r"customer row 1 .* recency outside \[0, T\]"):
        bgnbd.fit([0, 2], [0, 12], [10, 10])
    with pytest.raises(ValueError, match="no repeat purchase but a non-zero recency"):
        bgnbd.fit([0], [3], [10])
    with pytest.raises(ValueError, match="needs x >= 1"):
        gamma_gamma.fit([1, 0], [10.0, 5.0])


def test_gamma_gamma_expected_spend_shrinks_towards_population_mean() -> None:
    p = GammaGammaParams(6.25, 3.74, 15.44)
    population = p.population_mean
    assert float(gamma_gamma.expected_spend(p, 0, np.nan)) == pytest.approx(population)
    one = float(gamma_gamma.expected_spend(p, 1, 100.0))
    many = float(gamma_gamma.expected_spend(p, 20, 100.0))
    assert population < one < many < 100.0
    # Non-positive mean spend is scored as zero spend over x purchases: below the prior mean.
    refunded = gamma_gamma.expected_spend(p, np.array([3, 3]), np.array([0.0, -25.0]))
    assert refunded[0] == refunded[1] == pytest.approx(p.p * p.gamma / (p.p * 3 + p.q - 1))
    assert refunded[0] < population


def test_numerical_hessian_of_a_quadratic() -> None:
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    hessian = numerical_hessian(lambda th: (0.5 * th @ a @ th, a @ th), np.array([0.3, -0.2]))
    np.testing.assert_allclose(hessian, a, atol=1e-8)


def test_agrees_with_lifetimes_when_installed(cdnow_calibration: pd.DataFrame) -> None:
    """Cross-check against the reference implementation (only with `uv sync --group bench`)."""
    lifetimes = pytest.importorskip("lifetimes")
    x, t_x, T = _rfm(cdnow_calibration)
    theirs = lifetimes.BetaGeoFitter().fit(x, t_x, T)
    ours = bgnbd.fit(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours.params, name) == pytest.approx(float(theirs.params_[name]), rel=1e-4)
    reference = np.asarray(theirs.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T), dtype=float)
    np.testing.assert_allclose(bgnbd.expected_purchases(ours.params, 39, x, t_x, T), reference, rtol=1e-4)
    np.testing.assert_allclose(
        bgnbd.p_alive(ours.params, x, t_x, T), theirs.conditional_probability_alive(x, t_x, T), rtol=1e-4
    )
