"""How dbt nodes become Dagster assets: keys `[schema, name]` for models and sources alike, so
`ods.transactions` (a dbt source, written by an ingestion asset), `marts.customer_clv` (a dbt source,
written by a Python asset) and `marts.dim_customers` read the same in dbt, DuckDB and Dagster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings


class CrmDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["schema"]
