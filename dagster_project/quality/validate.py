"""Run the expectations of `expectations.py` with Great Expectations 1.x and attribute results to files.

One ephemeral GX context (GX writes nothing to disk) with a pandas data source. For one extract kind,
two whole-DataFrame batches are validated:

- the rows of every file of that kind loaded in the run, with `FILE_COLUMN` (the row's load id) and
  `LIMIT_COLUMN` (the first future instant for its file);
- one row per file: its reject rate (from `ods.load_log`) and the null rates of important optional
  columns (computed here, per file, under each column's row condition).

GX's COMPLETE result format lists the index of every unexpected row, which maps each failure back
to its file; an expectation about the whole frame (a missing column, a wrong dtype) applies to all.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.metadata_types import FailureSeverity

from ..extracts.spec import SPECS
from .expectations import (
    ERROR,
    FILE_COLUMN,
    LIMIT_COLUMN,
    NULL_RATE_LIMITS,
    REJECT_RATE,
    ExpectationDef,
    file_expectations,
    future_from,
    null_rate_column,
    rate_with_slack,
    row_expectations,
)
from .results import ExpectationOutcome, FileInfo, FileValidation

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
_SEVERITY = {ERROR: FailureSeverity.CRITICAL}


def build_suite(name: str, defs: Sequence[ExpectationDef]) -> gx.ExpectationSuite:
    """A GX suite from our definitions; `meta.crm_index` ties each result back to its definition."""
    expectations = []
    for i, d in enumerate(defs):
        cls = getattr(gxe, d.gx_type)
        severity = _SEVERITY.get(d.severity, FailureSeverity.WARNING)
        expectations.append(cls(**d.kwargs, severity=severity, meta={"crm_index": i}, description=d.description))
    return gx.ExpectationSuite(name=name, expectations=expectations)


def for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with text columns as `object`: GX 1.x's type checks do not know pandas 3's `str` dtype,
    but check `object` columns value by value against Python's `str`."""
    text = [c for c in frame.columns if frame[c].dtype != object and pd.api.types.is_string_dtype(frame[c].dtype)]
    return frame.astype({c: object for c in text}) if text else frame


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "(empty)"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, np.datetime64)):
        return str(value)
    return str(value)


def file_frame(kind: str, files: Sequence[FileInfo], rows: pd.DataFrame) -> pd.DataFrame:
    """One row per file (in `files` order): the reject rate and the null rate of each important optional
    column, both with one row of slack (`rate_with_slack`); a null rate is NaN when no row is in scope.
    `shown__<column>` holds the plain share for the report."""
    frame = pd.DataFrame(
        {REJECT_RATE: [rate_with_slack(f.rows_rejected, f.rows_read) for f in files]}, index=range(len(files))
    )
    ids = pd.Series([f.load_id for f in files])
    for column, _, condition in NULL_RATE_LIMITS.get(kind, ()):
        subset = rows.query(condition) if condition and len(rows) else rows
        nulls = subset[column].isna().groupby(subset[FILE_COLUMN]).agg(["sum", "count"])
        counts = ids.map(nulls["count"]).fillna(0).astype(int)
        empty = ids.map(nulls["sum"]).fillna(0).astype(int)
        frame[null_rate_column(column)] = [
            rate_with_slack(e, n) if n else float("nan") for e, n in zip(empty, counts, strict=True)
        ]
        frame[f"shown__{column}"] = [e / n if n else float("nan") for e, n in zip(empty, counts, strict=True)]
    return frame


def _context():
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _validate(batch_definition, frame: pd.DataFrame, name: str, defs: list[ExpectationDef]) -> list:
    suite = build_suite(name, defs)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    validation = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    by_index = {r.expectation_config.meta["crm_index"]: r for r in validation.results}
    return [by_index[i] for i in range(len(defs))]


def _exception(result) -> str | None:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return "could not be evaluated: " + (info.get("exception_message") or "error").strip().splitlines()[0]
    return None


