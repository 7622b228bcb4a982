"""Churn models: train and validate, report, register, and score with plain-language reasons.

Pure Python (pandas, scikit-learn, scipy, matplotlib); nothing here imports Dagster. The
Dagster assets call `train_register_promote` and `score_with_champion` (or the pieces below).
See docs/churn.md for the method.
"""

from ml.churn.factors import factor_table
from ml.churn.features import (
    FeatureSpec,
    infer_spec,
    normalise_label,
    read_table,
    warehouse_spec,
)
from ml.churn.metrics import (
    calibration_table,
    capture_and_lift,
    confusion_metrics,
    prediction_metrics,
)
from ml.churn.models import ChurnModel, TrainConfig, choose_champion, fit_candidates
from ml.churn.reasons import REASON_TEMPLATES, render_reason
from ml.churn.registry import (
    list_versions,
    load_champion,
    load_version,
    promote,
    promotion_decision,
    read_card,
    register,
)
from ml.churn.scoring import RiskBands, score, score_batches
from ml.churn.training import (
    LabelDefinition,
    TrainingResult,
    evaluate_table,
    train_from_snapshots,
    write_report,
)
from ml.churn.validation import kfold_splits, temporal_split
from ml.churn.workflow import (
    TrainingOutcome,
    score_with_champion,
    train_register_promote,
)

__all__ = [
    "REASON_TEMPLATES",
    "ChurnModel",
    "FeatureSpec",
    "LabelDefinition",
    "RiskBands",
    "TrainConfig",
    "TrainingOutcome",
    "TrainingResult",
    "calibration_table",
    "capture_and_lift",
    "choose_champion",
    "confusion_metrics",
    "evaluate_table",
    "factor_table",
    "fit_candidates",
    "infer_spec",
    "kfold_splits",
    "list_versions",
    "load_champion",
    "load_version",
    "normalise_label",
    "prediction_metrics",
    "promote",
    "promotion_decision",
    "read_card",
    "read_table",
    "register",
    "render_reason",
    "score",
    "score_batches",
    "score_with_champion",
    "temporal_split",
    "train_from_snapshots",
    "train_register_promote",
    "warehouse_spec",
    "write_report",
]
