"""Train-and-validate runs: temporal for the warehouse, k-fold for any labelled table.

Both return a `TrainingResult` whose `report` dict has the same keys, so the CLI, the model
card and the Dagster metadata read one shape:

    model, champion_reason, auc, accuracy, sensitivity, specificity, precision, threshold,
    brier, capture_top10, lift_top10, capture_top20, lift_top20     (the champion's numbers)
    candidates: {scorecard: {...}, challenger: {...}}                (both candidates)
    validation, rows, class_balance, features, threshold_rule, top_factors, config
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.churn.factors import factor_table
from ml.churn.features import (
    ELIGIBLE_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    SNAPSHOT_COLUMN,
    FeatureSpec,
    infer_spec,
    normalise_label,
    prepare_frame,
    warehouse_spec,
)
from ml.churn.metrics import calibration_table, plot_gains, prediction_metrics
from ml.churn.models import (
    CANDIDATES,
    ChurnModel,
    TrainConfig,
    choose_champion,
    fit_candidates,
)
from ml.churn.validation import kfold_splits, temporal_split

log = logging.getLogger(__name__)

HEADLINE_METRICS = (
    "auc",
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "threshold",
    "brier",
    "capture_top10",
    "lift_top10",
    "capture_top20",
    "lift_top20",
)


@dataclass(frozen=True)
class LabelDefinition:
    """What `churned` means; stored verbatim in the model card.

    `horizon_days` is the label window: a snapshot's label looks at the `horizon_days` after
    the snapshot date, so it is known only once that window is over.
    """

    column: str = LABEL_COLUMN
    horizon_days: int = 90
    description: str = (
        "1 when an eligible customer has no consumption transaction in the horizon_days after "
        "the snapshot date (or closes the account in that window), else 0; null while the "
        "window is still open"
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingResult:
    report: dict[str, Any]
    factors: pd.DataFrame
    calibration: dict[str, pd.DataFrame]
    # (labels, probabilities) of the validation rows per candidate, for the gains chart
    validation_predictions: dict[str, tuple[np.ndarray, np.ndarray]]
    model: ChurnModel | None = None
    label: LabelDefinition | None = None
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # temporal runs: one row per validation row with its keys, label and each candidate's
    # probability (written as validation_predictions.csv.gz, read by `churn oracle`)
    validation_rows: pd.DataFrame | None = None

    @property
    def champion(self) -> str:
        return str(self.report["model"])


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 over the column names, dtypes and every value of `frame` (row order counts)."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode()
    )
    hashed = pd.util.hash_pandas_object(frame, index=False)
    digest.update(hashed.to_numpy(dtype=np.uint64).tobytes())
    return digest.hexdigest()


def _as_bool(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.fillna(False).astype(bool).to_numpy()
    text = values.astype("string").str.strip().str.lower()
    return text.isin(("true", "t", "yes", "y", "1")).fillna(False).to_numpy(dtype=bool)


def _balance(y: np.ndarray) -> dict[str, Any]:
    churned = int(np.sum(y))
    return {
        "churned": churned,
        "stayed": int(len(y) - churned),
        "churn_rate": churned / len(y),
    }


def _assemble_report(
    candidate_metrics: dict[str, dict[str, Any]],
    config: TrainConfig,
    validation: dict[str, Any],
    rows: dict[str, int],
    class_balance: dict[str, Any],
    spec: FeatureSpec,
    factors: pd.DataFrame,
    dropped_columns: dict[str, str] | None = None,
) -> dict[str, Any]:
    aucs = {name: candidate_metrics[name]["auc"] for name in CANDIDATES}
    champion, reason = choose_champion(aucs, config.tie_tolerance)
    report: dict[str, Any] = {"model": champion, "champion_reason": reason}
    report.update({key: candidate_metrics[champion][key] for key in HEADLINE_METRICS})
    report["candidates"] = candidate_metrics
    report["validation"] = validation
    report["rows"] = rows
    report["class_balance"] = class_balance
    report["threshold_rule"] = (
        "maximise Youden's J (sensitivity + specificity - 1) on the calibration rows"
        if config.threshold_rule == "youden"
        else f"flag the riskiest {config.top_share:.0%} of the calibration rows"
    )
    report["features"] = spec.to_dict()
    if dropped_columns:
        report["features"]["dropped"] = dropped_columns
    report["top_factors"] = factors.head(10).to_dict(orient="records")
    report["config"] = config.to_dict()
    return report


def train_from_snapshots(
    frame: pd.DataFrame,
    *,
    label: LabelDefinition | None = None,
    spec: FeatureSpec | None = None,
    config: TrainConfig | None = None,
    validation_date: object | None = None,
) -> TrainingResult:
    """Train both candidates on older snapshots and validate on the latest labelled one.

    `frame` is `marts.churn_features`: customer_id, snapshot_date, the label column,
    optionally is_eligible (ineligible rows are left out), and the spec's feature columns.
    Rows with a null label (window still open) never train or validate.
    """
    label = label or LabelDefinition()
    spec = spec or warehouse_spec()
    config = config or TrainConfig()
    needed = [ID_COLUMN, SNAPSHOT_COLUMN, label.column]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"feature table lacks key/label column(s) {missing}")
    rows_in = len(frame)
    ineligible = 0
    if ELIGIBLE_COLUMN in frame.columns:
        eligible = _as_bool(frame[ELIGIBLE_COLUMN])
        ineligible = int((~eligible).sum())
        frame = frame.loc[eligible]
    frame = frame.reset_index(drop=True)
    y_all = normalise_label(frame[label.column])
    labelled = y_all.notna().to_numpy()
    split = temporal_split(
        frame[SNAPSHOT_COLUMN], labelled, label.horizon_days, validation_date
    )

    train = frame.loc[split.train]
    valid = frame.loc[split.validation]
    X_train = prepare_frame(train, spec)
    y_train = y_all[split.train].to_numpy(dtype=np.int64)
    X_valid = prepare_frame(valid, spec)
    y_valid = y_all[split.validation].to_numpy(dtype=np.int64)
    log.info(
        "temporal split: %d training rows from %d snapshots, %d validation rows on %s",
        len(y_train),
        len(split.train_dates),
        len(y_valid),
        split.validation_date.date(),
    )

    model = fit_candidates(X_train, y_train, spec, config, train[ID_COLUMN].to_numpy())
    candidate_metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    calibration: dict[str, pd.DataFrame] = {}
    for name in CANDIDATES:
        p = model.predict_proba(X_valid, name, prepared=True)
        candidate_metrics[name] = prediction_metrics(y_valid, p, model.thresholds[name])
        predictions[name] = (y_valid, p)
        calibration[name] = calibration_table(y_valid, p)
    candidate_metrics["challenger"]["iterations"] = model.info["challenger_iterations"]
    candidate_metrics["challenger"]["fit_rows"] = model.info["challenger_rows"]

    factors = factor_table(X_train, y_train, spec)
    rows = {
        "input": rows_in,
        "ineligible": ineligible,
        "unlabelled": int((~labelled).sum()),
        "labelled_unused": int((labelled & ~split.train & ~split.validation).sum()),
        "train": len(y_train),
        "fit": model.info["fit_rows"],
        "calibration": model.info["calibration_rows"],
        "validation": len(y_valid),
    }
    validation = {"method": "temporal", **split.to_dict()}
    report = _assemble_report(
        candidate_metrics,
        config,
        validation,
        rows,
        {"train": _balance(y_train), "validation": _balance(y_valid)},
        spec,
        factors,
    )
    model.champion = report["model"]
    model.champion_reason = report["champion_reason"]
    keys = [ID_COLUMN, SNAPSHOT_COLUMN, label.column]
    fingerprint = frame_fingerprint(pd.concat([train[keys], X_train], axis=1))
    validation_rows = pd.DataFrame(
        {
            ID_COLUMN: valid[ID_COLUMN].to_numpy(),
            SNAPSHOT_COLUMN: pd.to_datetime(valid[SNAPSHOT_COLUMN]).dt.strftime("%Y-%m-%d").to_numpy(),
            label.column: y_valid,
            **{name: predictions[name][1] for name in CANDIDATES},
        }
    )
    return TrainingResult(
        report=report,
        factors=factors,
        calibration=calibration,
        validation_predictions=predictions,
        model=model,
        label=label,
        fingerprint=fingerprint,
        extra={"training_window": split.to_dict()},
        validation_rows=validation_rows,
    )


def evaluate_table(
    frame: pd.DataFrame,
    *,
    label_column: str,
    id_column: str | None = None,
    folds: int = 5,
    config: TrainConfig | None = None,
    spec: FeatureSpec | None = None,
) -> TrainingResult:
    """Stratified k-fold evaluation of both candidates on any labelled customer table.

    Every row is predicted once, by the fold model that did not train on it; the report's AUC
    is the mean of the fold AUCs, the other numbers pool the out-of-fold predictions (each
    judged at its own fold's threshold). Rows with a missing label are left out. When the id
    column repeats (several rows per customer), folds keep a customer's rows together.
    """
    config = config or TrainConfig()
    for column in (label_column, id_column):
        if column is not None and column not in frame.columns:
            raise ValueError(
                f"no column {column!r} in the table; columns are {list(frame.columns)}"
            )
    y_all = normalise_label(frame[label_column])
    keep = y_all.notna().to_numpy()
    frame = frame.loc[keep].reset_index(drop=True)
    y = y_all[keep].to_numpy(dtype=np.int64)
    dropped: dict[str, str] = {}
    if spec is None:
        exclude = [label_column] + ([id_column] if id_column else [])
        spec, dropped = infer_spec(frame, exclude=exclude)
    X = prepare_frame(frame, spec)
    groups = None
    if id_column is not None and frame[id_column].duplicated().any():
        groups = frame[id_column].to_numpy()

    n = len(y)
    out_of_fold = {name: np.full(n, np.nan) for name in CANDIDATES}
    row_threshold = {name: np.full(n, np.nan) for name in CANDIDATES}
    fold_aucs: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    iterations: list[int] = []
    for fold, (train_rows, test_rows) in enumerate(
        kfold_splits(y, folds, config.seed, groups)
    ):
        model = fit_candidates(
            X.iloc[train_rows],
            y[train_rows],
            spec,
            config,
            groups[train_rows] if groups is not None else None,
        )
        iterations.append(model.info["challenger_iterations"])
        for name in CANDIDATES:
            p = model.predict_proba(X.iloc[test_rows], name, prepared=True)
            out_of_fold[name][test_rows] = p
            row_threshold[name][test_rows] = model.thresholds[name]
            fold_metrics = prediction_metrics(y[test_rows], p, model.thresholds[name])
            fold_aucs[name].append(fold_metrics["auc"])
        log.info(
            "fold %d: scorecard AUC %.4f, challenger AUC %.4f",
            fold + 1,
            fold_aucs["scorecard"][-1],
            fold_aucs["challenger"][-1],
        )

    candidate_metrics: dict[str, dict[str, Any]] = {}
    calibration: dict[str, pd.DataFrame] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in CANDIDATES:
        pooled = prediction_metrics(y, out_of_fold[name], row_threshold[name])
        aucs = fold_aucs[name]
        candidate_metrics[name] = {
            **pooled,
            "auc": float(np.mean(aucs)),
            "auc_std": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
            "auc_folds": [float(a) for a in aucs],
            "auc_pooled": pooled["auc"],
        }
        calibration[name] = calibration_table(y, out_of_fold[name])
        predictions[name] = (y, out_of_fold[name])
    candidate_metrics["challenger"]["iterations"] = iterations

    factors = factor_table(X, y, spec)
    rows = {
        "input": len(keep),
        "unlabelled": int((~keep).sum()),
        "evaluated": int(n),
    }
    validation = {
        "method": "stratified k-fold",
        "folds": folds,
        "grouped_by_id": groups is not None,
    }
    report = _assemble_report(
        candidate_metrics,
        config,
        validation,
        rows,
        {"all": _balance(y)},
        spec,
        factors,
        dropped,
    )
    return TrainingResult(
        report=report,
        factors=factors,
        calibration=calibration,
        validation_predictions=predictions,
        fingerprint=frame_fingerprint(
            pd.concat([X, pd.Series(y, name="label")], axis=1)
        ),
    )


def jsonable(value: Any) -> Any:
    """Plain JSON types: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


REPORT_FILES = {
    "metrics": "metrics.json",
    "gains": "gains.png",
    "calibration": "calibration.csv",
    "factors": "factors.csv",
    "coefficients": "coefficients.csv",
    "validation_predictions": "validation_predictions.csv.gz",
}


def write_report(result: TrainingResult, out_dir: Path) -> dict[str, str]:
    """Write metrics JSON, gains PNG, calibration/factors (and scorecard coefficients) CSVs.

    Temporal runs also write the validation rows' predictions (customer, snapshot, label and
    each candidate's probability) as validation_predictions.csv.gz.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    path = out_dir / REPORT_FILES["metrics"]
    path.write_text(json.dumps(jsonable(result.report), indent=2) + "\n")
    written["metrics"] = path.name
    title = f"Cumulative gains ({result.report['validation']['method']} validation)"
    plot_gains(result.validation_predictions, out_dir / REPORT_FILES["gains"], title)
    written["gains"] = REPORT_FILES["gains"]
    calibration = pd.concat(
        [table.assign(candidate=name) for name, table in result.calibration.items()],
        ignore_index=True,
    )
    calibration = calibration[
        ["candidate", *[c for c in calibration.columns if c != "candidate"]]
    ]
    calibration.to_csv(out_dir / REPORT_FILES["calibration"], index=False)
    written["calibration"] = REPORT_FILES["calibration"]
    result.factors.to_csv(out_dir / REPORT_FILES["factors"], index=False)
    written["factors"] = REPORT_FILES["factors"]
    if result.model is not None:
        result.model.coefficients().to_csv(
            out_dir / REPORT_FILES["coefficients"], index=False
        )
        written["coefficients"] = REPORT_FILES["coefficients"]
    if result.validation_rows is not None:
        result.validation_rows.to_csv(
            out_dir / REPORT_FILES["validation_predictions"], index=False
        )
        written["validation_predictions"] = REPORT_FILES["validation_predictions"]
    return written
