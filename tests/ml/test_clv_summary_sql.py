"""The CLV asset's SQL summary equals ml.clv.summarise_transactions on the same transactions."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.ml.clv import customer_summary
from ml.clv import summarise_transactions


def test_sql_summary_matches_the_reference_implementation(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for c in range(300):
        for _ in range(rng.integers(1, 12)):
            day = date(2026, 1, 1) + pd.Timedelta(days=int(rng.integers(0, 300)))
            amount = round(float(rng.gamma(2, 30)), 2)
            if rng.random() < 0.1:
                amount = -amount  # a refund
            rows.append((f"C{c:04d}", day, amount))
    tx = pd.DataFrame(rows, columns=["customer_id", "txn_date", "amount"])
    as_of = date(2026, 9, 1)

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.register("tx", tx)
    con.execute("create schema intermediate")
    con.execute(
        """create table intermediate.int_customer_daily_activity as
           select customer_id, txn_date as activity_date,
                  count(*) filter (where amount >= 0) as purchase_count,
                  count(*) as consumption_count,
                  sum(amount)::decimal(18,2) as consumption_amount
           from tx group by all"""
    )
    ours = customer_summary(con, as_of).set_index("customer_id").sort_index()
    con.close()
    ref = summarise_transactions(tx, as_of, customer_col="customer_id", date_col="txn_date", amount_col="amount",
                                 time_unit="days").customers.set_index("customer_id").sort_index()
    assert list(ours.index) == list(ref.index)
    for col in ("frequency", "recency", "T", "monetary_value", "total_spend"):
        np.testing.assert_allclose(ours[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-9, atol=1e-6,
                                   err_msg=col)
