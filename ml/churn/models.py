"""The two candidate models, their calibration, threshold, and the champion rule.

* scorecard: standardized L2 logistic regression on the `scorecard_design` matrix. Its
  coefficients are log-odds per standard deviation, and coefficient x standardized value is
  each feature's contribution to a customer's risk relative to the training population.
* challenger: HistGradientBoostingClassifier with native categorical and missing-value
  support, shallow trees, L2 leaf regularization and early stopping on a held-out slice.

Training rows are split once into a fitting part and a calibration part (whole customers are
held out when customer ids are given). Both models fit on the fitting part; each is then
calibrated (sigmoid by default, isotonic on request) and gets its decision threshold on the
calibration part. Validation rows are never touched here, so the validation metrics are
honest for the calibrated probabilities and the threshold alike.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from ml.churn.features import (
    FeatureSpec,
    challenger_categorical_mask,
    challenger_encoder,
    prepare_frame,
    scorecard_design,
)
from ml.churn.metrics import top_share_threshold, youden_threshold
from ml.churn.validation import holdout_split

log = logging.getLogger(__name__)

SCORECARD = "scorecard"
CHALLENGER = "challenger"
CANDIDATES = (SCORECARD, CHALLENGER)
MIN_ROWS_PER_CLASS = 5
# Below this many rows, OpenMP/BLAS thread start-up and barriers cost more than they save (and
# far more on a machine whose cores are busy), so fitting and predicting use one thread.
SINGLE_THREAD_ROWS = 50_000
# Rows used to check the sign of each design column's association with churn.
SIGN_CHECK_ROWS = 200_000


@contextmanager
def thread_limit(n_rows: int, threads: int | None = None) -> Iterator[None]:
    """Cap native threads at `threads`, or at one for small data when `threads` is None."""
    limit = (
        threads if threads is not None else (1 if n_rows < SINGLE_THREAD_ROWS else None)
    )
    if limit is None:
        yield
    else:
        with threadpool_limits(limits=limit):
            yield


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how the candidates are fitted, calibrated and compared."""

    seed: int = 42
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    calibration_fraction: float = 0.2
    # "youden": maximise sensitivity + specificity - 1 on the calibration rows;
    # "top_share": flag the `top_share` riskiest share of the calibration rows.
    threshold_rule: Literal["youden", "top_share"] = "youden"
    top_share: float = 0.2
    # A challenger must beat the scorecard's AUC by more than this to become champion.
    tie_tolerance: float = 0.005
    scorecard_c: float = 1.0
    scorecard_max_iter: int = 1000
    # The challenger (and nothing else) fits on at most this many rows, drawn at random.
    challenger_max_rows: int | None = 500_000
    challenger_learning_rate: float = 0.05
    challenger_max_iter: int = 500
    challenger_max_leaf_nodes: int = 15
    challenger_min_samples_leaf: int = 50
    challenger_l2: float = 1.0
    challenger_early_stopping_fraction: float = 0.1
    challenger_n_iter_no_change: int = 20
    # Native (OpenMP/BLAS) threads for fitting and scoring. One by default: the nightly job
    # shares the machine with DuckDB, dbt and other assets, and on busy cores OpenMP barriers
    # made the boosting fit six times slower with two threads than with one. None uses every
    # core (still one below SINGLE_THREAD_ROWS rows); use it on a dedicated machine.
    threads: int | None = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChurnModel:
    """Both fitted, calibrated candidates, their thresholds, and which one is champion.

    `predict_proba` gives the champion's calibrated churn probability; `contributions` gives
    the scorecard's per-feature log-odds contributions that the reasons are built from.
    """

    spec: FeatureSpec
    calibrated: dict[str, CalibratedClassifierCV]
    thresholds: dict[str, float]
    champion: str = SCORECARD
    champion_reason: str = ""
    version: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    threads: int | None = 1
    # Design columns allowed to give reasons (see `sign_consistent_columns`); None: all.
    reason_columns: np.ndarray | None = None

    @property
    def threshold(self) -> float:
        return self.thresholds[self.champion]

    @property
    def scorecard(self) -> Pipeline:
        return self.calibrated[SCORECARD].estimator.estimator

    def predict_proba(
        self, frame: pd.DataFrame, candidate: str | None = None, prepared: bool = False
    ) -> np.ndarray:
        """Calibrated churn probability of each row (champion unless `candidate` is named)."""
        X = frame if prepared else prepare_frame(frame, self.spec)
        model = self.calibrated[candidate or self.champion]
        with thread_limit(len(X), self.threads):
            return model.predict_proba(X)[:, 1]

    @cached_property
    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(feature index per design column, coefficient per design column, value column per feature)."""
        design = self.scorecard.named_steps["design"]
        coef = self.scorecard.named_steps["model"].coef_.ravel()
        owner = np.empty(len(coef), dtype=np.int64)
        value_column = np.zeros(len(self.spec.features), dtype=np.int64)
        for position, feature in enumerate(self.spec.features):
            block = design.output_indices_[feature]
            owner[block] = position
            value_column[position] = block.start
        return owner, coef, value_column

    def contributions(
        self, X: pd.DataFrame, for_reasons: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scorecard log-odds contribution of each feature, relative to the training mean.

        `X` is a prepared frame. Returns (contributions, above_average): both rows x features;
        contributions sum the coefficient x standardized value over a feature's design columns
        (value, missing indicator, one-hot levels), so they add up to the scorecard's logit
        minus its logit at the average customer; above_average says whether a numeric value
        lies above the training mean (after the log transform, if any). With `for_reasons`,
        design columns whose coefficient contradicts their own association with churn
        (suppressor effects of correlated features) count zero.
        """
        owner, coef, value_column = self._layout
        if for_reasons and self.reason_columns is not None:
            coef = np.where(self.reason_columns, coef, 0.0)
        Z = self.scorecard.named_steps["design"].transform(X)
        aggregate = np.zeros((len(owner), len(self.spec.features)), dtype=np.float64)
        aggregate[np.arange(len(owner)), owner] = coef
        with thread_limit(len(X), self.threads):
            contributions = Z @ aggregate
        above = Z[:, value_column] > 0
        return contributions, above

    def coefficients(self) -> pd.DataFrame:
        """The scorecard's coefficients: one row per design column, largest effect first."""
        design = self.scorecard.named_steps["design"]
        lr = self.scorecard.named_steps["model"]
        owner, coef, _ = self._layout
        names = [name.split("__", 1)[1] for name in design.get_feature_names_out()]
        table = pd.DataFrame(
            {
                "feature": [self.spec.features[i] for i in owner],
                "design_column": names,
                "coefficient": coef,
                "odds_ratio_per_sd": np.exp(coef),
            }
        )
        table = table.reindex(
            table["coefficient"].abs().sort_values(ascending=False).index
        )
        intercept = pd.DataFrame(
            {
                "feature": ["(intercept)"],
                "design_column": ["(intercept)"],
                "coefficient": [float(lr.intercept_[0])],
                "odds_ratio_per_sd": [math.exp(float(lr.intercept_[0]))],
            }
        )
        return pd.concat([intercept, table], ignore_index=True)


