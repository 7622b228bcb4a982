"""Defects injected by `--dirty-rate`: each data row independently gets one with probability R.

The kinds of defect a loader must survive: malformed dates and timestamps, non-numeric and
negative numbers, unknown enum codes, unknown (well-formed) customer ids, exact duplicate rows
(the copy is written again further down the same file) and truncated lines (cut in the middle,
so they have fewer fields). Every defect is recorded with the physical line that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.extracts import spec

MALFORMED_DATE = "malformed_date"
NON_NUMERIC = "non_numeric"
NEGATIVE = "negative"
UNKNOWN_ENUM = "unknown_enum"
UNKNOWN_CUSTOMER = "unknown_customer"
DUPLICATE = "duplicate"
TRUNCATED = "truncated"
DEFECT_TYPES = (MALFORMED_DATE, NON_NUMERIC, NEGATIVE, UNKNOWN_ENUM, UNKNOWN_CUSTOMER, DUPLICATE, TRUNCATED)

# defect type -> columns it may hit, per kind (whole-row defects list no column)
APPLICABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        MALFORMED_DATE: ("signup_date", "updated_at"),
        UNKNOWN_ENUM: ("region", "customer_type", "status"),
        DUPLICATE: (),
        TRUNCATED: ("phone", "email", "region", "customer_type", "signup_date", "status", "closed_at"),
    },
    "transactions": {
        MALFORMED_DATE: ("txn_at",),
        NON_NUMERIC: ("amount",),
        NEGATIVE: ("amount",),
        UNKNOWN_ENUM: ("txn_type", "channel"),
        UNKNOWN_CUSTOMER: ("customer_id",),
        DUPLICATE: (),
        TRUNCATED: ("customer_id", "txn_at", "txn_type", "channel", "amount", "currency"),
    },
    "calls": {
        MALFORMED_DATE: ("started_at",),
        NON_NUMERIC: ("wait_seconds", "talk_seconds", "transfers"),
        NEGATIVE: ("wait_seconds", "talk_seconds"),
        UNKNOWN_ENUM: ("direction", "reason", "queue", "outcome"),
        UNKNOWN_CUSTOMER: ("customer_id",),
        DUPLICATE: (),
        TRUNCATED: (
            "customer_id",
            "started_at",
            "direction",
            "reason",
            "queue",
            "agent_id",
            "wait_seconds",
            "talk_seconds",
            "outcome",
        ),
    },
    "complaints": {
        MALFORMED_DATE: ("opened_at", "updated_at"),
        NON_NUMERIC: ("compensation_amount", "satisfaction"),
        NEGATIVE: ("compensation_amount",),
        UNKNOWN_ENUM: ("channel", "category", "severity", "status"),
        UNKNOWN_CUSTOMER: ("customer_id",),
        DUPLICATE: (),
        TRUNCATED: (
            "customer_id",
            "opened_at",
            "channel",
            "category",
            "severity",
            "status",
            "resolved_at",
            "compensation_amount",
            "satisfaction",
        ),
    },
}

_FOREIGN_CODES = {
    "region": ("mars", "overseas", "hk"),
    "customer_type": ("vip", "gov"),
    "status": ("suspended", "closed_pending", "reopened"),
    "txn_type": ("deposit", "chargeback"),
    "channel": ("wechat", "alipay", "fax"),
    "direction": ("internal",),
    "reason": ("fraud", "misc"),
    "queue": ("overflow", "sales"),
    "outcome": ("dropped", "voicemail"),
    "category": ("delivery", "misc"),
    "severity": ("urgent", "blocker"),
}


@dataclass
class Plan:
    """The defects of one file, applied in two steps: field values, then whole lines."""

    kind: str
    names: tuple[str, ...]
    rows: np.ndarray
    types: list[str]
    columns: list[str]
    details: list[str]
    truncate_at: dict[int, int]  # row -> index of the column the line is cut in


def plan_and_apply(
    kind: str, columns: list[pa.Array], rate: float, rng: np.random.Generator
) -> tuple[list[pa.Array], Plan]:
    """Choose the defect rows of one file and replace the affected field values."""
    extract = spec.SPECS[kind]
    names = extract.column_names
    n = len(columns[0])
    rows = np.flatnonzero(rng.random(n) < rate)
    applicable = APPLICABLE[kind]
    type_names = list(applicable)
    picks = rng.integers(0, len(type_names), size=len(rows))
    plan = Plan(kind, names, rows, [], [], [], {})
    replace: dict[int, dict[int, str]] = {}
    for row, pick in zip(rows.tolist(), picks.tolist(), strict=True):
        dtype = type_names[pick]
        candidates = applicable[dtype]
        column = candidates[int(rng.integers(0, len(candidates)))] if candidates else ""
        detail = ""
        if dtype == TRUNCATED:
            j = names.index(column)
            plan.truncate_at[row] = j
            detail = f"line cut inside {column}: {j + 1} of {len(names)} fields"
        elif dtype == DUPLICATE:
            detail = "exact copy of an earlier line"
        else:
            j = names.index(column)
            old = columns[j][row].as_py()
            new = _bad_value(dtype, column, old, extract.column(column).allowed, rng)
            replace.setdefault(j, {})[row] = new
            detail = f"wrote {new!r} instead of {old or ''!r}"
        plan.types.append(dtype)
        plan.columns.append(column)
        plan.details.append(detail)
    out = list(columns)
    for j, values in replace.items():
        mask = np.zeros(n, dtype=bool)
        mask[list(values)] = True
        ordered = [values[r] for r in sorted(values)]
        out[j] = pc.replace_with_mask(out[j], pa.array(mask), pa.array(ordered, pa.string()))
    return out, plan


def _bad_value(
    dtype: str, column: str, old: str | None, allowed: tuple[str, ...] | None, rng: np.random.Generator
) -> str:
    choice = int(rng.integers(0, 5))
    if dtype == MALFORMED_DATE:
        assert old is not None
        ymd, _, time = old.partition(" ")
        y, m, d = ymd.split("-")
        if not time:  # a DATE column
            return (f"{y}-13-45", f"{d}/{m}/{y}", f"{y}-02-30", f"{y}{m}{d}", f"{y}-00-{d}")[choice]
        stamps = (
            f"{y}-13-45 {time}",
            f"{d}/{m}/{y} {time}",
            f"{ymd} 25:61:00",
            f"{ymd}T24:00:99",
            f"{y}{m}{d}{time}",
        )
        return stamps[choice]
    if dtype == NON_NUMERIC:
        value = old or "5"
        if column in ("amount", "compensation_amount"):
            whole, _, frac = value.partition(".")
            options = (f"{whole},{frac[:1]}O", f"¥{value}", f"{value} CNY", "n/a", f"{whole}.{frac}.0")
        else:
            options = (f"{value}s", "n/a", f"{value}O", "?", "abc")
        return options[choice]
    if dtype == NEGATIVE:
        if column in ("amount", "compensation_amount"):
            return f"-{old}" if old else "-50.00"
        return f"-{max(int(old or 0), 1)}"
    if dtype == UNKNOWN_ENUM:
        assert allowed is not None
        value = old or allowed[0]
        if choice < 3 and len(value) > 3:
            k = int(rng.integers(1, len(value) - 1))
            bad = value[:k] + value[k + 1 :]  # a dropped letter: purchase -> purchse
        else:
            foreign = _FOREIGN_CODES.get(column, ("unknown",))
            bad = foreign[int(rng.integers(0, len(foreign)))]
        return bad if bad not in allowed else bad + "x"
    if dtype == UNKNOWN_CUSTOMER:
        # C + 8 digits like every id, but from 90000000 up: no customer ever has one.
        return f"C{int(rng.integers(90_000_000, 100_000_000))}"
    raise ValueError(f"not a field defect: {dtype}")


def finish_lines(
    plan: Plan, lines: pa.Array, quoted: list[pa.Array], rng: np.random.Generator, file: str
) -> tuple[pa.Array, list[dict[str, object]]]:
    """Cut truncated lines, insert duplicate copies; returns final lines and the defect records."""
    n = len(lines)
    if plan.truncate_at:
        rows = sorted(plan.truncate_at)
        cut: list[str] = []
        for row in rows:
            j = plan.truncate_at[row]
            fields = [("" if (v := quoted[c][row].as_py()) is None else v) for c in range(j + 1)]
            fields[j] = fields[j][: len(fields[j]) // 2]
            cut.append(",".join(fields))
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        lines = pc.replace_with_mask(lines, pa.array(mask), pa.array(cut, pa.string()))

    dup_rows = np.array(
        [r for r, t in zip(plan.rows.tolist(), plan.types, strict=True) if t == DUPLICATE], dtype=np.int64
    )
    after = np.array([int(rng.integers(r, n)) for r in dup_rows.tolist()], dtype=np.int64)
    keys = np.concatenate([2 * np.arange(n), 2 * after + 1])
    source = np.concatenate([np.arange(n), dup_rows])
    order = np.lexsort((np.arange(len(keys)), keys))
    final = source[order]
    line_of_entry = np.empty(len(keys), dtype=np.int64)
    line_of_entry[order] = np.arange(len(keys)) + 2  # header is line 1
    original_line = line_of_entry[:n]
    copy_line = dict(zip(dup_rows.tolist(), line_of_entry[n:].tolist(), strict=True))
    if len(dup_rows):
        lines = lines.take(pa.array(final))

    records: list[dict[str, object]] = []
    for row, dtype, column, detail in zip(
        plan.rows.tolist(), plan.types, plan.columns, plan.details, strict=True
    ):
        rec: dict[str, object] = {
            "file": file,
            "line": int(original_line[row]),
            "kind": plan.kind,
            "defect_type": dtype,
            "column": column,
            "detail": detail,
            "original_line": "",
        }
        if dtype == DUPLICATE:
            rec["line"] = copy_line[row]
            rec["original_line"] = int(original_line[row])
            rec["detail"] = f"exact copy of line {int(original_line[row])}"
        records.append(rec)
    records.sort(key=lambda r: int(r["line"]))  # type: ignore[call-overload]
    return lines, records
