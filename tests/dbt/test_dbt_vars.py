"""The dbt vars that repeat the extract contract must say what dagster_project/extracts/spec.py says.

Activity breadth gives every product category and every non-consumption transaction type one bit
(int_customer_daily_activity); a value the loader accepts but the vars lack would silently count
for nothing, so the lists are compared here, in order (the order fixes the bits). The accepted
values of fct_transactions and is_consumption in staging read the same vars.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dagster_project.extracts import spec

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt" / "dbt_project.yml"


def _vars() -> dict:
    return yaml.safe_load(DBT_PROJECT.read_text(encoding="utf-8"))["vars"]


def test_product_categories_equal_the_extract_spec():
    assert _vars()["product_categories"] == list(spec.PRODUCT_CATEGORIES)


def test_transaction_types_equal_the_extract_spec():
    variables = _vars()
    assert variables["txn_types"] == list(spec.TXN_TYPES)
    assert variables["consumption_txn_types"] == list(spec.CONSUMPTION_TXN_TYPES)


def test_channels_equal_the_extract_spec():
    variables = _vars()
    assert variables["txn_channels"] == list(spec.TXN_CHANNELS)
    assert variables["digital_channels"]
    assert set(variables["digital_channels"]) <= set(spec.TXN_CHANNELS)


def test_base_currency_is_an_iso_code():
    assert len(_vars()["base_currency"]) == 3 and _vars()["base_currency"].isupper()


def test_breadth_bits_fit_in_a_bigint():
    variables = _vars()
    services = [t for t in variables["txn_types"] if t not in variables["consumption_txn_types"]]
    assert services  # payment, fee, ... each have a bit
    assert len(variables["product_categories"]) + len(services) <= 63
