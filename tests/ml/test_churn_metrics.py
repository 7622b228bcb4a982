"""Metrics and the key-factor table on hand-made examples whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml.churn.factors import factor_table
from ml.churn.features import FeatureSpec
from ml.churn.metrics import (
    calibration_table,
    capture_and_lift,
    confusion_metrics,
    gains_curve,
    plot_gains,
    prediction_metrics,
    top_share_threshold,
    youden_threshold,
)

# 10 customers, 3 churners. Sorted by score the churners sit at ranks 1, 3 and 6.
Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
P = np.array([0.95, 0.90, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20, 0.10])


def test_confusion_metrics_count_by_hand() -> None:
    # flag the top 4: tp = 2 (ranks 1, 3), fp = 2, fn = 1 (rank 6), tn = 5
    result = confusion_metrics(Y, P >= 0.70)
    assert (result["tp"], result["fp"], result["fn"], result["tn"]) == (2, 2, 1, 5)
    assert result["accuracy"] == pytest.approx(7 / 10)
    assert result["sensitivity"] == pytest.approx(2 / 3)
    assert result["specificity"] == pytest.approx(5 / 7)
    assert result["precision"] == pytest.approx(2 / 4)


def test_capture_and_lift_of_the_top_rows() -> None:
    # top 10% = 1 row, a churner: captures 1 of 3; lift = (1/1) / (3/10)
    capture, lift = capture_and_lift(Y, P, 0.10)
    assert capture == pytest.approx(1 / 3)
    assert lift == pytest.approx(10 / 3)
    # top 20% = 2 rows, one churner: capture 1/3, lift (1/2) / 0.3
    capture, lift = capture_and_lift(Y, P, 0.20)
    assert capture == pytest.approx(1 / 3)
    assert lift == pytest.approx(5 / 3)
    # top 60% = 6 rows catch all three churners
    capture, lift = capture_and_lift(Y, P, 0.60)
    assert capture == pytest.approx(1.0)
    assert lift == pytest.approx(1 / 0.6)


def test_capture_uses_the_score_order_not_the_row_order() -> None:
    shuffled = np.random.default_rng(3).permutation(len(Y))
    assert capture_and_lift(Y[shuffled], P[shuffled], 0.2) == capture_and_lift(
        Y, P, 0.2
    )


def test_random_scores_give_lift_near_one() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200_000) < 0.2
    _, lift = capture_and_lift(y.astype(int), rng.random(200_000), 0.2)
    assert lift == pytest.approx(1.0, abs=0.03)


def test_youden_threshold_separates_a_perfect_ranking() -> None:
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    threshold = youden_threshold(y, p)
    assert 0.3 < threshold <= 0.7
    metrics = confusion_metrics(y, p >= threshold)
    assert metrics["sensitivity"] == 1.0 and metrics["specificity"] == 1.0


def test_top_share_threshold_flags_that_share() -> None:
    threshold = top_share_threshold(P, 0.3)
    assert threshold == 0.80
    assert int(np.sum(P >= threshold)) == 3


def test_prediction_metrics_with_per_row_thresholds() -> None:
    # first half judged at 0.85, second half at 0.45 -> flags rows 0, 1 and 5
    thresholds = np.r_[np.full(5, 0.85), np.full(5, 0.45)]
    metrics = prediction_metrics(Y, P, thresholds)
    assert metrics["flagged"] == 3
    assert metrics["sensitivity"] == pytest.approx(2 / 3)
    assert metrics["threshold"] == pytest.approx(0.65)
    assert metrics["auc"] == pytest.approx(
        17 / 21
    )  # 17 of 21 churner/stayer pairs ordered right
    assert metrics["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    assert metrics["lift_top20"] == pytest.approx(5 / 3)


def test_calibration_table_deciles() -> None:
    y = np.r_[np.zeros(90), np.ones(10)].astype(int)
    p = np.r_[np.full(90, 0.05), np.full(10, 0.9)]
    table = calibration_table(y, p, bins=10)
    assert list(table["rows"]) == [10] * 10
    assert table["observed_rate"].iloc[-1] == 1.0
    assert table["observed_rate"].iloc[:9].sum() == 0.0
    assert table["mean_predicted"].is_monotonic_increasing


def test_gains_curve_runs_from_zero_to_all_churners(tmp_path) -> None:
    gains = gains_curve(Y, P)
    assert gains.iloc[0].tolist() == [0.0, 0.0]
    assert gains.iloc[-1].tolist() == [1.0, 1.0]
    assert gains["share_captured"].is_monotonic_increasing
    path = plot_gains({"model": (Y, P)}, tmp_path / "gains.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_factor_table_ranks_the_informative_feature_first() -> None:
    # `perfect` decides the label, `noise` is independent of it, `partial` is in between.
    frame = pd.DataFrame(
        {
            "perfect": ["a", "a", "b", "b"] * 25,
            "noise": [1.0, 2.0, 1.0, 2.0] * 25,
            "partial": ["x", "x", "x", "y"] * 25,
        }
    )
    y = np.array([1, 1, 0, 0] * 25)
    spec = FeatureSpec(numeric=("noise",), categorical=("perfect", "partial"))
    table = factor_table(frame, y, spec).set_index("feature")
    # balanced label: H = 1 bit; the perfect feature removes all of it
    assert table.loc["perfect", "information_gain_bits"] == pytest.approx(1.0)
    assert table.loc["perfect", "p_value"] < 1e-20
    assert table.loc["noise", "information_gain_bits"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["noise", "p_value"] == pytest.approx(1.0)
    # partial: x holds 2 churners of 3 rows, y none: H(Y|X) = 3/4 * H(2/3) bits
    h = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert table.loc["partial", "information_gain_bits"] == pytest.approx(1 - 0.75 * h)
    assert list(table.sort_values("rank").index) == ["perfect", "partial", "noise"]


def test_factor_table_gives_missing_values_their_own_bin() -> None:
    # label is 1 exactly when the value is missing: all information sits in that bin
    values = np.r_[np.arange(50, dtype=float), np.full(50, np.nan)]
    frame = pd.DataFrame({"score": values})
    y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    table = factor_table(frame, y, FeatureSpec(numeric=("score",)))
    assert table.loc[0, "information_gain_bits"] == pytest.approx(1.0)
    assert table.loc[0, "bins"] == 11  # ten quantile bins + missing
