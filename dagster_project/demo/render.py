"""Numbers to canonical text, column by column, with Arrow string kernels (no per-row Python).

Dates are `YYYY-MM-DD`, timestamps `YYYY-MM-DD HH:MM:SS` (looked up from precomputed tables),
money has two decimals, a null is an empty field. `render_<kind>` returns the columns of one
file in the order of `extracts.spec`.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.demo.simulation import (
    NO_DAY,
    CallBatch,
    ComplaintBatch,
    CustomerBatch,
    TransactionBatch,
)
from dagster_project.extracts import spec

CURRENCY = "CNY"


def _null_where(values: pa.Array, mask: np.ndarray) -> pa.Array:
    if not mask.any():
        return values
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), values)


def padded(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """`prefix` + zero-padded numbers, e.g. TX000000000042."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def codes(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    """Enum codes from indices into a spec tuple; a negative index is null."""
    idx = np.asarray(idx)
    safe = pa.array(np.maximum(idx, 0).astype(np.int32))
    return _null_where(pa.array(list(values), pa.string()).take(safe), idx < 0)


def ints(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    out = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return out if null is None else _null_where(out, null)


def money(cents: np.ndarray) -> pa.Array:
    """Amounts with two decimals from integer cents; negative cents mean null."""
    cents = np.asarray(cents, dtype=np.int64)
    safe = np.maximum(cents, 0)
    whole = pc.cast(pa.array(safe // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(safe % 100), pa.string()), 2, "0")
    return _null_where(pc.binary_join_element_wise(whole, frac, "."), cents < 0)


def floats(values: np.ndarray, decimals: int) -> pa.Array:
    return pc.cast(pc.round(pa.array(np.asarray(values, dtype=np.float64)), decimals), pa.string())


def bools(values: np.ndarray) -> pa.Array:
    return pa.array(["false", "true"], pa.string()).take(pa.array(np.asarray(values, dtype=np.int32)))


def join_lines(columns: list[pa.Array]) -> bytes:
    """Comma-joined lines, each ending in a newline, as UTF-8 bytes (no quoting: plain columns only)."""
    if len(columns[0]) == 0:
        return b""
    lines = pc.binary_join_element_wise(*columns, ",", null_handling="replace", null_replacement="")
    return buffer_of(pc.binary_join_element_wise(lines, "", "\n"))


def buffer_of(lines: pa.Array) -> bytes:
    """The concatenated values of a string array (zero-copy view of its data buffer, then bytes)."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if len(lines) == 0:
        return b""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


class Strings:
    """Lookup tables for dates, times of day and ids; day numbers count from the period start."""

    def __init__(self, start: date, first_day: int, last_day: int) -> None:
        self.first_day = first_day
        days = np.datetime64(start) + np.arange(first_day, last_day + 1)
        self._dates = pa.array(np.datetime_as_string(days, unit="D").tolist(), pa.string())
        secs = np.arange(86400)
        hh = pc.utf8_lpad(pc.cast(pa.array(secs // 3600), pa.string()), 2, "0")
        mm = pc.utf8_lpad(pc.cast(pa.array(secs // 60 % 60), pa.string()), 2, "0")
        ss = pc.utf8_lpad(pc.cast(pa.array(secs % 60), pa.string()), 2, "0")
        self._times = pc.binary_join_element_wise(hh, mm, ss, ":")

    def date(self, day: int) -> str:
        return str(self._dates[day - self.first_day])

    def dates(self, days: np.ndarray) -> pa.Array:
        days = np.asarray(days)
        missing = days == NO_DAY
        idx = np.where(missing, self.first_day, days) - self.first_day
        return _null_where(self._dates.take(pa.array(idx.astype(np.int32))), missing)

    def timestamps(self, days: np.ndarray | int, secs: np.ndarray) -> pa.Array:
        secs = np.asarray(secs)
        times = self._times.take(pa.array(np.clip(secs, 0, 86399).astype(np.int32)))
        if np.isscalar(days):
            return pc.binary_join_element_wise(self.date(int(days)), times, " ")
        days = np.asarray(days)
        return _null_where(pc.binary_join_element_wise(self.dates(days), times, " "), days == NO_DAY)

    def customer_ids(self, idx: np.ndarray) -> pa.Array:
        """C + 8 digits (row 0 is C00000001); a negative index is null."""
        idx = np.asarray(idx, dtype=np.int64)
        return _null_where(padded("C", idx + 1, 8), idx < 0)


def render_customers(
    b: CustomerBatch, s: Strings, day: int, signup_day: np.ndarray, is_business: np.ndarray
) -> list[pa.Array]:
    closed = b.closed_sec >= 0
    return [
        s.customer_ids(b.cust),
        b.full_name,
        b.phone_text,
        b.email_text,
        codes(spec.REGIONS, b.region),
        codes(spec.CUSTOMER_TYPES, is_business[b.cust].astype(np.int8)),
        s.dates(signup_day[b.cust]),
        codes(spec.CUSTOMER_STATUSES, b.status),
        _null_where(s.timestamps(day, np.maximum(b.closed_sec, 0)), ~closed),
        s.timestamps(b.updated_day, b.updated_sec),
    ]


def render_transactions(b: TransactionBatch, s: Strings, day: int) -> list[pa.Array]:
    n = len(b.cust)
    return [
        padded("TX", b.first_id + np.arange(n), 12),
        s.customer_ids(b.cust),
        s.timestamps(day, b.sec),
        codes(spec.TXN_TYPES, b.txn_type),
        codes(spec.TXN_CHANNELS, b.channel),
        money(b.cents),
        pa.array([CURRENCY], pa.string()).take(pa.array(np.zeros(n, dtype=np.int32))),
        codes(spec.PRODUCT_CATEGORIES, b.category),
    ]


def render_calls(b: CallBatch, s: Strings, day: int) -> list[pa.Array]:
    n = len(b.cust)
    return [
        padded("CL", b.first_id + np.arange(n), 10),
        s.customer_ids(b.cust),
        s.timestamps(day, b.sec),
        codes(spec.CALL_DIRECTIONS, b.direction),
        codes(spec.CALL_REASONS, b.reason),
        codes(spec.CALL_QUEUES, b.queue),
        _null_where(padded("AG", np.maximum(b.agent, 0), 4), b.agent < 0),
        ints(b.wait),
        ints(b.talk),
        codes(spec.CALL_OUTCOMES, b.outcome),
        ints(b.transfers),
    ]


def render_complaints(b: ComplaintBatch, s: Strings, day: int) -> list[pa.Array]:
    return [
        padded("CP", b.complaint_id, 8),
        s.customer_ids(b.cust),
        s.timestamps(b.open_day, b.open_sec),
        codes(spec.COMPLAINT_CHANNELS, b.channel),
        codes(spec.COMPLAINT_CATEGORIES, b.category),
        codes(spec.COMPLAINT_SEVERITIES, b.severity),
        codes(spec.COMPLAINT_STATUSES, b.status),
        s.timestamps(b.resolved_day, b.resolved_sec),
        money(b.comp_cents),
        ints(b.satisfaction, null=b.satisfaction <= 0),
        s.timestamps(day, b.updated_sec),
    ]
