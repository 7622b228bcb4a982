"""Feature columns: which are numeric or categorical, how labels are read, how each model sees them.

Two sources of tables reach the churn code:

* the warehouse mart `marts.churn_features` (one row per customer per snapshot date), whose
  columns are fixed and listed here (`warehouse_spec()`), and
* any labelled customer table handed to `crm-warehouse churn evaluate`, whose column types are
  detected (`infer_spec()`).

Both end in a `FeatureSpec`, and everything downstream (design matrices, factor table, reasons)
works from that spec only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

log = logging.getLogger(__name__)

# Key, label and eligibility columns of marts.churn_features.
ID_COLUMN = "customer_id"
SNAPSHOT_COLUMN = "snapshot_date"
LABEL_COLUMN = "churned"
ELIGIBLE_COLUMN = "is_eligible"

WAREHOUSE_NUMERIC: tuple[str, ...] = (
    "tenure_days",
    "days_since_last_consumption",
    "days_since_last_txn",
    "consumption_txn_count_90d",
    "non_consumption_txn_count_90d",
    "spend_30d",
    "spend_90d",
    "spend_365d",
    "spend_trend_30d_vs_prior_90d",
    "spend_trend_90d_vs_prior_90d",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "complaints_90d",
    "complaints_365d",
    "open_complaints",
    "open_complaints_beyond_sla",
    "longest_open_complaint_days",
    "share_resolved_within_sla",
    "last_satisfaction",
    "calls_30d",
    "calls_90d",
    "cancel_intent_calls_90d",
    "transfers_90d",
    "abandoned_calls_90d",
    "repeat_contacts_30d",
    "digital_share_90d",
    "branch_share_90d",
)
WAREHOUSE_CATEGORICAL: tuple[str, ...] = ("value_tier", "region", "customer_type")
# Counts, amounts, durations and ratios with long right tails: the scorecard sees sign(x)*log1p(|x|).
WAREHOUSE_LOG1P: tuple[str, ...] = (
    "tenure_days",
    "days_since_last_consumption",
    "days_since_last_txn",
    "consumption_txn_count_90d",
    "non_consumption_txn_count_90d",
    "spend_30d",
    "spend_90d",
    "spend_365d",
    "spend_trend_30d_vs_prior_90d",
    "spend_trend_90d_vs_prior_90d",
    "complaints_90d",
    "complaints_365d",
    "open_complaints",
    "open_complaints_beyond_sla",
    "longest_open_complaint_days",
    "calls_30d",
    "calls_90d",
    "cancel_intent_calls_90d",
    "transfers_90d",
    "abandoned_calls_90d",
    "repeat_contacts_30d",
)

# A text column with more distinct values than this is one-hot encoded with the rarest values
# grouped as "infrequent"; one whose values are nearly all distinct is treated as an identifier.
MAX_CATEGORIES = 50
IDENTIFIER_UNIQUE_SHARE = 0.5
# Auto-detected heavy tails (generic tables): non-negative, more than two values, skewness above.
LOG1P_SKEW = 0.75

# Label spellings, compared after strip() and lower().
_POSITIVE_LABELS = frozenset(
    [
        "1",
        "1.0",
        "yes",
        "y",
        "true",
        "t",
        "churn",
        "churned",
        "lost",
        "left",
        "leaver",
        "cancelled",
        "canceled",
        "closed",
        "exited",
        "attrited",
        "attrited customer",
    ]
)
_NEGATIVE_LABELS = frozenset(
    [
        "0",
        "0.0",
        "no",
        "n",
        "false",
        "f",
        "retained",
        "stayed",
        "active",
        "current",
        "not churned",
        "existing",
        "existing customer",
        "open",
    ]
)


@dataclass(frozen=True)
class FeatureSpec:
    """The model inputs: numeric and categorical columns, and which numerics get log1p."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    log1p: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        overlap = set(self.numeric) & set(self.categorical)
        if overlap:
            raise ValueError(f"columns both numeric and categorical: {sorted(overlap)}")
        stray = set(self.log1p) - set(self.numeric)
        if stray:
            raise ValueError(
                f"log1p columns that are not numeric features: {sorted(stray)}"
            )
        if not self.numeric and not self.categorical:
            raise ValueError("a feature spec needs at least one feature column")

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "log1p": list(self.log1p),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(
            numeric=tuple(data.get("numeric", ())),
            categorical=tuple(data.get("categorical", ())),
            log1p=tuple(data.get("log1p", ())),
        )


