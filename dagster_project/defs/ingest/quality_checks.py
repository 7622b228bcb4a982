"""Great Expectations validation of every file loaded in this run, as two asset checks per `ods/<kind>`.

- `quality_errors` (severity ERROR, blocking): a failed error-severity expectation in any file
  stops everything downstream of `ods/<kind>` in this run (the marts are not built on it).
- `quality_warnings` (severity WARN): null rates and a reject rate worth a look; never blocks.

Both come from one validation (a multi-asset check, one step per kind). The files are those of the
kind that `ods.load_log` records as loaded by this run, or by the run it re-executes (a retry from
failure re-checks the same files instead of passing because it loaded nothing). Each file's rows are
those of `ods.<kind>` carrying its `_load_id`. The per-run HTML report is written to
`settings.quality_dir()` and its path is in the checks' metadata (`report`).
"""

from collections.abc import Iterator

import dagster as dg
import duckdb
import pandas as pd

from ... import settings
from ...extracts.spec import SPECS
from ...extracts.sql import ident
from ...quality.expectations import ERROR, FILE_COLUMN, WARNING
from ...quality.report import record_validations
from ...quality.results import FileInfo, FileValidation
from ..resources import WAREHOUSE_POOL, Warehouse
from ..runs import run_lineage
from .assets import INGEST_KINDS

ERRORS_CHECK = "quality_errors"
WARNINGS_CHECK = "quality_warnings"
MAX_LISTED = 40


def load_files(con: duckdb.DuckDBPyConnection, kind: str, run_ids: list[str]) -> tuple[list[FileInfo], pd.DataFrame]:
    """(FileInfo list, rows DataFrame) for the files of `kind` loaded by `run_ids`."""
    marks = ", ".join("?" for _ in run_ids)
    logs = con.execute(
        f"""select kind, load_id, source_file, extract_date, started_at::date, rows_read, rows_loaded,
                   rows_rejected, rows_duplicate
            from ods.load_log
            where kind = ? and status = 'loaded' and run_id in ({marks})
            order by load_id""",
        [kind, *run_ids],
    ).fetchall()
    files = [FileInfo(*row) for row in logs]
    columns = ", ".join(f"t.{ident(c)}" for c in SPECS[kind].column_names)
    rows = con.execute(
        f"""select {columns}, t._load_id as {ident(FILE_COLUMN)}
            from ods.{ident(kind)} t
            join ods.load_log l on l.load_id = t._load_id
            where l.kind = ? and l.status = 'loaded' and l.run_id in ({marks})
            order by t._load_id, t._source_line""",
        [kind, *run_ids],
    ).df()
    return files, rows


def _failures_md(validations: list[FileValidation], severity: str) -> str:
    lines = []
    for v in validations:
        for o in v.failed(severity):
            example = f" (e.g. {', '.join(o.examples[:3])})" if o.examples else ""
            lines.append(f"- `{v.file.source_file}`: {o.description}: {o.observed}{example}")
    if len(lines) > MAX_LISTED:
        lines = lines[:MAX_LISTED] + [f"- ... and {len(lines) - MAX_LISTED} more (see the report)"]
    return "\n".join(lines) or "none"


def build_quality_check(kind: str) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(["ods", kind])

    @dg.multi_asset_check(
        name=f"ods_{kind}_quality",
        specs=[
            dg.AssetCheckSpec(
                ERRORS_CHECK,
                asset=key,
                blocking=True,
                description=(
                    "Great Expectations, error severity, on every file loaded in this run: columns present and typed, "
                    "enums, ranges, natural key unique within the file, no dates in the future, ordered dates, "
                    "reject rate. A failure blocks everything downstream."
                ),
            ),
            dg.AssetCheckSpec(
                WARNINGS_CHECK,
                asset=key,
                description=(
                    "Great Expectations, warning severity: null rates of important optional columns, reject rate."
                ),
            ),
        ],
        pool=WAREHOUSE_POOL,
    )
    def _quality(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> Iterator[dg.AssetCheckResult]:
        from ...quality.validate import validate_kind  # imports Great Expectations (seconds): only when checking

        run_ids = run_lineage(context.instance, context.run)
        with warehouse.connect(read_only=True) as con:
            files, rows = load_files(con, kind, run_ids)
        validations = validate_kind(kind, files, rows)
        report = record_validations(settings.quality_dir(), context.run.run_id, kind, validations)
        context.log.info(f"{kind}: {len(files)} file(s) validated; report: {report}")
        common = {
            "files_checked": dg.MetadataValue.int(len(files)),
            "rows_checked": dg.MetadataValue.int(len(rows)),
            "report": dg.MetadataValue.path(str(report)),
            "report_url": dg.MetadataValue.url(f"{report.as_uri()}#{kind}"),
        }
        for name, severity, check_severity in (
            (ERRORS_CHECK, ERROR, dg.AssetCheckSeverity.ERROR),
            (WARNINGS_CHECK, WARNING, dg.AssetCheckSeverity.WARN),
        ):
            failing = [v for v in validations if v.failed(severity)]
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=name,
                passed=not failing,
                severity=check_severity,
                metadata={
                    **common,
                    "files_failing": dg.MetadataValue.int(len(failing)),
                    "expectations_failed": dg.MetadataValue.int(sum(len(v.failed(severity)) for v in validations)),
                    "failures": dg.MetadataValue.md(_failures_md(validations, severity)),
                },
            )

    return _quality


quality_checks: list[dg.AssetChecksDefinition] = [build_quality_check(kind) for kind in INGEST_KINDS]
