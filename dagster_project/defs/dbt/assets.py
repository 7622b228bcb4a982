"""Every dbt model, snapshot and test as Dagster assets and asset checks, built by `dbt build`.

The dbt project is cut into layers around the Python assets that write tables dbt reads:

1. `dbt_models`: everything that does not depend on a Python asset (staging, facts, customer
   states, RFM, value, service marts, churn features).
2. `dbt_scored_marts`: the marts that join the model outputs written by Python assets (dbt source
   `ml`: customer CLV, churn scores), e.g. dim_customers.
3. `dbt_retention_marts`: the marts over the retention lists and outcomes (dbt source `retention`).

Each layer is one `dbt build --select ...` step, so the lineage runs ODS -> dbt -> models -> dbt
-> target lists -> dbt without cycles.
"""

import json
import os

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from ..resources import WAREHOUSE_POOL, RunSettings, Warehouse
from .project import dbt_build_args, dbt_project, manifest_path
from .translator import CrmDbtTranslator

AFTER_MODELS = "source:ml+"
AFTER_LISTS = "source:retention+"


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse, run_settings: RunSettings):
    as_of = run_settings.resolve_as_of(warehouse)
    os.environ["CRM_WAREHOUSE_PATH"] = str(warehouse.resolved_path())
    context.log.info(f"dbt build with as_of_date={as_of}, full_refresh={run_settings.full_refresh}")
    yield from dbt.cli(dbt_build_args(as_of, run_settings.full_refresh), context=context).stream()


def _layer(name: str, select: str, exclude: str | None):
    @dbt_assets(
        manifest=manifest_path(),
        project=dbt_project,
        dagster_dbt_translator=CrmDbtTranslator(),
        select=select,
        exclude=exclude,
        name=name,
        pool=WAREHOUSE_POOL,
    )
    def _assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse, run_settings: RunSettings):
        yield from _build(context, dbt, warehouse, run_settings)

    return _assets


def _has_source(name: str) -> bool:
    manifest = json.loads(manifest_path().read_text(encoding="utf-8"))
    return any(s["source_name"] == name for s in manifest.get("sources", {}).values())


dbt_models = _layer("dbt_models", "fqn:*", f"{AFTER_MODELS} {AFTER_LISTS}")
dbt_layers = [dbt_models]
if _has_source("ml"):
    dbt_layers.append(_layer("dbt_scored_marts", AFTER_MODELS, AFTER_LISTS))
if _has_source("retention"):
    dbt_layers.append(_layer("dbt_retention_marts", AFTER_LISTS, None))
