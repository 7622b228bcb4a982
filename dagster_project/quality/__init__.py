"""Data quality of extract files, validated with Great Expectations (1.x) on pandas DataFrames.

- `expectations.py`: what we expect of one file of each kind, derived from `extracts/spec.py`
  (pure data, no Great Expectations import: cheap to import and to unit-test).
- `validate.py`: turns those into GX expectation suites and runs them on a file's rows with an
  ephemeral GX context (GX 1.x has no working DuckDB source, and dagster-ge supports only GX < 1.0).
- `results.py`: the outcome of one file's validation, as plain dataclasses stored as JSON.
- `report.py`: the per-run HTML page (one self-contained file) under `settings.quality_dir()`.

Nothing here knows about Dagster; `defs/ingest/quality_checks.py` wraps it as asset checks.
"""
