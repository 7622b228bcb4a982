"""Assets that hand the night's work to people: the published marts file and the dbt docs site.

Both are factories: `definitions.py` passes the keys of every mart and ML asset they must wait for.
Both take the warehouse pool (they read the warehouse; dbt docs opens it read-write).
"""

from collections.abc import Sequence

import dagster as dg

from ... import settings
from ..resources import WAREHOUSE_POOL, RunSettings, Warehouse
from .docs_site import generate_docs_site
from .publish import PublishResult, publish_marts

PUBLISH_KEY = dg.AssetKey(["publish", "marts"])
DOCS_KEY = dg.AssetKey(["publish", "dbt_docs"])


def publish_metadata(result: PublishResult) -> dict[str, dg.MetadataValue]:
    rows = ["| table | rows |", "|---|---|"] + [f"| {name} | {n:,} |" for name, n in result.tables.items()]
    return {
        "path": dg.MetadataValue.path(str(result.path)),
        "published_at": dg.MetadataValue.text(result.published_at.isoformat(timespec="seconds")),
        "as_of_date": dg.MetadataValue.text(result.as_of_date.isoformat() if result.as_of_date else "unknown"),
        "table_count": dg.MetadataValue.int(len(result.tables)),
        "total_rows": dg.MetadataValue.int(result.total_rows),
        "tables": dg.MetadataValue.md("\n".join(rows)),
        "duration_s": dg.MetadataValue.float(round(result.duration_s, 3)),
    }


def build_publish_asset(upstream_keys: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The published copy of schema `marts` for analysts (see publish.py), after every asset in `upstream_keys`."""

    @dg.asset(
        key=PUBLISH_KEY,
        group_name="publish",
        deps=list(upstream_keys),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        description=(
            "Read-only copy of every table and view of schema marts for analysts (settings.published_path(), "
            "marts.duckdb), replaced atomically: readers see the previous night or this one, never a mix."
        ),
    )
    def published_marts(
        context: dg.AssetExecutionContext, warehouse: Warehouse, run_settings: RunSettings
    ) -> dg.MaterializeResult:
        result = publish_marts(
            warehouse.resolved_path(),
            settings.published_path(),
            run_id=context.run.run_id,
            as_of_date=run_settings.resolve_as_of(warehouse),
        )
        context.log.info(f"published {len(result.tables)} table(s), {result.total_rows:,} rows, to {result.path}")
        return dg.MaterializeResult(metadata=publish_metadata(result))

    return published_marts


def build_docs_asset(upstream_keys: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The dbt docs site as one static page (`<data>/docs/index.html`), after every asset in `upstream_keys`."""

    @dg.asset(
        key=DOCS_KEY,
        group_name="publish",
        deps=list(upstream_keys),
        pool=WAREHOUSE_POOL,
        kinds={"dbt"},
        description=(
            "dbt docs as a single static HTML file, regenerated after each successful build (`crm-warehouse docs`)."
        ),
    )
    def dbt_docs(
        context: dg.AssetExecutionContext, warehouse: Warehouse, run_settings: RunSettings
    ) -> dg.MaterializeResult:
        path = generate_docs_site(warehouse.resolved_path(), as_of_date=run_settings.resolve_as_of(warehouse))
        context.log.info(f"dbt docs site: {path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "url": dg.MetadataValue.url(path.as_uri()),
                "size_bytes": dg.MetadataValue.int(path.stat().st_size),
            }
        )

    return dbt_docs
