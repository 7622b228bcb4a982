"""From transactions to (frequency, recency, T, spend): daily netting, refunds, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.clv import summarise_transactions


def _txns(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "txn_date", "amount"])


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("customer_id")


def test_same_day_purchases_merge_and_time_is_counted_from_the_first_purchase() -> None:
    s = summarise_transactions(
        _txns(
            [
                ("a", "2024-01-01", 10.0),
                ("a", "2024-01-01", 5.0),  # same day: one purchase worth 15
                ("a", "2024-01-11", 20.0),
                ("a", "2024-01-31", 40.0),
            ]
        ),
        "2024-02-10",
    )
    a = _by_id(s.customers).loc["a"]
    assert (a["frequency"], a["recency"], a["T"]) == (2, 30.0, 40.0)
    assert a["monetary_value"] == 30.0  # repeat purchases only: (20 + 40) / 2
    assert a["total_spend"] == 75.0
    assert a["first_purchase_date"] == pd.Timestamp("2024-01-01")
    assert s.n_transactions == 4 and s.n_transactions_after_as_of == 0


def test_weeks_divide_days_by_seven() -> None:
    s = summarise_transactions(
        _txns([("a", "2024-01-01", 1.0), ("a", "2024-01-15", 1.0)]), "2024-01-29", time_unit="weeks"
    )
    a = _by_id(s.customers).loc["a"]
    assert (a["recency"], a["T"]) == (2.0, 4.0)


def test_refunds_net_per_day_and_reduce_spend_but_are_not_purchases() -> None:
    s = summarise_transactions(
        _txns(
            [
                ("a", "2024-01-01", 50.0),
                ("a", "2024-01-05", 30.0),
                ("a", "2024-01-05", -10.0),  # same-day partial refund: one purchase day worth 20
                ("a", "2024-01-09", -20.0),  # refund-only day: not a purchase, still reduces spend
                ("b", "2024-01-02", 25.0),
                ("b", "2024-01-03", 10.0),
                ("b", "2024-01-04", -40.0),  # b's repeat spend nets below zero
            ]
        ),
        "2024-01-10",
    )
    c = _by_id(s.customers)
    assert c.loc["a", "frequency"] == 1 and c.loc["a", "recency"] == 4.0  # last purchase day 01-05
    assert c.loc["a", "monetary_value"] == pytest.approx(0.0)  # (20 - 20) / 1
    assert c.loc["b", "frequency"] == 1 and c.loc["b", "monetary_value"] == pytest.approx(-30.0)
    assert c.loc["b", "total_spend"] == pytest.approx(-5.0)


def test_zero_value_purchases_count_and_refund_only_customers_are_left_out() -> None:
    s = summarise_transactions(
        _txns(
            [
                ("free", "2024-03-01", 0.0),  # a zero-value purchase is still a purchase (CDNOW has 8)
                ("refunds", "2024-03-02", -15.0),
                ("refunds", "2024-03-05", -5.0),
                ("late", "2024-04-01", 10.0),  # after as_of
            ]
        ),
        "2024-03-10",
    )
    assert list(s.customers["customer_id"]) == ["free"]
    assert s.n_customers_without_purchase == 1
    assert s.n_transactions == 3 and s.n_transactions_after_as_of == 1


def test_one_time_buyer_and_first_purchase_on_as_of() -> None:
    s = summarise_transactions(
        _txns([("once", "2024-01-10", 12.0), ("today", "2024-02-01", 8.0), ("today", "2024-02-01", 2.0)]),
        "2024-02-01",
    )
    c = _by_id(s.customers)
    assert (c.loc["once", "frequency"], c.loc["once", "recency"], c.loc["once", "T"]) == (0, 0.0, 22.0)
    assert np.isnan(c.loc["once", "monetary_value"])
    assert (c.loc["today", "frequency"], c.loc["today", "T"]) == (0, 0.0)
    assert c.loc["today", "total_spend"] == 10.0


def test_timestamps_are_floored_to_local_days_and_timezones_dropped() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "txn_at": pd.to_datetime(["2024-05-01 23:59", "2024-05-02 00:01", "2024-05-02 18:00"]).tz_localize(
                "Europe/Paris"
            ),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    s = summarise_transactions(frame, pd.Timestamp("2024-05-03 09:00"), date_col="txn_at")
    row = s.customers.iloc[0]
    assert (row["customer_id"], row["frequency"], row["recency"], row["T"]) == (1, 1, 1.0, 2.0)
    assert row["monetary_value"] == 5.0


def test_date_format_and_decimal_like_amounts() -> None:
    frame = pd.DataFrame({"id": ["007", "007"], "d": ["19970101", "19970108"], "amt": ["1.50", "2.25"]})
    s = summarise_transactions(
        frame, "1997-01-08", customer_col="id", date_col="d", amount_col="amt", date_format="%Y%m%d"
    )
    row = s.customers.iloc[0]
    assert row["customer_id"] == "007" and row["monetary_value"] == 2.25


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"customer_id": ["a"], "txn_date": ["2024-01-01"]}), r"no column\(s\) \['amount'\]"),
        (pd.DataFrame({"customer_id": ["a", None], "txn_date": ["2024-01-01"] * 2, "amount": [1, 2]}), "empty in 1"),
        (pd.DataFrame({"customer_id": ["a"], "txn_date": ["not a date"], "amount": [1]}), "not a date"),
        (pd.DataFrame({"customer_id": ["a"], "txn_date": ["2024-01-01"], "amount": ["ten"]}), "not numeric"),
        (pd.DataFrame({"customer_id": ["a"], "txn_date": [None], "amount": [1]}), "empty in 1 row"),
    ],
)
def test_unusable_input_is_rejected_with_a_clear_message(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        summarise_transactions(frame, "2024-02-01")


def test_unknown_time_unit() -> None:
    with pytest.raises(ValueError, match="unknown time unit 'months'"):
        summarise_transactions(_txns([("a", "2024-01-01", 1.0)]), "2024-01-02", time_unit="months")
