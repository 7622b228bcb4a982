"""Helpers for the operations tests: extract files, a local Definitions, a small marts asset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_project.defs.ingest.assets import ingest_assets
from dagster_project.defs.ingest.checks import ingest_checks
from dagster_project.defs.ingest.quality_checks import quality_checks
from dagster_project.defs.ops import failure_hooks
from dagster_project.defs.resources import WAREHOUSE_POOL, RunSettings, Warehouse
from dagster_project.extracts.spec import SPECS

HEADERS = {kind: ",".join(spec.column_names) for kind, spec in SPECS.items()}
TRANSACTIONS = dg.AssetKey(["ods", "transactions"])
MART_KEYS = [dg.AssetKey(["marts", "txn_lines"]), dg.AssetKey(["marts", "txn_amounts"])]


def write(inbox: Path, rel: str, text: str) -> Path:
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def extract(kind: str, *rows: str) -> str:
    return "\n".join([HEADERS[kind], *rows]) + "\n"


def customers_file(day: str, ids: Sequence[str]) -> str:
    """A customers extract for YYYYMMDD `day` with one valid row per id."""
    iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    return extract(
        "customers",
        *[
            f"{cid},Name {cid},13800138000,{cid.lower()}@example.cn,east,individual,2020-01-01,active,,{iso} 08:00:00"
            for cid in ids
        ],
    )


def transactions_file(day: str, first: int, count: int, customers: Sequence[str] = ("C1", "C2")) -> str:
    """`count` valid purchases on YYYYMMDD `day`, ids T<first>..; amounts 1.00, 2.00, ..."""
    iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    rows = [
        f"T{n},{customers[n % len(customers)]},{iso} 10:{n % 60:02d}:00,purchase,online,{n % 50 + 1}.00,CNY,groceries"
        for n in range(first, first + count)
    ]
    return extract("transactions", *rows)


def dbt_resource() -> DbtCliResource:
    from dagster_project.defs.dbt.project import DBT_DIR, dbt_executable, dbt_project

    return DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable())


def dbt_models_def() -> dg.AssetsDefinition:
    """The project's dbt assets, with a fresh manifest (dbt parse when stale)."""
    from dagster_project.defs.dbt.project import ensure_manifest

    ensure_manifest()
    from dagster_project.defs.dbt.assets import dbt_models

    return dbt_models


def dbt_keys_on_transactions(dbt_models: dg.AssetsDefinition) -> set[dg.AssetKey]:
    """The dbt models that read ods.transactions directly (staging views): the dbt step of these tests."""
    return {key for key in dbt_models.keys if TRANSACTIONS in dbt_models.asset_deps[key]}


def dbt_on_transactions(dbt_models: dg.AssetsDefinition) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*dbt_keys_on_transactions(dbt_models))


@dg.multi_asset(
    specs=[dg.AssetSpec(key, deps=[TRANSACTIONS], group_name="marts") for key in MART_KEYS],
    pool=WAREHOUSE_POOL,
)
def sample_marts(warehouse: Warehouse):
    """Two marts that must always have the same row count, written in separate transactions."""
    with warehouse.connect() as con:
        con.execute("create schema if not exists marts")
        con.execute(
            "create or replace table marts.txn_lines as "
            "select txn_id, customer_id, amount from ods.transactions_current"
        )
        con.execute(
            "create or replace table marts.txn_amounts as "
            "select txn_id, amount * 100 as amount_cents from ods.transactions_current"
        )
        con.execute(
            "create or replace view marts.txn_by_customer as "
            "select customer_id, count(*) as txns, sum(amount) as total from marts.txn_lines group by 1"
        )
    for key in MART_KEYS:
        yield dg.MaterializeResult(asset_key=key)


def resources(warehouse: Path) -> dict:
    return {"warehouse": Warehouse(path=str(warehouse)), "run_settings": RunSettings(), "dbt": dbt_resource()}


def nightly_job(selection: dg.AssetSelection, name: str = "nightly") -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(name=name, selection=selection, executor_def=dg.in_process_executor, hooks=failure_hooks)


def build_defs(assets: list, jobs: list, warehouse: Path, checks: list | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[*ingest_assets, *assets],
        asset_checks=[*ingest_checks, *quality_checks, *(checks or [])],
        jobs=jobs,
        resources=resources(warehouse),
    )


def materialized_keys(result) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def check_evaluations(result) -> dict[tuple[str, str], object]:
    """(asset key string, check name) -> AssetCheckEvaluation."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            out[(ev.asset_key.to_user_string(), ev.check_name)] = ev
    return out
