"""Score customers with a registered model: probability, risk band, reasons, model version.

Scoring runs chunk by chunk (default 100,000 rows), so memory stays bounded by the chunk size
however many customers there are. `score_batches` takes any iterable of DataFrames or Arrow
record batches (e.g. DuckDB's `con.sql(query).to_arrow_reader(100_000)`) and yields one
result frame per chunk; `score` is the in-memory convenience that concatenates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.churn.features import ID_COLUMN, prepare_frame
from ml.churn.models import ChurnModel
from ml.churn.reasons import DEFAULT_MIN_CONTRIBUTION, DEFAULT_REASONS, top_reasons

DEFAULT_CHUNK_SIZE = 100_000


@dataclass(frozen=True)
class RiskBands:
    """Probability cut-offs: high >= `high`, medium >= `medium`, else low."""

    high: float = 0.5
    medium: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.medium <= self.high <= 1:
            raise ValueError("risk bands need 0 <= medium <= high <= 1")

    def assign(self, probabilities: np.ndarray) -> np.ndarray:
        return np.where(
            probabilities >= self.high,
            "high",
            np.where(probabilities >= self.medium, "medium", "low"),
        ).astype(object)


def score_columns(n_reasons: int = DEFAULT_REASONS) -> list[str]:
    reasons = [f"reason_{i}" for i in range(1, n_reasons + 1)]
    return [ID_COLUMN, "churn_probability", "risk_band", *reasons, "model_version"]


def _score_chunk(
    chunk: pd.DataFrame,
    model: ChurnModel,
    bands: RiskBands,
    id_column: str,
    n_reasons: int,
    min_contribution: float,
) -> pd.DataFrame:
    if id_column not in chunk.columns:
        raise ValueError(f"the rows to score lack the id column {id_column!r}")
    X = prepare_frame(chunk, model.spec)
    probabilities = model.predict_proba(X, prepared=True)
    contributions, above = model.contributions(X, for_reasons=True)
    reasons = top_reasons(
        contributions, above, X, model.spec, n_reasons, min_contribution
    )
    out = {
        ID_COLUMN: chunk[id_column].to_numpy(),
        "churn_probability": probabilities,
        "risk_band": bands.assign(probabilities),
    }
    for number, texts in enumerate(reasons, start=1):
        out[f"reason_{number}"] = texts
    out["model_version"] = np.full(
        len(chunk), model.version or "unregistered", dtype=object
    )
    return pd.DataFrame(out)


def score_batches(
    batches: Iterable[pd.DataFrame | object],
    model: ChurnModel,
    *,
    bands: RiskBands | None = None,
    id_column: str = ID_COLUMN,
    n_reasons: int = DEFAULT_REASONS,
    min_contribution: float = DEFAULT_MIN_CONTRIBUTION,
) -> Iterator[pd.DataFrame]:
    """Score each batch (DataFrame, or anything with `to_pandas()` such as an Arrow batch)."""
    bands = bands or RiskBands()
    for batch in batches:
        frame = batch if isinstance(batch, pd.DataFrame) else batch.to_pandas()  # type: ignore[attr-defined]
        if len(frame):
            yield _score_chunk(
                frame, model, bands, id_column, n_reasons, min_contribution
            )


def iter_chunks(
    frame: pd.DataFrame, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[pd.DataFrame]:
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    for start in range(0, len(frame), chunk_size):
        yield frame.iloc[start : start + chunk_size]


def score(
    frame: pd.DataFrame,
    model: ChurnModel,
    *,
    bands: RiskBands | None = None,
    id_column: str = ID_COLUMN,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    n_reasons: int = DEFAULT_REASONS,
    min_contribution: float = DEFAULT_MIN_CONTRIBUTION,
) -> pd.DataFrame:
    """One row per input row: customer_id, churn_probability, risk_band, reason_1..n, model_version."""
    parts = list(
        score_batches(
            iter_chunks(frame, chunk_size),
            model,
            bands=bands,
            id_column=id_column,
            n_reasons=n_reasons,
            min_contribution=min_contribution,
        )
    )
    if not parts:
        return pd.DataFrame({column: [] for column in score_columns(n_reasons)})
    return pd.concat(parts, ignore_index=True)
