"""The Dagster code location: `dagster dev -m dagster_project.definitions` (see docs/operations.md)."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from .defs.dbt.assets import dbt_models
from .defs.dbt.project import DBT_DIR, dbt_executable, dbt_project
from .defs.ingest.assets import ingest_assets
from .defs.ingest.checks import ingest_checks
from .defs.resources import Warehouse

nightly_job = dg.define_asset_job(
    name="nightly",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Extracts -> ODS -> marts -> scores -> target lists. Runs nightly and by `crm-warehouse run`.",
)

defs = dg.Definitions(
    assets=[*ingest_assets, dbt_models],
    asset_checks=ingest_checks,
    jobs=[nightly_job],
    resources={
        "warehouse": Warehouse(),
        "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()),
    },
)
