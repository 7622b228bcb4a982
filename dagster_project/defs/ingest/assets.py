"""One asset per extract kind: new files in the inbox -> `ods.<kind>` (see extracts/loader.py)."""


import tempfile
from pathlib import Path

import dagster as dg

from ... import settings
from ...extracts.loader import IngestResult, ingest, refresh_orphans
from ...extracts.mapping import load_mapping
from ...extracts.spec import SPECS
from ..resources import WAREHOUSE_POOL, RunSettings, Warehouse

INGEST_KINDS = ("customers", "transactions", "calls", "complaints", "outcomes")


def _files_table(result: IngestResult) -> str:
    rows = ["| file | status | read | loaded | rejected | duplicates | orphans | note |", "|---|---|---|---|---|---|---|---|"]
    for f in result.files:
        note = (f.message or "").replace("|", "/").replace("\n", " ")
        rows.append(
            f"| {f.source_file} | {f.status} | {f.rows_read} | {f.rows_loaded} | {f.rows_rejected} | "
            f"{f.rows_duplicate} | {f.rows_orphan} | {note} |"
        )
    return "\n".join(rows)


def ingest_metadata(result: IngestResult) -> dict[str, dg.MetadataValue]:
    meta: dict[str, dg.MetadataValue] = {
        "files_loaded": dg.MetadataValue.int(result.count("loaded")),
        "files_failed": dg.MetadataValue.int(result.count("failed")),
        "files_duplicate": dg.MetadataValue.int(result.count("duplicate_file")),
        "files_already_loaded": dg.MetadataValue.int(result.skipped),
        "rows_read": dg.MetadataValue.int(result.total("rows_read")),
        "rows_loaded": dg.MetadataValue.int(result.total("rows_loaded")),
        "rows_rejected": dg.MetadataValue.int(result.total("rows_rejected")),
        "rows_duplicate": dg.MetadataValue.int(result.total("rows_duplicate")),
        "rows_orphan": dg.MetadataValue.int(result.total("rows_orphan")),
        "duration_s": dg.MetadataValue.float(round(result.duration_s, 3)),
    }
    if result.files:
        meta["files"] = dg.MetadataValue.md(_files_table(result))
    failures = [f.message for f in result.files if f.status == "failed"]
    if failures:
        meta["failures"] = dg.MetadataValue.md("\n".join(f"- {m}" for m in failures))
    return meta


def build_ingest_asset(kind: str) -> dg.AssetsDefinition:
    spec = SPECS[kind]
    deps = [dg.AssetKey(["ods", "customers"])] if spec.customer_column else []

    @dg.asset(
        key=["ods", kind],
        group_name="ods",
        deps=deps,
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "python"},
        description=f"Loads new {kind} extract files from the inbox into ods.{kind}. {spec.description}",
    )
    def _ingest(
        context: dg.AssetExecutionContext, warehouse: Warehouse, run_settings: RunSettings
    ) -> dg.MaterializeResult:
        mapping = load_mapping(kind, settings.sources_dir())
        through = run_settings.through_date()
        warehouse.resolved_path().parent.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f"ingest-{kind}-", dir=warehouse.resolved_path().parent)
        with warehouse.connect() as con:
            result = ingest(
                con, mapping, settings.inbox_dir(), scratch=Path(scratch), run_id=context.run.run_id, through=through
            )
            resolved = refresh_orphans(con, [spec]).get(kind, 0)
        for f in result.files:
            if f.status == "failed":
                context.log.warning(f.message or f"{f.source_file} failed")
        context.log.info(
            f"{kind}: {result.count('loaded')} file(s) loaded, {result.count('failed')} failed, "
            f"{result.total('rows_loaded')} rows loaded, {result.total('rows_rejected')} rejected"
        )
        meta = ingest_metadata(result)
        if spec.customer_column and kind != "customers":
            meta["orphans_resolved"] = dg.MetadataValue.int(resolved)
        return dg.MaterializeResult(metadata=meta)

    return _ingest


ingest_assets = [build_ingest_asset(kind) for kind in INGEST_KINDS]
