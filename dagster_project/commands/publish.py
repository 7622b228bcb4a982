"""`crm-warehouse publish`: publish the marts for analysts by hand (what the nightly run does at its end)."""

from __future__ import annotations

import logging
from datetime import datetime

import click
import duckdb

from .. import settings

log = logging.getLogger(__name__)


def _report_to_dagster(result) -> str | None:
    """Record the publish as a materialization of publish/marts in the project's Dagster instance.

    So lineage and the freshness check see hand publishes too. Best effort: returns a problem or None.
    """
    try:
        import dagster as dg

        from ..defs.ops.assets import PUBLISH_KEY, publish_metadata
        from ..runner import prepare_instance

        prepare_instance()
        with dg.DagsterInstance.get() as instance:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=PUBLISH_KEY,
                    description="Published by hand with `crm-warehouse publish`.",
                    metadata=publish_metadata(result),
                )
            )
    except Exception as exc:  # noqa: BLE001 - the publish itself succeeded
        log.warning("could not record the publish in the Dagster instance: %s", exc)
        return str(exc)
    return None


@click.command("publish")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="As-of date to record in main._published (default: the latest loaded extract date).",
)
def publish(as_of: datetime | None) -> None:
    """Copy schema marts of the warehouse into a new marts.duckdb and swap it in atomically."""
    from ..defs.ops.publish import PublishError, publish_marts

    warehouse, target = settings.warehouse_path(), settings.published_path()
    click.echo(f"Warehouse: {warehouse}")
    try:
        result = publish_marts(warehouse, target, as_of_date=as_of.date() if as_of else None)
    except PublishError as exc:
        raise click.ClickException(str(exc)) from exc
    except duckdb.IOException as exc:
        raise click.ClickException(
            f"{warehouse} is locked by another process (probably a running nightly job); "
            f"publish again when it has finished. DuckDB said: {str(exc).splitlines()[0]}"
        ) from exc
    click.echo(f"Published {len(result.tables)} table(s), {result.total_rows:,} rows, in {result.duration_s:.1f}s:")
    width = max(len(name) for name in result.tables)
    for name, rows in result.tables.items():
        click.echo(f"  marts.{name:<{width}}  {rows:>12,}")
    click.echo(f"As of: {result.as_of_date or 'unknown'}; run id: {result.run_id}")
    click.echo(f"File: {result.path} (open read-only; see docs/analysts.md, or `crm-warehouse sql`)")
    problem = _report_to_dagster(result)
    if problem:
        click.echo(f"Note: not recorded in the Dagster run history ({problem}).", err=True)
