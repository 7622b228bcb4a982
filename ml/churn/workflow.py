"""One-call entry points for the Dagster assets: train -> register -> promote, and score."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml.churn.features import FeatureSpec
from ml.churn.models import TrainConfig
from ml.churn.registry import (
    DEFAULT_AUC_FLOOR,
    DEFAULT_MAX_AUC_DROP,
    PromotionResult,
    load_champion,
    promote,
    register,
)
from ml.churn.scoring import DEFAULT_CHUNK_SIZE, RiskBands, score
from ml.churn.training import LabelDefinition, TrainingResult, train_from_snapshots


@dataclass(frozen=True)
class TrainingOutcome:
    result: TrainingResult
    version_dir: Path
    promotion: PromotionResult

    @property
    def version(self) -> str:
        return self.version_dir.name

    def metadata(self) -> dict[str, Any]:
        """Flat numbers and paths for a Dagster materialization."""
        report = self.result.report
        return {
            "version": self.version,
            "champion_model": report["model"],
            "promoted": self.promotion.promoted,
            "promotion_reason": self.promotion.reason,
            "auc": report["auc"],
            "scorecard_auc": report["candidates"]["scorecard"]["auc"],
            "challenger_auc": report["candidates"]["challenger"]["auc"],
            "lift_top20": report["lift_top20"],
            "brier": report["brier"],
            "train_rows": report["rows"]["train"],
            "validation_rows": report["rows"]["validation"],
            "validation_snapshot": report["validation"]["validation_snapshot"],
            "model_dir": str(self.version_dir),
        }


def train_register_promote(
    features: pd.DataFrame,
    models_dir: Path,
    *,
    label: LabelDefinition | None = None,
    spec: FeatureSpec | None = None,
    config: TrainConfig | None = None,
    floor: float = DEFAULT_AUC_FLOOR,
    max_drop: float = DEFAULT_MAX_AUC_DROP,
) -> TrainingOutcome:
    """Train on `marts.churn_features`, register the version, promote it if the gate allows."""
    result = train_from_snapshots(features, label=label, spec=spec, config=config)
    version_dir = register(result, models_dir)
    decision = promote(models_dir, version_dir.name, floor=floor, max_drop=max_drop)
    return TrainingOutcome(result, version_dir, decision)


def score_with_champion(
    features: pd.DataFrame,
    models_dir: Path,
    *,
    bands: RiskBands | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> pd.DataFrame:
    """Score the current as-of rows with the promoted champion."""
    return score(
        features, load_champion(models_dir), bands=bands, chunk_size=chunk_size
    )
