"""From a transactions table to the per-customer summary the CLV models consume.

Conventions (docs/clv.md, "Input data"):
- Amounts are signed consumption: a row with amount >= 0 is a purchase (zero-value purchases,
  e.g. free items, included), a row with amount < 0 is a refund. Rows of one customer on one
  calendar day are merged: same-day purchases count once, and the day's amount is the net sum.
- A *purchase day* is a day with at least one purchase row. Refund-only days are not purchases
  (they do not count towards frequency) but their amount still counts towards spend.
- A customer's first purchase day starts their clock. `frequency` (x) is the number of later
  purchase days, `recency` (t_x) the time from the first to the last purchase day, `T` the time
  from the first purchase day to `as_of` (inclusive: a purchase on `as_of` has t_x = T).
- `monetary_value` is the net amount of all days after the first purchase day divided by x
  (NaN when x = 0): the first purchase is excluded as in Fader & Hardie's spend model, and
  later refunds reduce it, possibly to zero or below.
- Customers with no purchase day up to `as_of` (only refunds) have no first purchase and are
  left out; their number is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from numpy.typing import NDArray

TIME_UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0}

DateLike = str | date | datetime | pd.Timestamp | np.datetime64


@dataclass(frozen=True)
class DailyNet:
    """Net amount per customer per calendar day, sorted by customer then day."""

    labels: pd.Index  # customer id for each code
    code: NDArray[np.int64]
    day: NDArray[np.int64]  # days since 1970-01-01
    net: NDArray[np.float64]
    rows: NDArray[np.int64]  # transaction rows merged into each day
    purchases: NDArray[np.int64]  # of which purchase rows (amount >= 0)

    @property
    def is_purchase(self) -> NDArray[np.bool_]:
        return self.purchases > 0


@dataclass(frozen=True)
class RfmSummary:
    """Per-customer summary at `as_of`, one row per customer with at least one purchase day."""

    customers: pd.DataFrame
    as_of: pd.Timestamp
    time_unit: str
    n_transactions: int  # rows on or before as_of
    n_transactions_after_as_of: int
    n_customers_without_purchase: int


def time_unit_days(time_unit: str) -> float:
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise ValueError(f"unknown time unit {time_unit!r}; use one of {sorted(TIME_UNITS)}") from None


def to_day(value: DateLike) -> int:
    """Calendar day number (days since 1970-01-01) of a date-like value."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return int(np.datetime64(ts.normalize().date(), "D").astype(np.int64))


def day_to_timestamp(day: int | NDArray[np.int64]) -> pd.Timestamp | pd.DatetimeIndex:
    values = np.asarray(day, dtype="int64").astype("datetime64[D]")
    return pd.Timestamp(values.item()) if values.ndim == 0 else pd.DatetimeIndex(values)