def warehouse_spec() -> FeatureSpec:
    """The feature columns of `marts.churn_features`."""
    return FeatureSpec(WAREHOUSE_NUMERIC, WAREHOUSE_CATEGORICAL, WAREHOUSE_LOG1P)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file into a DataFrame."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".txt", ".tsv")):
        sep = "\t" if name.endswith(".tsv") else ","
        return pd.read_csv(path, sep=sep)
    raise ValueError(
        f"{path}: unknown file type; give a .csv, .csv.gz, .tsv or .parquet file"
    )


def normalise_label(values: pd.Series) -> pd.Series:
    """Map a churn label to 1 (churned) / 0 (stayed), keeping missing values missing.

    Accepts booleans, 0/1 numbers and the usual words (yes/no, true/false, churned/retained,
    Attrited/Existing Customer ...), case-insensitive. Anything else is an error that lists the
    values it could not read, because guessing a label's direction silently is worse.
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype("Int8")
    if pd.api.types.is_numeric_dtype(values):
        present = values.dropna()
        bad = sorted(set(present.unique()) - {0, 1})
        if bad:
            raise ValueError(
                f"label column {values.name!r} holds numbers other than 0/1 ({bad[:5]}); "
                "recode it to 0 = stayed, 1 = churned"
            )
        return values.astype("Float64").astype("Int8")
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="Int8", name=values.name)
    out[text.isin(_POSITIVE_LABELS).fillna(False).to_numpy(bool)] = 1
    out[text.isin(_NEGATIVE_LABELS).fillna(False).to_numpy(bool)] = 0
    unread = text[out.isna() & text.notna() & (text != "")]
    if len(unread):
        examples = sorted(unread.unique())[:5]
        raise ValueError(
            f"label column {values.name!r}: cannot read {len(unread)} values as churned/stayed "
            f"(e.g. {examples}); use yes/no, true/false, 1/0 or churned/retained"
        )
    return out


def infer_spec(
    frame: pd.DataFrame,
    *,
    exclude: Iterable[str] = (),
    max_categories: int = MAX_CATEGORIES,
) -> tuple[FeatureSpec, dict[str, str]]:
    """Detect numeric and categorical feature columns of a generic table.

    Returns the spec and a dict `column -> reason` for every column left out (identifiers,
    dates, empty columns). Text columns whose values all parse as numbers count as numeric.
    """
    excluded = set(exclude)
    numeric: list[str] = []
    categorical: list[str] = []
    log1p: list[str] = []
    dropped: dict[str, str] = {}
    n_rows = len(frame)
    for column in frame.columns:
        if column in excluded:
            continue
        series = frame[column]
        if series.isna().all():
            dropped[column] = "empty"
            continue
        if pd.api.types.is_datetime64_any_dtype(series) or isinstance(
            series.dtype, pd.PeriodDtype
        ):
            dropped[column] = "date/time column (derive durations from it first)"
            continue
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            values = series.astype("float64")
        else:
            parsed = pd.to_numeric(series, errors="coerce")
            if parsed.notna().sum() == series.notna().sum():
                values = parsed.astype("float64")
            else:
                values = None
        if values is None:
            n_unique = series.nunique(dropna=True)
            if (
                n_unique > max_categories
                and n_unique > IDENTIFIER_UNIQUE_SHARE * n_rows
            ):
                dropped[column] = (
                    f"text with {n_unique} distinct values: looks like an identifier"
                )
                continue
            categorical.append(str(column))
            continue
        if values.nunique(dropna=True) <= 1:
            dropped[column] = "constant"
            continue
        numeric.append(str(column))
        present = values.dropna()
        if present.min() >= 0 and present.nunique() > 2 and present.skew() > LOG1P_SKEW:
            log1p.append(str(column))
    spec = FeatureSpec(tuple(numeric), tuple(categorical), tuple(log1p))
    for column, reason in dropped.items():
        log.info("column %s left out: %s", column, reason)
    return spec, dropped


def prepare_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The feature columns of `frame` in the types the models expect.

    Numerics become float64 (unparseable text becomes missing), categoricals become object
    columns of strings with NaN for missing. Raises naming every spec column the frame lacks.
    """
    missing = [c for c in spec.features if c not in frame.columns]
    if missing:
        raise ValueError(
            f"feature table lacks {len(missing)} expected column(s): {missing}; "
            "add them to the feature model or train with a spec that leaves them out"
        )
    out: dict[str, pd.Series] = {}
    for column in spec.numeric:
        series = frame[column]
        if not (
            pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)
        ):
            series = pd.to_numeric(series, errors="coerce")
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        out[column] = pd.Series(values, index=frame.index, dtype="float64")
    for column in spec.categorical:
        values = frame[column].astype("string").to_numpy(dtype=object, na_value=np.nan)
        out[column] = pd.Series(values, index=frame.index, dtype=object)
    return pd.DataFrame(out, index=frame.index, columns=list(spec.features))


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x) * log1p(|x|): log-like for large values, defined for negatives, keeps NaN."""
    values = np.asarray(values, dtype="float64")
    return np.sign(values) * np.log1p(np.abs(values))


def scorecard_design(
    spec: FeatureSpec, max_categories: int = MAX_CATEGORIES
) -> ColumnTransformer:
    """One transformer per feature, so every design column maps back to its feature.

    Numeric: [signed log1p] -> median impute with a missing indicator -> standardize.
    Categorical: "missing" as its own level -> one-hot (unknown levels ignored) -> standardize.
    All design columns are standardized so the L2 penalty treats them alike and each
    coefficient reads as "change in log-odds per standard deviation".
    """
    transformers = []
    for column in spec.numeric:
        steps: list[tuple[str, Any]] = []
        if column in spec.log1p:
            steps.append(
                (
                    "log1p",
                    FunctionTransformer(signed_log1p, feature_names_out="one-to-one"),
                )
            )
        steps.append(
            (
                "impute",
                SimpleImputer(
                    strategy="median", add_indicator=True, keep_empty_features=True
                ),
            )
        )
        steps.append(("scale", StandardScaler()))
        transformers.append((column, Pipeline(steps), [column]))
    for column in spec.categorical:
        steps = [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=max_categories,
                    sparse_output=False,
                    dtype=np.float64,
                ),
            ),
            ("scale", StandardScaler()),
        ]
        transformers.append((column, Pipeline(steps), [column]))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def challenger_encoder(spec: FeatureSpec) -> ColumnTransformer:
    """Ordinal codes for categoricals (first), numerics passed through with NaN intact.

    HistGradientBoosting handles missing values natively and treats the first
    `len(spec.categorical)` columns as categorical (see `challenger_categorical_mask`).
    """
    transformers: list[tuple[str, Any, list[str]]] = []
    if spec.categorical:
        transformers.append(
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    max_categories=250,
                    dtype=np.float64,
                ),
                list(spec.categorical),
            )
        )
    if spec.numeric:
        transformers.append(("numeric", "passthrough", list(spec.numeric)))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def challenger_categorical_mask(spec: FeatureSpec) -> np.ndarray:
    return np.array(
        [True] * len(spec.categorical) + [False] * len(spec.numeric), dtype=bool
    )
