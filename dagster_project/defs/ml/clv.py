"""Predictive customer lifetime value: BG/NBD + Gamma-Gamma (ml/clv) fitted nightly on the warehouse.

The per-customer summary the models need (purchase days, recency, age, repeat spend) is computed
in DuckDB from `int_customer_daily_activity` up to the as-of date, exactly as
`ml.clv.summarise_transactions` defines it, so a million customers never pass through pandas as
transactions. The scores go to `marts.customer_clv`; the fit (parameters, convergence, fallbacks,
sample) goes to the run metadata and to a model card in `models/clv/<version>/`.
"""

import json
import os
import tempfile
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from ml.clv import ClvConfig, score_rfm

from ... import settings
from ..resources import WAREHOUSE_POOL, RunSettings, Warehouse

CLV_COLUMNS = (
    "customer_id", "as_of_date", "frequency", "recency", "T", "p_alive", "expected_purchases_365d",
    "expected_avg_order_value", "clv_365d", "model_version",
)


def clv_config() -> ClvConfig:
    """Margin and discount rate shared with the cohort CLV: the dbt vars gross_margin and discount_rate."""
    project = yaml.safe_load((settings.dbt_project_dir() / "dbt_project.yml").read_text(encoding="utf-8"))
    variables = project.get("vars", {})
    return ClvConfig(
        horizon_days=365,
        annual_discount_rate=float(variables.get("discount_rate", 0.10)),
        gross_margin=float(variables.get("gross_margin", 1.0)),
    )


def customer_summary(con, as_of: date) -> pd.DataFrame:
    """frequency / recency / T (days) / monetary_value / total_spend per customer with a purchase day."""
    return con.execute(
        """
        with days as (
            select customer_id, activity_date, purchase_count, consumption_amount
            from intermediate.int_customer_daily_activity
            where activity_date <= ? and consumption_count > 0
        ),
        firsts as (
            select customer_id, min(activity_date) filter (where purchase_count > 0) as first_day
            from days group by customer_id
        ),
        summary as (
            select
                d.customer_id,
                count(*) filter (where d.purchase_count > 0 and d.activity_date > f.first_day) as frequency,
                max(d.activity_date) filter (where d.purchase_count > 0) - f.first_day as recency,
                ?::date - f.first_day as "T",
                sum(d.consumption_amount) filter (where d.activity_date > f.first_day) as repeat_spend,
                sum(d.consumption_amount) filter (where d.activity_date >= f.first_day) as total_spend
            from days as d join firsts as f using (customer_id)
            where f.first_day is not null
            group by d.customer_id, f.first_day
        )
        select customer_id, frequency::double as frequency, recency::double as recency, "T"::double as "T",
               case when frequency > 0 then repeat_spend::double / frequency end as monetary_value,
               total_spend::double as total_spend
        from summary
        order by customer_id
        """,
        [as_of, as_of],
    ).fetch_df()


def _write_card(version: str, metadata: dict) -> Path:
    folder = settings.models_dir() / "clv" / version
    folder.mkdir(parents=True, exist_ok=True)
    card = folder / "model_card.json"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".card-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(metadata, fh, indent=2, sort_keys=True, default=str)
    os.replace(tmp, card)
    return card


@dg.asset(
    key=["marts", "customer_clv"],
    group_name="ml",
    deps=[dg.AssetKey(["intermediate", "int_customer_daily_activity"])],
    pool=WAREHOUSE_POOL,
    kinds={"python", "scipy", "duckdb"},
    description=(
        "Predicted lifetime value per customer with a purchase up to the as-of date: BG/NBD purchases and "
        "Gamma-Gamma spend, fitted nightly; discounted, margin-adjusted value over 365 days (docs/clv.md)."
    ),
)
def customer_clv(context: dg.AssetExecutionContext, warehouse: Warehouse, run_settings: RunSettings) -> dg.MaterializeResult:
    as_of = run_settings.resolve_as_of(warehouse)
    if as_of is None:
        raise dg.Failure("No extract has been loaded yet, so there is no as-of date to fit the CLV models for.")
    with warehouse.connect(read_only=True) as con:
        summary = customer_summary(con, as_of)
    if summary.empty:
        raise dg.Failure(f"No customer has a purchase up to {as_of}; nothing to fit.")
    scores = score_rfm(summary, as_of=as_of, time_unit="days", config=clv_config())
    meta = scores.metadata
    if meta.fallback_used:
        context.log.warning(f"CLV fit used a fallback: {'; '.join(meta.fallbacks)}")
    frame = scores.customers.assign(as_of_date=as_of, model_version=meta.model_version)[list(CLV_COLUMNS)]
    with warehouse.connect() as con:
        con.register("clv_frame", frame)
        con.execute(
            """create or replace table marts.customer_clv as
               select customer_id::varchar as customer_id, as_of_date::date as as_of_date,
                      frequency::integer as frequency, recency::double as recency, "T"::double as "T",
                      case when isnan(p_alive) then null else p_alive end::double as p_alive,
                      expected_purchases_365d::double as expected_purchases_365d,
                      expected_avg_order_value::double as expected_avg_order_value, clv_365d::double as clv_365d,
                      model_version::varchar as model_version
               from clv_frame"""
        )
        con.unregister("clv_frame")
    card = _write_card(meta.model_version, meta.to_dict())
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(len(frame)),
            "as_of_date": dg.MetadataValue.text(as_of.isoformat()),
            "model_version": dg.MetadataValue.text(meta.model_version),
            "purchase_model": dg.MetadataValue.text(meta.purchase_model),
            "purchase_params": dg.MetadataValue.json(meta.purchase_params),
            "spend_model": dg.MetadataValue.text(meta.spend_model),
            "spend_params": dg.MetadataValue.json(meta.spend_params),
            "converged": dg.MetadataValue.bool(meta.converged),
            "fallbacks": dg.MetadataValue.json(meta.fallbacks),
            "fit_customers": dg.MetadataValue.int(meta.n_fit),
            "sampled": dg.MetadataValue.bool(meta.sampled),
            "mean_clv_365d": dg.MetadataValue.float(float(frame["clv_365d"].mean())),
            "model_card": dg.MetadataValue.path(str(card)),
        }
    )


@dg.asset_check(asset=customer_clv, blocking=True, description="One row per customer, no missing or negative value.")
def customer_clv_is_complete(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        [(rows, ids, bad_ids, bad_values, bad_alive)] = con.execute(
            """select count(*), count(distinct customer_id), count(*) filter (where customer_id is null),
                      count(*) filter (where clv_365d is null or clv_365d < 0 or isnan(clv_365d)),
                      count(*) filter (where p_alive < 0 or p_alive > 1)
               from marts.customer_clv"""
        ).fetchall()
    problems = {"duplicate_ids": rows - ids, "null_ids": bad_ids, "bad_clv": bad_values, "bad_p_alive": bad_alive}
    return dg.AssetCheckResult(
        passed=rows > 0 and not any(problems.values()),
        metadata={"rows": dg.MetadataValue.int(rows), **{k: dg.MetadataValue.int(v) for k, v in problems.items()}},
    )


clv_assets = [customer_clv]
clv_checks = [customer_clv_is_complete]
