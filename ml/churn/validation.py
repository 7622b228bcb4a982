"""Which rows train, calibrate and validate a model.

Warehouse training is temporal: validation rows come only from the latest labelled snapshot,
and a snapshot trains only if its whole label window ends on or before that validation date,
so no training label has seen anything that happened after the validation snapshot.
Generic tables (`churn evaluate`) use stratified k-fold instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)


@dataclass(frozen=True)
class TemporalSplit:
    train: np.ndarray  # boolean mask over the input rows
    validation: np.ndarray  # boolean mask over the input rows
    validation_date: pd.Timestamp
    train_dates: tuple[pd.Timestamp, ...]
    horizon_days: int

    def to_dict(self) -> dict[str, object]:
        return {
            "validation_snapshot": self.validation_date.date().isoformat(),
            "first_training_snapshot": self.train_dates[0].date().isoformat(),
            "last_training_snapshot": self.train_dates[-1].date().isoformat(),
            "training_snapshots": [d.date().isoformat() for d in self.train_dates],
            "label_horizon_days": self.horizon_days,
        }


def label_window_end(snapshot_dates: pd.Series, horizon_days: int) -> pd.Series:
    """The last day a snapshot's label looks at: snapshot_date + horizon."""
    return pd.to_datetime(snapshot_dates) + pd.Timedelta(days=horizon_days)


def temporal_split(
    snapshot_dates: pd.Series,
    labelled: pd.Series | np.ndarray,
    horizon_days: int,
    validation_date: object | None = None,
) -> TemporalSplit:
    """Train on older snapshots, validate on the latest labelled one.

    `labelled` marks rows whose label is known (the label window is complete). The validation
    date is the latest snapshot with labelled rows unless given. Training rows are labelled
    rows whose label window (snapshot + `horizon_days`) ends on or before the validation date.
    """
    if horizon_days < 0:
        raise ValueError("horizon_days must be >= 0")
    dates = pd.to_datetime(
        pd.Series(snapshot_dates).reset_index(drop=True)
    ).dt.normalize()
    known = np.asarray(labelled, dtype=bool)
    if len(known) != len(dates):
        raise ValueError("snapshot_dates and labelled differ in length")
    if not known.any():
        raise ValueError(
            "no labelled rows: every snapshot's label window is still open"
        )
    if validation_date is None:
        valid_date = dates[known].max()
    else:
        valid_date = pd.Timestamp(validation_date).normalize()
        if not (known & (dates == valid_date).to_numpy()).any():
            raise ValueError(
                f"no labelled rows on the validation snapshot {valid_date.date()}"
            )
    validation = known & (dates == valid_date).to_numpy()
    window_end = label_window_end(dates, horizon_days)
    train = known & (window_end <= valid_date).to_numpy()
    if not train.any():
        raise ValueError(
            f"no snapshot's {horizon_days}-day label window ends on or before the validation "
            f"snapshot {valid_date.date()}; need snapshots at least {horizon_days} days older"
        )
    train_dates = tuple(pd.Timestamp(d) for d in sorted(pd.unique(dates[train])))
    return TemporalSplit(train, validation, valid_date, train_dates, horizon_days)


def kfold_splits(
    y: np.ndarray,
    folds: int = 5,
    seed: int = 42,
    groups: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold indices; grouped (no id in two folds) when `groups` is given."""
    y = np.asarray(y)
    positives = int(y.sum())
    if min(positives, len(y) - positives) < folds:
        raise ValueError(
            f"{folds}-fold validation needs at least {folds} rows of each class; "
            f"have {positives} churned and {len(y) - positives} stayed"
        )
    if groups is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        yield from splitter.split(np.zeros(len(y)), y)
    else:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        yield from splitter.split(np.zeros(len(y)), y, groups)


def holdout_split(
    y: np.ndarray,
    fraction: float,
    seed: int,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (kept, held out) with about `fraction` held out.

    With `groups` (customer ids), whole groups are held out, so a customer seen in several
    snapshots never sits on both sides. Without, the split is stratified on the label.
    """
    if not 0 < fraction < 1:
        raise ValueError("holdout fraction must be between 0 and 1")
    y = np.asarray(y)
    index = np.arange(len(y))
    if groups is None:
        kept, held = train_test_split(
            index, test_size=fraction, stratify=y, random_state=seed
        )
        return np.sort(kept), np.sort(held)
    codes, uniques = pd.factorize(pd.Series(groups), use_na_sentinel=False)
    rng = np.random.default_rng(seed)
    held_group = rng.random(len(uniques)) < fraction
    held_mask = held_group[codes]
    return index[~held_mask], index[held_mask]
