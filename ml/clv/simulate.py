"""Draw customers from the BG/NBD + Gamma-Gamma generative process (for tests and benchmarks).

Per customer: purchase rate lambda ~ Gamma(r, scale 1/alpha), dropout probability
p ~ Beta(a, b), spend rate nu ~ Gamma(q, scale 1/gamma). After the first purchase at time 0,
repeat purchases arrive as a Poisson(lambda) process; after each repeat purchase the customer
leaves for good with probability p. Each transaction is worth Gamma(p_spend, scale 1/nu).

The simulation is exact and vectorised: with N ~ Geometric(p) repeat purchases before leaving
and K ~ Poisson(lambda T) arrivals in (0, T], the customer makes x = min(N, K) repeat purchases,
at the first x order statistics of K uniform times on (0, T].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ml.clv.bgnbd import BgNbdParams
from ml.clv.gamma_gamma import GammaGammaParams


@dataclass(frozen=True)
class SimulatedCustomers:
    """Per-customer draws (time in the parameters' unit) and their latent traits."""

    x: NDArray[np.float64]
    t_x: NDArray[np.float64]
    T: NDArray[np.float64]
    m_x: NDArray[np.float64]  # mean repeat spend, NaN when x = 0
    purchase_rate: NDArray[np.float64]
    dropout: NDArray[np.float64]
    mean_spend: NDArray[np.float64]  # p_spend / nu


def simulate_customers(
    n: int,
    purchases: BgNbdParams,
    spend: GammaGammaParams,
    T: NDArray[np.float64] | float,
    *,
    seed: int = 0,
) -> SimulatedCustomers:
    """Simulate `n` customers observed for `T` time units after their first purchase."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(purchases.r, 1.0 / purchases.alpha, n)
    drop = rng.beta(purchases.a, purchases.b, n)
    nu = rng.gamma(spend.q, 1.0 / spend.gamma, n)
    n_before_leaving = rng.geometric(np.clip(drop, 1e-300, 1.0))
    arrivals = rng.poisson(lam * T)
    x = np.minimum(n_before_leaving, arrivals)
    t_x = np.zeros(n)
    rep = x > 0
    t_x[rep] = T[rep] * rng.beta(x[rep], arrivals[rep] - x[rep] + 1)
    m_x = np.full(n, np.nan)
    m_x[rep] = rng.gamma(spend.p * x[rep], 1.0 / nu[rep]) / x[rep]
    return SimulatedCustomers(x.astype(float), t_x, T, m_x, lam, drop, spend.p / nu)


def simulate_transactions(
    n: int,
    purchases: BgNbdParams,
    spend: GammaGammaParams,
    *,
    start: str = "2023-01-01",
    as_of: str = "2024-12-31",
    seed: int = 0,
    id_prefix: str = "C",
) -> pd.DataFrame:
    """Transactions (customer_id, txn_at, amount) of `n` customers whose first purchases fall
    uniformly between `start` and `as_of`; parameters are per day. Timestamps are continuous,
    so two purchases on one calendar day merge when summarised by day."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    span = (pd.Timestamp(as_of) + pd.Timedelta(days=1) - t0) / pd.Timedelta(days=1)
    birth = rng.uniform(0.0, span, n)
    T = span - birth
    lam = rng.gamma(purchases.r, 1.0 / purchases.alpha, n)
    drop = rng.beta(purchases.a, purchases.b, n)
    nu = rng.gamma(spend.q, 1.0 / spend.gamma, n)
    arrivals = rng.poisson(lam * T)
    x = np.minimum(rng.geometric(np.clip(drop, 1e-300, 1.0)), arrivals)

    # Order statistics j = 1..x of K uniforms on (0, T): T * S_j / (S_x + G), S_j a running sum
    # of Exp(1) draws and G ~ Gamma(K - x + 1) the rest of the K + 1 spacings.
    owner = np.repeat(np.arange(n), x)
    running = np.cumsum(rng.exponential(1.0, len(owner)))
    group_start = np.cumsum(x) - x  # index of each customer's first repeat purchase
    has = x > 0
    base = np.zeros(n)
    base[has] = np.where(group_start[has] > 0, running[np.maximum(group_start[has] - 1, 0)], 0.0)
    s = running - base[owner]  # S_j within each customer
    s_x = np.zeros(n)
    s_x[has] = s[group_start[has] + x[has] - 1]
    rest = rng.gamma(arrivals - x + 1.0)
    repeat_times = birth[owner] + T[owner] * s / (s_x[owner] + rest[owner])

    times = np.r_[birth, repeat_times]
    who = np.r_[np.arange(n), owner]
    amounts = rng.gamma(spend.p, 1.0 / nu[who])
    width = len(str(n))
    ids = np.char.add(id_prefix, np.char.zfill(np.arange(n).astype(str), width))
    frame = pd.DataFrame(
        {
            "customer_id": ids[who],
            "txn_at": t0 + pd.to_timedelta(times, unit="D"),
            "amount": np.maximum(np.round(amounts, 2), 0.01),  # cents, never 0.00
        }
    )
    return frame.sort_values(["txn_at"], kind="stable").reset_index(drop=True)
