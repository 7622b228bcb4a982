"""Asset checks on the ODS load of this run: every file reconciles, and no file failed.

The reconciliation recounts what is really in the tables (not what the loader said) for every file
loaded in the run: rows read = rows loaded + rejected + duplicates; the ODS, `ods.rejected_rows` and
`ods.duplicate_rows` hold exactly those numbers; and the records DuckDB read equal an independent
count of the file: its data lines counted while hashing it, or, where records span lines, the
records Python's csv module finds.
"""


import dagster as dg

from ...extracts.sql import ident
from ..resources import Warehouse
from ..runs import run_lineage
from .assets import INGEST_KINDS


def reconciliation_problems(con, kind: str, run_ids: list[str]) -> tuple[int, list[str]]:
    """(files checked, human-readable problems) for the files of `kind` loaded by `run_ids`."""
    marks = ", ".join("?" for _ in run_ids)
    rows = con.execute(
        f"""select l.source_file, l.rows_read, l.rows_loaded, l.rows_rejected, l.rows_duplicate,
                  coalesce(l.records_expected, l.data_lines), l.message,
                  (select count(*) from ods.{ident(kind)} t where t._load_id = l.load_id),
                  (select count(*) from ods.rejected_rows r where r.load_id = l.load_id),
                  (select count(*) from ods.duplicate_rows d where d.load_id = l.load_id)
           from ods.load_log l
           where l.kind = ? and l.run_id in ({marks}) and l.status = 'loaded'
           order by l.load_id""",
        [kind, *run_ids],
    ).fetchall()
    problems = []
    for file, read, loaded, rejected, dup, lines, note, in_table, in_rejects, in_dups in rows:
        if read != loaded + rejected + dup:
            problems.append(f"{file}: read {read} != loaded {loaded} + rejected {rejected} + duplicates {dup}")
        if in_table != loaded:
            problems.append(f"{file}: load log says {loaded} rows loaded, ods.{kind} holds {in_table}")
        if in_rejects != rejected:
            problems.append(f"{file}: load log says {rejected} rejected, ods.rejected_rows holds {in_rejects}")
        if in_dups != dup:
            problems.append(f"{file}: load log says {dup} duplicates, ods.duplicate_rows holds {in_dups}")
        if lines is not None and read != lines:
            problems.append(
                f"{file}: DuckDB read {read} records but an independent count of the file finds {lines}"
                + (f" ({note})" if note else "")
            )
    return len(rows), problems


def build_checks(kind: str) -> list[dg.AssetChecksDefinition]:
    key = dg.AssetKey(["ods", kind])

    @dg.asset_check(
        asset=key,
        name="rows_reconcile",
        blocking=True,
        description="Every file loaded in this run: read = loaded + rejected + duplicates, and the tables agree.",
    )
    def rows_reconcile(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            checked, problems = reconciliation_problems(con, kind, run_lineage(context.instance, context.run))
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={
                "files_checked": dg.MetadataValue.int(checked),
                "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
            },
        )

    @dg.asset_check(
        asset=key,
        name="no_failed_files",
        description="Files that could not be read at all (they stay in the inbox and are retried each run).",
    )
    def no_failed_files(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            run_ids = run_lineage(context.instance, context.run)
            marks = ", ".join("?" for _ in run_ids)
            failed = con.execute(
                f"select source_file, message from ods.load_log where kind = ? and run_id in ({marks}) and status = 'failed'",
                [kind, *run_ids],
            ).fetchall()
        return dg.AssetCheckResult(
            passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "failed_files": dg.MetadataValue.int(len(failed)),
                "messages": dg.MetadataValue.md("\n".join(f"- {m}" for _, m in failed) or "none"),
            },
        )

    return [rows_reconcile, no_failed_files]


ingest_checks = [check for kind in INGEST_KINDS for check in build_checks(kind)]