def _check_classes(y: np.ndarray, what: str) -> None:
    positives = int(np.sum(y))
    negatives = len(y) - positives
    if min(positives, negatives) < MIN_ROWS_PER_CLASS:
        raise ValueError(
            f"{what} rows hold {positives} churned and {negatives} stayed; need at least "
            f"{MIN_ROWS_PER_CLASS} of each (more data, or fewer folds)"
        )


def fit_scorecard(
    X: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, config: TrainConfig
) -> Pipeline:
    pipeline = Pipeline(
        [
            ("design", scorecard_design(spec)),
            (
                "model",
                LogisticRegression(
                    C=config.scorecard_c, max_iter=config.scorecard_max_iter
                ),
            ),
        ]
    )
    return pipeline.fit(X, y)


def sign_consistent_columns(
    scorecard: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int = 0,
    max_rows: int = SIGN_CHECK_ROWS,
) -> np.ndarray:
    """Design columns whose coefficient sign agrees with their own association with churn.

    With correlated features a regression can give one of them a coefficient against its
    univariate direction (more purchases "raising" risk because purchase frequency is also in
    the model). Such a column is right inside the model but would read as nonsense in a
    reason, so reasons skip it. The association is the covariance of the standardized column
    with the label on (up to `max_rows` of) the fitting rows.
    """
    rows = np.arange(len(y))
    if len(rows) > max_rows:
        rows = np.sort(
            np.random.default_rng(seed).choice(rows, max_rows, replace=False)
        )
    Z = scorecard.named_steps["design"].transform(X.iloc[rows])
    target = np.asarray(y, dtype=np.float64)[rows]
    association = Z.T @ (target - target.mean())
    coef = scorecard.named_steps["model"].coef_.ravel()
    return (np.sign(coef) == np.sign(association)) & (coef != 0)


def fit_challenger(
    X: pd.DataFrame,
    y: np.ndarray,
    spec: FeatureSpec,
    config: TrainConfig,
    groups: np.ndarray | None = None,
) -> Pipeline:
    """Fit the gradient-boosting challenger, early-stopping on held-out customers."""
    rows = np.arange(len(y))
    if (
        config.challenger_max_rows is not None
        and len(rows) > config.challenger_max_rows
    ):
        rng = np.random.default_rng(config.seed)
        rows = np.sort(rng.choice(rows, size=config.challenger_max_rows, replace=False))
        log.info("challenger fits on a random %d of %d rows", len(rows), len(y))
    y_sub = y[rows]
    sub_groups = groups[rows] if groups is not None else None
    fit_rows, stop_rows = holdout_split(
        y_sub, config.challenger_early_stopping_fraction, config.seed + 1, sub_groups
    )
    fit_rows, stop_rows = rows[fit_rows], rows[stop_rows]
    _check_classes(y[stop_rows], "early-stopping")
    encoder = challenger_encoder(spec)
    X_fit = encoder.fit_transform(X.iloc[fit_rows])
    X_stop = encoder.transform(X.iloc[stop_rows])
    booster = HistGradientBoostingClassifier(
        learning_rate=config.challenger_learning_rate,
        max_iter=config.challenger_max_iter,
        max_leaf_nodes=config.challenger_max_leaf_nodes,
        min_samples_leaf=config.challenger_min_samples_leaf,
        l2_regularization=config.challenger_l2,
        categorical_features=challenger_categorical_mask(spec),
        early_stopping=True,
        n_iter_no_change=config.challenger_n_iter_no_change,
        random_state=config.seed,
    )
    booster.fit(X_fit, y[fit_rows], X_val=X_stop, y_val=y[stop_rows])
    log.info("challenger stopped after %d boosting iterations", booster.n_iter_)
    return Pipeline([("encode", encoder), ("model", booster)])


