"""What we expect of one extract file, derived from the canonical spec (`extracts/spec.py`).

Two severities:

- `error`: the file must not feed the marts (the Dagster check is blocking): columns present and
  typed, required values present, enums, ranges, regular-expression formats, the natural key unique
  within the file, no date in the future beyond the file's extract date (+1 day of tolerance),
  ordered pairs (opened_at <= resolved_at, signup_date <= closed_at), and a reject rate above
  `reject_error_rate()`. Rates allow one row of slack (`rate_with_slack`).
- `warning`: worth a look, does not block: null rates of important optional columns above their
  limit, and a reject rate above `reject_warn_rate()`.

The loader already rejects rows that break the per-row rules of the spec, so on loaded rows those
expectations are a second, independent line of defence (a mapping or loader regression shows up
here). Uniqueness within a file, future dates and the reject rate are only checked here.

The files of one kind loaded in a run are validated together, as one DataFrame with a column
naming each row's file (`FILE_COLUMN`) and one giving the first instant that is in the future for
that file (`LIMIT_COLUMN`); per-file properties (null rates, reject rate) are validated on a second
frame with one row per file. Results are attributed back to files by row index (validate.py), so a
backfill of hundreds of files costs one validation per kind, not one per file.

This module is pure data: `validate.py` turns each `ExpectationDef` into a GX expectation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from ..extracts.spec import ExtractSpec

ERROR = "error"
WARNING = "warning"

# Important optional columns: (column, largest acceptable share of nulls, pandas row condition or None).
# The condition restricts the rows where the column is expected (e.g. only purchases have a category).
NULL_RATE_LIMITS: dict[str, tuple[tuple[str, float, str | None], ...]] = {
    "customers": (
        ("full_name", 0.05, None),
        ("phone", 0.10, None),
        ("email", 0.25, None),
    ),
    "transactions": (("product_category", 0.05, 'txn_type in ("purchase", "refund")'),),
    "calls": (
        ("customer_id", 0.10, None),
        ("agent_id", 0.05, 'outcome != "abandoned"'),
    ),
    "complaints": (("satisfaction", 0.50, 'status == "resolved"'),),
    "outcomes": (("agent", 0.20, None),),
}

# (earlier, later): where both are present, `later` must not be before `earlier`.
ORDERED_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (("signup_date", "closed_at"),),
    "complaints": (("opened_at", "resolved_at"),),
}

# pandas dtypes a DuckDB column of each type may arrive as, in the names GX's type-list check accepts.
# Text columns are handed to GX as `object` (validate.py), because GX 1.x does not recognise
# pandas 3's default `str` dtype by any name.
PANDAS_TYPES: dict[str, tuple[str, ...]] = {
    "VARCHAR": ("str",),
    "INTEGER": ("Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "int8", "int16", "int32", "int64"),
    "BIGINT": ("Int64Dtype", "int64"),
    "DOUBLE": ("float64", "Float64Dtype"),
    "DECIMAL": ("float64", "Float64Dtype"),
    "DATE": ("datetime64[s]", "datetime64[ms]", "datetime64[us]", "datetime64[ns]"),
    "TIMESTAMP": ("datetime64[s]", "datetime64[ms]", "datetime64[us]", "datetime64[ns]"),
}

FUTURE_TOLERANCE = timedelta(days=1)
FILE_COLUMN = "_load_id"  # the row's file (its load id) in the rows frame
LIMIT_COLUMN = "_future_from"  # per row: the first instant that is in the future for its file
REJECT_RATE = "reject_rate"
# Rates are judged with one row of slack, so that a small daily file is not flagged for one odd row:
# a file of 12 rows with 1 rejected passes "at most 5% rejected", one with 2 rejected does not.
RATE_SLACK_ROWS = 1


def rate_with_slack(count: int, total: int) -> float:
    """The share `count / total` after forgiving RATE_SLACK_ROWS rows (0.0 for an empty file)."""
    return max(count - RATE_SLACK_ROWS, 0) / total if total else 0.0


def null_rate_column(column: str) -> str:
    return f"null_rate__{column}"


def reject_error_rate() -> float:
    """Share of rejected rows in a file above which it fails the blocking check (`CRM_QUALITY_REJECT_ERROR_RATE`)."""
    return float(os.environ.get("CRM_QUALITY_REJECT_ERROR_RATE", "0.05"))


def reject_warn_rate() -> float:
    """Share of rejected rows in a file above which it gets a warning (`CRM_QUALITY_REJECT_WARN_RATE`)."""
    return float(os.environ.get("CRM_QUALITY_REJECT_WARN_RATE", "0.01"))


@dataclass(frozen=True)
class ExpectationDef:
    """One expectation: the GX class name, its keyword arguments, severity and a sentence for people.

    `columns` are the file's columns it is about (shown as examples of unexpected values).
    `per_file` expectations run on the one-row-per-file frame, the others on the rows frame.
    """

    gx_type: str
    kwargs: dict[str, Any]
    severity: str
    description: str
    columns: tuple[str, ...] = field(default_factory=tuple)
    per_file: bool = False


def future_from(reference: date) -> datetime:
    """The first instant that counts as 'in the future' for a file extracted on `reference`."""
    return datetime.combine(reference + FUTURE_TOLERANCE + timedelta(days=1), time.min)


def _type_family(sql_type: str) -> str:
    return "DECIMAL" if sql_type.startswith("DECIMAL") else sql_type


def _column_expectations(spec: ExtractSpec) -> list[ExpectationDef]:
    out: list[ExpectationDef] = []
    for col in spec.columns:
        c = col.name
        out.append(ExpectationDef("ExpectColumnToExist", {"column": c}, ERROR, f"column {c} is present", (c,)))
        out.append(
            ExpectationDef(
                "ExpectColumnValuesToBeInTypeList",
                {"column": c, "type_list": list(PANDAS_TYPES[_type_family(col.type)])},
                ERROR,
                f"{c} is typed {col.type}",
                (c,),
            )
        )
        if col.required:
            out.append(
                ExpectationDef("ExpectColumnValuesToNotBeNull", {"column": c}, ERROR, f"{c} is never empty", (c,))
            )
        if col.allowed:
            out.append(
                ExpectationDef(
                    "ExpectColumnValuesToBeInSet",
                    {"column": c, "value_set": list(col.allowed)},
                    ERROR,
                    f"{c} is one of {', '.join(col.allowed)}",
                    (c,),
                )
            )
        if col.min_value is not None or col.max_value is not None:
            bounds = {k: v for k, v in (("min_value", col.min_value), ("max_value", col.max_value)) if v is not None}
            text = " and ".join(f"{'at least' if k == 'min_value' else 'at most'} {v:g}" for k, v in bounds.items())
            out.append(
                ExpectationDef("ExpectColumnValuesToBeBetween", {"column": c, **bounds}, ERROR, f"{c} is {text}", (c,))
            )
        if col.pattern:
            out.append(
                ExpectationDef(
                    "ExpectColumnValuesToMatchRegex",
                    {"column": c, "regex": f"^(?:{col.pattern})$"},
                    ERROR,
                    f"{c} looks like a valid {c}",
                    (c,),
                )
            )
        if col.type in ("TIMESTAMP", "DATE"):
            out.append(
                ExpectationDef(
                    "ExpectColumnPairValuesAToBeGreaterThanB",
                    {
                        "column_A": LIMIT_COLUMN,
                        "column_B": c,
                        "or_equal": False,
                        "ignore_row_if": "either_value_is_missing",
                    },
                    ERROR,
                    f"{c} is not after the file's extract date + {FUTURE_TOLERANCE.days} day",
                    (c,),
                )
            )
    return out


def row_expectations(spec: ExtractSpec) -> list[ExpectationDef]:
    """Expectations on the rows of the files of `spec.kind` (frame: spec columns + FILE_COLUMN + LIMIT_COLUMN)."""
    out = _column_expectations(spec)
    key = list(spec.key)
    out.append(
        ExpectationDef(
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": [*key, FILE_COLUMN]},
            ERROR,
            f"{' + '.join(key)} is unique within the file",
            tuple(key),
        )
    )
    for earlier, later in ORDERED_PAIRS.get(spec.kind, ()):
        out.append(
            ExpectationDef(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": later, "column_B": earlier, "or_equal": True, "ignore_row_if": "either_value_is_missing"},
                ERROR,
                f"{later} is not before {earlier}",
                (earlier, later),
            )
        )
    return out


def file_expectations(kind: str) -> list[ExpectationDef]:
    """Expectations on the one-row-per-file frame: reject rate and null rates of important optional columns."""
    error, warn = reject_error_rate(), reject_warn_rate()
    out = [
        ExpectationDef(
            "ExpectColumnValuesToBeBetween",
            {"column": REJECT_RATE, "min_value": 0.0, "max_value": error},
            ERROR,
            f"at most {error:.1%} of the file's rows were rejected (one row of slack)",
            (REJECT_RATE,),
            per_file=True,
        ),
        ExpectationDef(
            "ExpectColumnValuesToBeBetween",
            {"column": REJECT_RATE, "min_value": 0.0, "max_value": warn},
            WARNING,
            f"at most {warn:.1%} of the file's rows were rejected (one row of slack)",
            (REJECT_RATE,),
            per_file=True,
        ),
    ]
    for c, limit, condition in NULL_RATE_LIMITS.get(kind, ()):
        where = f" where {condition.replace(chr(34), chr(39))}" if condition else ""
        out.append(
            ExpectationDef(
                "ExpectColumnValuesToBeBetween",
                {"column": null_rate_column(c), "min_value": 0.0, "max_value": limit},
                WARNING,
                f"{c} is empty in at most {limit:.0%} of rows{where} (one row of slack)",
                (c,),
                per_file=True,
            )
        )
    return out