def daily_net(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    date_col: str = "txn_date",
    amount_col: str = "amount",
    date_format: str | None = None,
) -> DailyNet:
    """Sum signed amounts per customer and calendar day. Raises ValueError on unusable rows."""
    missing = [c for c in (customer_col, date_col, amount_col) if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions have no column(s) {missing}; available: {list(transactions.columns)}. "
            "Name the customer, date and amount columns explicitly."
        )
    n = len(transactions)
    customers = transactions[customer_col]
    if customers.isna().any():
        i = int(np.argmax(customers.isna().to_numpy()))
        raise ValueError(f"column {customer_col!r} is empty in {int(customers.isna().sum())} row(s), first at row {i}")
    days = _day_numbers(transactions[date_col], date_col, date_format)
    try:
        amounts = pd.to_numeric(transactions[amount_col], errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {amount_col!r} is not numeric: {exc}") from exc
    if not np.all(np.isfinite(amounts)):
        bad = ~np.isfinite(amounts)
        raise ValueError(
            f"column {amount_col!r} is empty or not finite in {int(bad.sum())} row(s), first at row {int(np.argmax(bad))}"
        )
    codes, labels = pd.factorize(customers, sort=False)
    codes = codes.astype(np.int64)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return DailyNet(pd.Index(labels), empty, empty, np.zeros(0), empty, empty)
    d0 = int(days.min())
    key = codes * (int(days.max()) - d0 + 1) + (days - d0)
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    net = np.add.reduceat(amounts[order], starts)
    rows = np.diff(np.r_[starts, n]).astype(np.int64)
    purchases = np.add.reduceat((amounts[order] >= 0).astype(np.int64), starts)
    return DailyNet(pd.Index(labels), codes[order][starts], days[order][starts], net, rows, purchases)


def _day_numbers(values: pd.Series, column: str, date_format: str | None) -> NDArray[np.int64]:
    if pd.api.types.is_datetime64_any_dtype(values) and date_format is None:
        parsed = values
    else:
        try:
            parsed = pd.to_datetime(values, format=date_format, errors="raise")
        except (ValueError, TypeError) as exc:
            hint = "pass the format (e.g. --date-format %Y%m%d)" if date_format is None else "check the format"
            raise ValueError(f"column {column!r} holds a value that is not a date: {exc}; {hint}") from exc
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)  # keep local wall-clock time
    if parsed.isna().any():
        bad = parsed.isna().to_numpy()
        raise ValueError(f"column {column!r} is empty in {int(bad.sum())} row(s), first at row {int(np.argmax(bad))}")
    return parsed.to_numpy().astype("datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class _Clock:
    """Per-customer purchase clock over one window of daily rows."""

    has_purchase: NDArray[np.bool_]
    first_day: NDArray[np.int64]
    last_day: NDArray[np.int64]
    purchase_days: NDArray[np.int64]


def _clock(code: NDArray[np.int64], day: NDArray[np.int64], is_purchase: NDArray[np.bool_], n_customers: int) -> _Clock:
    pos = is_purchase
    pc, pd_ = code[pos], day[pos]  # still sorted by customer, then day
    first_day = np.zeros(n_customers, dtype=np.int64)
    last_day = np.zeros(n_customers, dtype=np.int64)
    count = np.bincount(pc, minlength=n_customers).astype(np.int64)
    if len(pc):
        bounds = np.flatnonzero(np.r_[True, pc[1:] != pc[:-1]])
        ends = np.r_[bounds[1:], len(pc)] - 1
        first_day[pc[bounds]] = pd_[bounds]
        last_day[pc[bounds]] = pd_[ends]
    return _Clock(count > 0, first_day, last_day, count)


def summarise_daily(daily: DailyNet, as_of: DateLike, *, time_unit: str = "days") -> RfmSummary:
    """RFM summary at `as_of` from daily net amounts (see the module docstring)."""
    unit = time_unit_days(time_unit)
    as_of_day = to_day(as_of)
    n_customers = len(daily.labels)
    inside = daily.day <= as_of_day
    code, day, net = daily.code[inside], daily.day[inside], daily.net[inside]
    clock = _clock(code, day, daily.is_purchase[inside], n_customers)
    after_first = clock.has_purchase[code] & (day > clock.first_day[code])
    from_first = clock.has_purchase[code] & (day >= clock.first_day[code])
    repeat_spend = np.bincount(code[after_first], weights=net[after_first], minlength=n_customers)
    total_spend = np.bincount(code[from_first], weights=net[from_first], minlength=n_customers)
    keep = np.flatnonzero(clock.has_purchase)
    x = clock.purchase_days[keep] - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(x > 0, repeat_spend[keep] / np.maximum(x, 1), np.nan)
    frame = pd.DataFrame(
        {
            "customer_id": daily.labels[keep],
            "frequency": x.astype(np.int64),
            "recency": (clock.last_day[keep] - clock.first_day[keep]) / unit,
            "T": (as_of_day - clock.first_day[keep]) / unit,
            "monetary_value": monetary,
            "total_spend": total_spend[keep],
            "first_purchase_date": day_to_timestamp(clock.first_day[keep]),
            "last_purchase_date": day_to_timestamp(clock.last_day[keep]),
        }
    )
    seen = np.bincount(code, minlength=n_customers) > 0
    return RfmSummary(
        customers=frame,
        as_of=day_to_timestamp(as_of_day),
        time_unit=time_unit,
        n_transactions=int(daily.rows[inside].sum()),
        n_transactions_after_as_of=int(daily.rows[~inside].sum()),
        n_customers_without_purchase=int(seen.sum() - len(keep)),
    )


def summarise_transactions(
    transactions: pd.DataFrame,
    as_of: DateLike,
    *,
    customer_col: str = "customer_id",
    date_col: str = "txn_date",
    amount_col: str = "amount",
    date_format: str | None = None,
    time_unit: str = "days",
) -> RfmSummary:
    """Per-customer frequency, recency, T and spend at `as_of` (rows after `as_of` are ignored)."""
    daily = daily_net(
        transactions, customer_col=customer_col, date_col=date_col, amount_col=amount_col, date_format=date_format
    )
    return summarise_daily(daily, as_of, time_unit=time_unit)
