"""`crm-warehouse clv backtest --warehouse` reads the warehouse's own transactions, read-only."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
from click.testing import CliRunner

from dagster_project.cli import main

CDNOW = Path(__file__).resolve().parents[1] / "data" / "CDNOW_sample.txt"
NAMES = ["customer_id", "sample_id", "date", "cds", "amount"]
DATES = ["--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"]


def test_warehouse_backtest_equals_the_file_backtest(crm_env):
    cdnow = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=NAMES, dtype={"customer_id": str, "date": str})
    cdnow["txn_date"] = pd.to_datetime(cdnow["date"], format="%Y%m%d").dt.date
    crm_env.warehouse.parent.mkdir(parents=True)
    con = duckdb.connect(str(crm_env.warehouse))
    con.register("cdnow", cdnow)
    con.execute("create schema marts")
    con.execute("""create table marts.fct_transactions as
                   select customer_id, txn_date, amount::decimal(18,2) as consumption_amount, true as is_consumption
                   from cdnow""")
    con.close()

    from_file = CliRunner().invoke(main, ["clv", "backtest", "--transactions", str(CDNOW), "--names", ",".join(NAMES),
                                          "--customer-col", "customer_id", "--date-col", "date", "--amount-col",
                                          "amount", "--date-format", "%Y%m%d", "--json", *DATES])
    from_warehouse = CliRunner().invoke(main, ["clv", "backtest", "--warehouse", "--json", *DATES])
    assert from_file.exit_code == 0, from_file.output
    assert from_warehouse.exit_code == 0, from_warehouse.output
    a, b = json.loads(from_file.output), json.loads(from_warehouse.output)
    assert b["transactions"] == str(crm_env.warehouse)
    for model in ("bgnbd", "gamma_gamma"):
        for name, value in a[model].items():
            if isinstance(value, float):
                assert abs(b[model][name] - value) <= 1e-6 * max(1.0, abs(value)), (model, name)
    neither = CliRunner().invoke(main, ["clv", "backtest", *DATES])
    assert neither.exit_code == 2 and "--warehouse" in neither.output
