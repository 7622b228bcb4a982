"""The Dagster code location: `dagster dev -m dagster_project.definitions` (see docs/operations.md)."""

import dagster as dg
from dagster_dbt import DbtCliResource

from .defs.dbt.assets import dbt_layers
from .defs.dbt.project import DBT_DIR, dbt_executable, dbt_project
from .defs.ingest.assets import ingest_assets
from .defs.ingest.checks import ingest_checks
from .defs.ml.clv import clv_assets, clv_checks
from .defs.resources import RunSettings, Warehouse

nightly_job = dg.define_asset_job(
    name="nightly",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Extracts -> ODS -> marts -> scores -> target lists. Runs nightly and by `crm-warehouse run`.",
)

defs = dg.Definitions(
    assets=[*ingest_assets, *dbt_layers, *clv_assets],
    asset_checks=[*ingest_checks, *clv_checks],
    jobs=[nightly_job],
    resources={
        "warehouse": Warehouse(),
        "run_settings": RunSettings(),
        "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()),
    },
)
