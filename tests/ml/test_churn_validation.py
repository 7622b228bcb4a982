"""Temporal split without customer-time leakage; k-fold and internal hold-outs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn.synthetic import synthetic_churn_features
from ml.churn.training import LabelDefinition, train_from_snapshots
from ml.churn.validation import (
    holdout_split,
    kfold_splits,
    label_window_end,
    temporal_split,
)

HORIZON = 90


def _snapshots(
    as_of: str = "2025-06-30", months: int = 12, customers: int = 4
) -> pd.DataFrame:
    dates = pd.date_range(end=as_of, periods=months, freq="ME")
    frame = pd.DataFrame(
        [(c, d) for d in dates for c in range(customers)],
        columns=["customer_id", "snapshot_date"],
    )
    # a label is known only when its whole window lies before the as-of date
    frame["labelled"] = frame["snapshot_date"] + pd.Timedelta(
        days=HORIZON
    ) <= pd.Timestamp(as_of)
    return frame


def test_validation_rows_come_only_from_the_latest_labelled_snapshot() -> None:
    frame = _snapshots()
    split = temporal_split(frame["snapshot_date"], frame["labelled"], HORIZON)
    latest_labelled = frame.loc[frame["labelled"], "snapshot_date"].max()
    assert split.validation_date == latest_labelled == pd.Timestamp("2025-03-31")
    assert set(frame.loc[split.validation, "snapshot_date"]) == {latest_labelled}
    assert split.validation.sum() == 4


def test_no_training_label_window_ends_after_the_validation_snapshot() -> None:
    frame = _snapshots()
    split = temporal_split(frame["snapshot_date"], frame["labelled"], HORIZON)
    window_end = label_window_end(frame.loc[split.train, "snapshot_date"], HORIZON)
    assert (window_end <= split.validation_date).all()
    # ... and every labelled snapshot whose window does end by then is used
    usable = frame["labelled"] & (
        frame["snapshot_date"] + pd.Timedelta(days=HORIZON) <= split.validation_date
    )
    assert (split.train == usable.to_numpy()).all()
    # 2024-12-31 + 90 days = 2025-03-31 (allowed); 2025-01-31 + 90 days is after it
    assert max(split.train_dates) == pd.Timestamp("2024-12-31")
    assert not (split.train & split.validation).any()


def test_unlabelled_rows_never_train_even_when_old() -> None:
    frame = _snapshots()
    frame.loc[frame["snapshot_date"] == frame["snapshot_date"].min(), "labelled"] = (
        False
    )
    split = temporal_split(frame["snapshot_date"], frame["labelled"], HORIZON)
    assert not (split.train & ~frame["labelled"].to_numpy()).any()


def test_a_history_too_short_for_the_label_window_is_an_error() -> None:
    frame = _snapshots(months=4)
    with pytest.raises(ValueError, match="label window ends on or before"):
        temporal_split(frame["snapshot_date"], frame["labelled"], HORIZON)


def test_train_from_snapshots_respects_the_split() -> None:
    features = synthetic_churn_features(400, 10, seed=5)
    result = train_from_snapshots(features, label=LabelDefinition(horizon_days=HORIZON))
    window = result.report["validation"]
    validation_date = pd.Timestamp(window["validation_snapshot"])
    last_train = pd.Timestamp(window["last_training_snapshot"])
    assert last_train + pd.Timedelta(days=HORIZON) <= validation_date
    eligible = features[features["is_eligible"]]
    assert result.report["rows"]["validation"] == int(
        (eligible["snapshot_date"] == validation_date).sum()
    )
    expected_train = eligible["churned"].notna() & (
        eligible["snapshot_date"] + pd.Timedelta(days=HORIZON) <= validation_date
    )
    assert result.report["rows"]["train"] == int(expected_train.sum())
    assert result.report["rows"]["ineligible"] == int((~features["is_eligible"]).sum())


def test_kfold_is_stratified_and_covers_every_row_once() -> None:
    y = np.r_[np.ones(30), np.zeros(70)].astype(int)
    seen = np.zeros(100, dtype=int)
    for train, test in kfold_splits(y, folds=5, seed=1):
        seen[test] += 1
        assert y[test].sum() == 6  # 30 churners spread evenly over 5 folds
        assert not set(train) & set(test)
    assert (seen == 1).all()


def test_grouped_kfold_keeps_a_customer_in_one_fold() -> None:
    groups = np.repeat(np.arange(50), 3)
    y = np.repeat(np.arange(50) % 4 == 0, 3).astype(int)
    for train, test in kfold_splits(y, folds=5, groups=groups):
        assert not set(groups[train]) & set(groups[test])


def test_holdout_by_group_never_splits_a_customer() -> None:
    groups = np.repeat(np.arange(1000), 5)
    y = np.tile([0, 0, 0, 0, 1], 1000)
    kept, held = holdout_split(y, 0.2, seed=0, groups=groups)
    assert not set(groups[kept]) & set(groups[held])
    assert 0.15 < len(held) / len(y) < 0.25
    assert len(kept) + len(held) == len(y)
