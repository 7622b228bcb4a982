"""The Dagster code location: `dagster dev -m dagster_project.definitions` (see docs/operations.md)."""

import dagster as dg
from dagster_dbt import DbtCliResource

from .defs.dbt.assets import dbt_layers
from .defs.dbt.project import DBT_DIR, dbt_executable, dbt_project
from .defs.ingest.assets import ingest_assets
from .defs.ingest.checks import ingest_checks
from .defs.ml.churn import churn_assets, churn_checks, churn_jobs, churn_schedules, nightly_selection
from .defs.ml.clv import clv_assets, clv_checks
from .defs.resources import RunSettings, Warehouse

nightly_job = dg.define_asset_job(
    name="nightly",
    # everything but weekly churn training (the nightly scoring trains only when no champion exists)
    selection=nightly_selection(),
    executor_def=dg.in_process_executor,
    description="Extracts -> ODS -> marts -> scores -> target lists. Runs nightly and by `crm-warehouse run`.",
)

defs = dg.Definitions(
    assets=[*ingest_assets, *dbt_layers, *clv_assets, *churn_assets],
    asset_checks=[*ingest_checks, *clv_checks, *churn_checks],
    jobs=[nightly_job, *churn_jobs],
    schedules=[*churn_schedules],
    resources={
        "warehouse": Warehouse(),
        "run_settings": RunSettings(),
        "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()),
    },
)
