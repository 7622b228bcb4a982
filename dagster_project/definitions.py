"""The Dagster code location: `dagster dev -m dagster_project.definitions` (see docs/operations.md).

Only gathers what the modules under defs/ define; nothing heavy runs at import (the dbt manifest is
read, never parsed: `make install` and `crm-warehouse run` keep it fresh).
"""

import dagster as dg
from dagster_dbt import DbtCliResource

from .defs.dbt.assets import dbt_layers
from .defs.dbt.project import DBT_DIR, dbt_executable, dbt_project
from .defs.exports.assets import export_assets, export_checks
from .defs.ingest.assets import ingest_assets
from .defs.ingest.checks import ingest_checks
from .defs.ingest.quality_checks import quality_checks
from .defs.ml.churn import CHURN_SCORES_KEY, churn_assets, churn_checks, churn_jobs, churn_schedules, nightly_selection
from .defs.ml.clv import clv_assets, clv_checks
from .defs.ops import build_docs_asset, build_publish_asset, failure_hooks, freshness_checks, schedules, sensors
from .defs.resources import RunSettings, Warehouse

# Publishing for analysts and the docs site wait for everything the night builds.
_built = [key for assets in (*dbt_layers, *clv_assets) for key in assets.keys] + [CHURN_SCORES_KEY]
publish_marts = build_publish_asset(_built)
dbt_docs = build_docs_asset(_built)

nightly_job = dg.define_asset_job(
    name="nightly",
    # everything but weekly churn training (the nightly scoring trains only when no champion exists)
    selection=nightly_selection(),
    executor_def=dg.in_process_executor,
    hooks=failure_hooks,
    tags={"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"},
    description="Extracts -> ODS -> marts -> scores -> target lists -> published marts. Nightly and `crm-warehouse run`.",
)

defs = dg.Definitions(
    assets=[*ingest_assets, *dbt_layers, *clv_assets, *churn_assets, *export_assets, publish_marts, dbt_docs],
    asset_checks=[*ingest_checks, *quality_checks, *clv_checks, *churn_checks, *export_checks, *freshness_checks],
    jobs=[nightly_job, *churn_jobs],
    schedules=[*schedules, *churn_schedules],
    sensors=sensors,
    resources={
        "warehouse": Warehouse(),
        "run_settings": RunSettings(),
        "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()),
    },
)
