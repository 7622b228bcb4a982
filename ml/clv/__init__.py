"""Customer lifetime value: BG/NBD purchases, Gamma-Gamma spend, discounted CLV, backtests.

Pure Python (numpy/scipy/pandas); nothing here imports Dagster. See docs/clv.md.
"""

from ml.clv.backtest import BacktestResult, backtest, plot_cumulative
from ml.clv.bgnbd import BgNbdFit, BgNbdParams
from ml.clv.clv import customer_lifetime_value, discounted_purchases
from ml.clv.fallback import NbdParams, PooledRate, fit_nbd
from ml.clv.gamma_gamma import GammaGammaFit, GammaGammaParams
from ml.clv.score import (
    CODE_VERSION,
    ClvConfig,
    ClvMetadata,
    ClvScores,
    score_customers,
    score_rfm,
    score_summary,
)
from ml.clv.simulate import simulate_customers, simulate_transactions
from ml.clv.summary import RfmSummary, summarise_transactions

__all__ = [
    "CODE_VERSION",
    "BacktestResult",
    "BgNbdFit",
    "BgNbdParams",
    "ClvConfig",
    "ClvMetadata",
    "ClvScores",
    "GammaGammaFit",
    "GammaGammaParams",
    "NbdParams",
    "PooledRate",
    "RfmSummary",
    "backtest",
    "customer_lifetime_value",
    "discounted_purchases",
    "fit_nbd",
    "plot_cumulative",
    "score_customers",
    "score_rfm",
    "score_summary",
    "simulate_customers",
    "simulate_transactions",
    "summarise_transactions",
]
