"""Every dbt model, snapshot and test as Dagster assets and asset checks, built by `dbt build`."""


import os
from datetime import date

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from ...extracts.spec import SOURCE_KINDS
from ..resources import WAREHOUSE_POOL, Warehouse
from .project import dbt_build_args, dbt_project, manifest_path
from .translator import CrmDbtTranslator


class DbtBuildConfig(dg.Config):
    as_of_date: str | None = None
    """Reference date (YYYY-MM-DD) of every time-relative metric; default: the latest extract date."""
    full_refresh: bool = False
    """Rebuild incremental models from scratch."""


def latest_extract_date(warehouse: Warehouse) -> date | None:
    """The newest extract date among loaded source files (portal outcomes do not count)."""
    if not warehouse.resolved_path().exists():
        return None
    kinds = ", ".join(f"'{k}'" for k in SOURCE_KINDS)
    with warehouse.connect(read_only=True) as con:
        row = con.execute(
            f"select max(extract_date) from ods.load_log where status = 'loaded' and kind in ({kinds})"
        ).fetchone()
    return row[0] if row else None


def resolve_as_of(config_value: str | None, warehouse: Warehouse) -> date | None:
    if config_value:
        return date.fromisoformat(config_value)
    return latest_extract_date(warehouse)


@dbt_assets(
    manifest=manifest_path(),
    project=dbt_project,
    dagster_dbt_translator=CrmDbtTranslator(),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse, config: DbtBuildConfig):
    as_of = resolve_as_of(config.as_of_date, warehouse)
    os.environ["CRM_WAREHOUSE_PATH"] = str(warehouse.resolved_path())
    context.log.info(f"dbt build with as_of_date={as_of}, full_refresh={config.full_refresh}")
    yield from dbt.cli(dbt_build_args(as_of, config.full_refresh), context=context).stream()