def choose_threshold(
    y: np.ndarray, probabilities: np.ndarray, config: TrainConfig
) -> float:
    if config.threshold_rule == "youden":
        return youden_threshold(y, probabilities)
    if config.threshold_rule == "top_share":
        return top_share_threshold(probabilities, config.top_share)
    raise ValueError(
        f"unknown threshold rule {config.threshold_rule!r}; use youden or top_share"
    )


def fit_candidates(
    X: pd.DataFrame,
    y: np.ndarray,
    spec: FeatureSpec,
    config: TrainConfig | None = None,
    groups: np.ndarray | None = None,
) -> ChurnModel:
    """Fit, calibrate and threshold both candidates on prepared training rows.

    `X` comes from `prepare_frame`; `groups` (customer ids) keeps a customer's snapshots on one
    side of every internal split. The champion is left at the scorecard until validation
    metrics exist; call `choose_champion` and set it.
    """
    config = config or TrainConfig()
    with thread_limit(len(X), config.threads):
        return _fit_candidates(X, y, spec, config, groups)


def _fit_candidates(
    X: pd.DataFrame,
    y: np.ndarray,
    spec: FeatureSpec,
    config: TrainConfig,
    groups: np.ndarray | None,
) -> ChurnModel:
    y = np.asarray(y, dtype=np.int64)
    _check_classes(y, "training")
    fit_rows, calibration_rows = holdout_split(
        y, config.calibration_fraction, config.seed, groups
    )
    _check_classes(y[fit_rows], "fitting")
    _check_classes(y[calibration_rows], "calibration")
    X_fit, y_fit = X.iloc[fit_rows], y[fit_rows]
    X_cal, y_cal = X.iloc[calibration_rows], y[calibration_rows]
    fit_groups = groups[fit_rows] if groups is not None else None

    started = time.perf_counter()
    pipelines = {SCORECARD: fit_scorecard(X_fit, y_fit, spec, config)}
    seconds = {SCORECARD: time.perf_counter() - started}
    started = time.perf_counter()
    pipelines[CHALLENGER] = fit_challenger(X_fit, y_fit, spec, config, fit_groups)
    seconds[CHALLENGER] = time.perf_counter() - started

    calibrated: dict[str, CalibratedClassifierCV] = {}
    thresholds: dict[str, float] = {}
    for name, pipeline in pipelines.items():
        model = CalibratedClassifierCV(
            FrozenEstimator(pipeline), method=config.calibration
        )
        model.fit(X_cal, y_cal)
        calibrated[name] = model
        thresholds[name] = choose_threshold(
            y_cal, model.predict_proba(X_cal)[:, 1], config
        )
    booster = pipelines[CHALLENGER].named_steps["model"]
    info = {
        "fit_rows": len(fit_rows),
        "calibration_rows": len(calibration_rows),
        "challenger_rows": int(
            min(len(fit_rows), config.challenger_max_rows or len(fit_rows))
        ),
        "challenger_iterations": int(booster.n_iter_),
        "fit_seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    reason_columns = sign_consistent_columns(
        pipelines[SCORECARD], X_fit, y_fit, config.seed
    )
    info["reason_columns_skipped"] = int((~reason_columns).sum())
    return ChurnModel(
        spec=spec,
        calibrated=calibrated,
        thresholds=thresholds,
        info=info,
        threads=config.threads,
        reason_columns=reason_columns,
    )


def choose_champion(
    aucs: dict[str, float], tolerance: float = 0.005
) -> tuple[str, str]:
    """The challenger wins only by more than `tolerance` AUC; otherwise the simpler scorecard."""
    scorecard, challenger = aucs[SCORECARD], aucs[CHALLENGER]
    if math.isnan(challenger) or (
        not math.isnan(scorecard) and challenger - scorecard <= tolerance
    ):
        return SCORECARD, (
            f"scorecard AUC {scorecard:.4f} vs challenger {challenger:.4f}: the challenger does "
            f"not win by more than {tolerance}, so the simpler scorecard is champion"
        )
    return CHALLENGER, (
        f"challenger AUC {challenger:.4f} beats scorecard {scorecard:.4f} by more than {tolerance}"
    )
