"""Key-factor table: how strongly each feature, on its own, separates churners from stayers.

Each feature is cut into bins (numeric: up to 10 quantile bins, or its own values when it has
that few; categorical: its levels; missing is always a bin of its own). Against the label it
gets

* a chi-square test of independence on the bins x label table (p-value; no continuity
  correction), and
* information gain = H(label) - H(label | bin), the entropy reduction in bits.

Features are ranked by information gain (ties by smaller p-value). The table is univariate:
it says which columns carry signal, not what the model does with them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from ml.churn.features import FeatureSpec


def _entropy_bits(counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return 0.0
    share = counts[counts > 0] / total
    return float(-(share * np.log2(share)).sum())


def bin_codes(values: pd.Series, numeric: bool, bins: int = 10) -> np.ndarray:
    """Integer bin per row; missing values get their own code (the largest)."""
    if numeric:
        x = pd.to_numeric(values, errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        missing = np.isnan(x)
        present = x[~missing]
        distinct = np.unique(present)
        if len(distinct) <= bins:
            codes = np.searchsorted(distinct, x)
        else:
            edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
            codes = np.searchsorted(edges, x, side="right")
        codes = codes.astype(np.int64)
        codes[missing] = codes[~missing].max() + 1 if (~missing).any() else 0
        return codes
    codes, _ = pd.factorize(values.astype("string"), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    codes[codes < 0] = codes.max() + 1
    return codes


def factor_stats(codes: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Chi-square and information gain of one binned feature against a 0/1 label."""
    y = np.asarray(y, dtype=np.int64)
    n_bins = int(codes.max()) + 1 if len(codes) else 0
    table = np.stack(
        [
            np.bincount(codes[y == 0], minlength=n_bins),
            np.bincount(codes[y == 1], minlength=n_bins),
        ],
        axis=1,
    ).astype(np.float64)
    table = table[table.sum(axis=1) > 0]
    h_label = _entropy_bits(table.sum(axis=0))
    n = table.sum()
    h_conditional = (
        sum(row.sum() / n * _entropy_bits(row) for row in table) if n else 0.0
    )
    gain = max(h_label - h_conditional, 0.0)
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        chi2, dof, p_value = 0.0, 0, 1.0
    else:
        result = chi2_contingency(table, correction=False)
        chi2, p_value, dof = (
            float(result.statistic),
            float(result.pvalue),
            int(result.dof),
        )
    return {
        "bins": int(table.shape[0]),
        "chi2": chi2,
        "dof": dof,
        "p_value": p_value,
        "information_gain_bits": gain,
    }


def factor_table(
    frame: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, bins: int = 10
) -> pd.DataFrame:
    """One row per feature: kind, bins, chi2, dof, p_value, information_gain_bits, rank."""
    y = np.asarray(y, dtype=np.int64)
    if len(y) != len(frame):
        raise ValueError("frame and labels differ in length")
    records = []
    for column in spec.features:
        numeric = column in spec.numeric
        stats = factor_stats(bin_codes(frame[column], numeric, bins), y)
        records.append(
            {
                "feature": column,
                "kind": "numeric" if numeric else "categorical",
                **stats,
            }
        )
    table = pd.DataFrame.from_records(records)
    table["information_gain_bits"] = table["information_gain_bits"].round(12)
    table = table.sort_values(
        ["information_gain_bits", "p_value", "feature"], ascending=[False, True, True]
    ).reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table