class _Attribution:
    """Maps row indexes of the rows frame to files."""

    def __init__(self, files: Sequence[FileInfo], rows: pd.DataFrame) -> None:
        self.position = {f.load_id: i for i, f in enumerate(files)}
        self.row_file = rows[FILE_COLUMN].map(self.position).to_numpy() if len(rows) else np.array([], dtype=int)
        self.rows_per_file = (
            np.bincount(self.row_file.astype(int), minlength=len(files))
            if len(rows)
            else np.zeros(len(files), dtype=int)
        )
        self.rows = rows

    def split(self, indexes: list[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for idx in indexes:
            out.setdefault(int(self.row_file[idx]), []).append(int(idx))
        return out

    def examples(self, indexes: list[int], columns: tuple[str, ...]) -> tuple[str, ...]:
        picked = self.rows.iloc[indexes[:MAX_EXAMPLES]]
        if len(columns) == 1:
            return tuple(_plain(v) for v in picked[columns[0]])
        return tuple(", ".join(f"{c}={_plain(r[c])}" for c in columns) for _, r in picked.iterrows())


def _row_outcomes(d: ExpectationDef, result, att: _Attribution, n_files: int) -> list[ExpectationOutcome]:
    kind_ = result.expectation_config.type
    failure = _exception(result)
    info = result.result or {}
    if failure or "unexpected_index_list" not in info:
        observed = failure or (
            _plain(info["observed_value"]) if "observed_value" in info else ("ok" if result.success else "failed")
        )
        success = bool(result.success) and failure is None
        return [
            ExpectationOutcome(kind_, d.description, d.severity, d.columns, success, observed) for _ in range(n_files)
        ]
    by_file = att.split(list(info["unexpected_index_list"] or []))
    out = []
    for i in range(n_files):
        bad = by_file.get(i, [])
        total = int(att.rows_per_file[i])
        pct = 100.0 * len(bad) / total if total else 0.0
        out.append(
            ExpectationOutcome(
                expectation=kind_,
                description=d.description,
                severity=d.severity,
                columns=d.columns,
                success=not bad,
                observed=f"{len(bad):,} of {total:,} rows unexpected ({pct:.2f}%)",
                unexpected_count=len(bad),
                element_count=total,
                examples=att.examples(bad, d.columns) if bad else (),
            )
        )
    return out


def _file_outcomes(
    d: ExpectationDef, result, frame: pd.DataFrame, files: Sequence[FileInfo]
) -> list[ExpectationOutcome]:
    kind_ = result.expectation_config.type
    failure = _exception(result)
    bad = set((result.result or {}).get("unexpected_index_list") or [])
    column = d.kwargs["column"]
    out = []
    for i, f in enumerate(files):
        if failure:
            observed = failure
        elif column == REJECT_RATE:
            observed = f"{f.reject_rate:.2%} rejected ({f.rows_rejected:,} of {f.rows_read:,} rows read)"
        elif pd.isna(frame[column].iloc[i]):
            observed = "no rows to measure"
        else:
            observed = f"{frame['shown__' + d.columns[0]].iloc[i]:.1%} empty"
        out.append(
            ExpectationOutcome(kind_, d.description, d.severity, d.columns, failure is None and i not in bad, observed)
        )
    return out


def validate_kind(kind: str, files: Sequence[FileInfo], rows: pd.DataFrame) -> list[FileValidation]:
    """Validate the files of one kind. `rows`: every row loaded from them, spec columns + FILE_COLUMN."""
    if not files:
        return []
    spec = SPECS[kind]
    rows = for_gx(rows.reset_index(drop=True))
    limits = {f.load_id: future_from(f.reference_date) for f in files}
    rows[LIMIT_COLUMN] = pd.to_datetime(rows[FILE_COLUMN].map(limits)).astype("datetime64[us]")
    per_file = file_frame(kind, files, rows)

    context = _context()
    source = context.data_sources.add_pandas("crm_extract")
    rows_batch = source.add_dataframe_asset("rows").add_batch_definition_whole_dataframe("rows")
    files_batch = source.add_dataframe_asset("files").add_batch_definition_whole_dataframe("files")

    row_defs = row_expectations(spec)
    file_defs = file_expectations(kind)
    row_results = _validate(rows_batch, rows, f"{kind}.rows", row_defs)
    file_results = _validate(files_batch, per_file, f"{kind}.files", file_defs)

    att = _Attribution(files, rows)
    columns: list[list[ExpectationOutcome]] = [
        _row_outcomes(d, r, att, len(files)) for d, r in zip(row_defs, row_results, strict=True)
    ]
    columns += [_file_outcomes(d, r, per_file, files) for d, r in zip(file_defs, file_results, strict=True)]
    out = []
    for i, f in enumerate(files):
        validation = FileValidation(file=f, outcomes=tuple(col[i] for col in columns))
        log.info(
            "%s: %d expectations, %d error(s), %d warning(s)",
            f.source_file,
            len(validation.outcomes),
            len(validation.errors),
            len(validation.warnings),
        )
        out.append(validation)
    return out
