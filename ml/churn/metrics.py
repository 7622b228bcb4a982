"""Model quality numbers, the calibration table and the cumulative gains chart.

All functions take the true labels (0/1) and predicted churn probabilities of the same rows.
"Top x%" always means the ceil(x * n) rows with the highest probability (ties broken by row
order), which is the list a retention team would call first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

TOP_SHARES = (0.1, 0.2)


def _arrays(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("labels and scores must be 1-d arrays of the same length")
    if len(y) == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    return y, p


def confusion_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, sensitivity (recall of churners), specificity, precision and the counts."""
    y = np.asarray(y_true, dtype=np.int64)
    hit = np.asarray(predicted, dtype=bool)
    tp = int(np.sum(hit & (y == 1)))
    fp = int(np.sum(hit & (y == 0)))
    tn = int(np.sum(~hit & (y == 0)))
    fn = int(np.sum(~hit & (y == 1)))
    n = tp + fp + tn + fn
    return {
        "accuracy": (tp + tn) / n if n else math.nan,
        "sensitivity": tp / (tp + fn) if tp + fn else math.nan,
        "specificity": tn / (tn + fp) if tn + fp else math.nan,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def top_count(n: int, share: float) -> int:
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1]")
    return max(1, math.ceil(share * n - 1e-9))


def capture_and_lift(
    y_true: np.ndarray, scores: np.ndarray, share: float
) -> tuple[float, float]:
    """(capture, lift) of the top `share` of rows by score.

    capture = churners in the top rows / all churners; lift = churn rate in the top rows /
    overall churn rate (= capture / share of rows taken).
    """
    y, p = _arrays(y_true, scores)
    positives = int(y.sum())
    if positives == 0:
        return math.nan, math.nan
    k = top_count(len(y), share)
    order = np.argsort(-p, kind="stable")[:k]
    caught = int(y[order].sum())
    capture = caught / positives
    lift = (caught / k) / (positives / len(y))
    return capture, lift


def youden_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The probability cut-off that maximises sensitivity + specificity - 1 (Youden's J)."""
    y, p = _arrays(y_true, scores)
    if y.min() == y.max():
        raise ValueError("Youden's J needs both churned and stayed rows")
    fpr, tpr, thresholds = roc_curve(y, p)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def top_share_threshold(scores: np.ndarray, share: float) -> float:
    """The cut-off that flags the top `share` of rows (the k-th highest score)."""
    p = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    return float(p[top_count(len(p), share) - 1])


def calibration_table(
    y_true: np.ndarray, scores: np.ndarray, bins: int = 10
) -> pd.DataFrame:
    """Rows sorted by predicted probability cut into `bins` equal-count groups (deciles).

    Per group: rows, mean predicted probability, observed churn rate, and their difference.
    """
    y, p = _arrays(y_true, scores)
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, min(bins, len(order)))
    records = []
    for number, rows in enumerate(groups, start=1):
        records.append(
            {
                "bin": number,
                "rows": len(rows),
                "min_predicted": float(p[rows].min()),
                "max_predicted": float(p[rows].max()),
                "mean_predicted": float(p[rows].mean()),
                "observed_rate": float(y[rows].mean()),
            }
        )
    table = pd.DataFrame.from_records(records)
    table["difference"] = table["mean_predicted"] - table["observed_rate"]
    return table


def gains_curve(
    y_true: np.ndarray, scores: np.ndarray, points: int = 1000
) -> pd.DataFrame:
    """Cumulative gains: share of rows contacted (best first) vs share of churners captured."""
    y, p = _arrays(y_true, scores)
    positives = max(int(y.sum()), 1)
    captured = np.cumsum(y[np.argsort(-p, kind="stable")]) / positives
    n = len(y)
    at = np.unique(np.linspace(1, n, num=min(points, n)).round().astype(np.int64))
    return pd.DataFrame(
        {
            "share_contacted": np.r_[0.0, at / n],
            "share_captured": np.r_[0.0, captured[at - 1]],
        }
    )


def prediction_metrics(
    y_true: np.ndarray, scores: np.ndarray, threshold: float | np.ndarray
) -> dict[str, float]:
    """AUC, Brier score, threshold metrics and capture/lift at the top 10% and 20%.

    `threshold` is one cut-off, or one per row (k-fold: each row uses its own fold's
    cut-off); the reported threshold is then their mean.
    """
    y, p = _arrays(y_true, scores)
    both = y.min() != y.max()
    flagged = p >= np.asarray(threshold, dtype=np.float64)
    out: dict[str, float] = {
        "auc": float(roc_auc_score(y, p)) if both else math.nan,
        "brier": float(brier_score_loss(y, p)),
        "threshold": float(np.mean(threshold)),
    }
    confusion = confusion_metrics(y, flagged)
    out.update(
        {
            k: confusion[k]
            for k in ("accuracy", "sensitivity", "specificity", "precision")
        }
    )
    for share in TOP_SHARES:
        capture, lift = capture_and_lift(y, p, share)
        tag = f"top{round(share * 100)}"
        out[f"capture_{tag}"] = capture
        out[f"lift_{tag}"] = lift
    out["rows"] = len(y)
    out["churners"] = int(y.sum())
    out["flagged"] = int(flagged.sum())
    return out


def plot_gains(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    title: str = "Cumulative gains",
) -> Path:
    """Write a cumulative gains chart (one line per model, plus random and perfect) as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5), dpi=110)
    ax = figure.subplots()
    base_rate = None
    for name, (y, p) in curves.items():
        gains = gains_curve(y, p)
        ax.plot(gains["share_contacted"], gains["share_captured"], label=name)
        base_rate = float(np.mean(y))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    if base_rate:
        ax.plot(
            [0, base_rate, 1], [0, 1, 1], linestyle=":", color="black", label="perfect"
        )
    for share in TOP_SHARES:
        ax.axvline(share, color="lightgrey", linewidth=0.8)
    ax.set_xlabel("share of customers contacted (highest risk first)")
    ax.set_ylabel("share of churners captured")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
