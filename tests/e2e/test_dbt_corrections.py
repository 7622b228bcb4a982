"""Corrected and late deliveries end to end: real Dagster, real dbt, real DuckDB.

One small warehouse is built per module from generated demo extracts: a first night, a normal
night (only the new day arrives), then a night that also brings correction files the way a source
system sends them: a re-delivered transaction moved to another day, one moved to another customer,
a late transaction for a past month, a late account closure (with an earlier updated_at) and an
account closed and reopened, both delivered late. The incremental result must equal a
`--full-refresh` of the same night, intermediate tables and marts alike; the churn labels must
count the late closure and not the closure undone by the reopening; the cohort CLV must measure
each relationship year on the value tier the customer had when it started.

Then churn_features night by night, one kind of change per night (the real loader and dbt, without
Dagster, on a copy of that warehouse), each compared row for row with a `--full-refresh` of the
same inputs: a normal night, a late call, a late complaint, a closure recorded late, a corrected
transaction on an old day, a night whose as-of date closes a label window, and the as-of date
moved back. Each night must recompute exactly the snapshots it can have changed. Then every data
test scoped to the latest build must fail on bad rows planted in it. A last night brings a
transaction in a foreign currency, which must stop the marts.

The history is 400 days (some relationship years lie entirely inside the data) for 150 customers.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from e2e_home import project_home, query

from dagster_project import settings
from dagster_project.demo import GeneratorConfig, generate
from dagster_project.extracts import ods
from dagster_project.extracts.loader import ingest
from dagster_project.extracts.mapping import load_mapping
from dagster_project.extracts.spec import CALLS, COMPLAINTS, CUSTOMERS, TRANSACTIONS
from dagster_project.runner import run_nightly

END = date(2026, 11, 21)
FIRST_NIGHT = date(2026, 11, 18)
NORMAL_NIGHT = date(2026, 11, 19)
CORRECTION_NIGHT = date(2026, 11, 20)
LATE_TXN_AT = datetime(2026, 8, 15, 12, 0, 0)  # a late transaction for a past month
LATE_AMOUNT = Decimal("5000.00")
REOPEN_CLOSED_AT = datetime(2026, 7, 5, 10, 0, 0)  # closed and reopened between two month-ends
REOPENED_AT = datetime(2026, 7, 20, 9, 0, 0)
# as of CORRECTION_NIGHT, the 90-day labels of these month-ends are known (their windows are over)
SNAPSHOT_BEFORE_REOPENING = date(2026, 6, 30)
SNAPSHOT_AFTER_REOPENING = date(2026, 7, 31)
STAMP = "%Y-%m-%d %H:%M:%S"


WATERMARK = "built_through_load_id"  # bookkeeping of incremental tables: which build wrote the row


def _tables() -> dict[str, list[tuple]]:
    """Every mart, and the incremental intermediate tables (without their build watermark)."""
    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    try:
        tables = [
            f"{schema}.{name}"
            for schema, name in con.execute(
                """select table_schema, table_name from information_schema.tables
                   where table_schema = 'marts'
                      or (table_schema = 'intermediate' and table_name in (
                          'int_customer_daily_activity', 'int_customer_activity_at_dates', 'int_customer_states_at_dates'))
                   order by all"""
            ).fetchall()
        ]
        out = {}
        for table in tables:
            columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
            exclude = f" exclude ({WATERMARK})" if WATERMARK in columns else ""
            out[table] = con.execute(f"select *{exclude} from {table} order by all").fetchall()
        return out
    finally:
        con.close()


def _watermarks(table: str) -> dict[date, int]:
    return dict(query(f"select reference_date, max(built_through_load_id) from intermediate.{table} group by all"))


def _churn_watermarks(path: Path | None = None) -> dict[date, int]:
    """The watermark of each churn_features slice: it changes when a run recomputes the slice."""
    return dict(
        query("select snapshot_date, max(built_through_load_id) from marts.churn_features group by all", path=path)
    )


def _month_ends() -> list[date]:
    return [
        d for (d,) in query("select reference_date from intermediate.int_reference_dates where is_month_end order by 1")
    ]


def _write(kind_spec, path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(kind_spec.column_names))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _records(sql: str, params: list | None = None) -> list[dict]:
    return _records_at(settings.warehouse_path(), sql, params)


def _single_txn_days(first: date, last: date) -> list[dict]:
    """Current transactions that are the only one of their customer on their day, between two dates."""
    return _records(
        """select * exclude (n) from (
               select *, count(*) over (partition by customer_id, txn_at::date) as n
               from ods.transactions where _is_current)
           where n = 1 and txn_at::date between ? and ?
           order by txn_id""",
        [first, last],
    )


def _quiet_customers() -> list[dict]:
    """Open customers with no change recorded since before July who buy (purchases in every
    label window after SNAPSHOT_BEFORE_REOPENING): late changes show, inactivity does not interfere."""
    return _records(
        """select * from ods.customers
           where _is_current and status = 'active' and signup_date < date '2026-06-01'
             and updated_at < timestamp '2026-07-01'
             and customer_id in (select customer_id from ods.transactions
                                 where _is_current and txn_type = 'purchase'
                                   and txn_at >= timestamp '2026-08-01' and txn_at < timestamp '2026-09-28'
                                 group by 1 having count(*) >= 2)
           order by customer_id"""
    )


def _txn_row(record: dict, **changes) -> dict:
    out = {c: record[c] for c in TRANSACTIONS.column_names} | changes
    out["txn_at"] = out["txn_at"].strftime(STAMP)
    return out


def _customer_row(record: dict, **changes) -> dict:
    out = {c: record[c] for c in CUSTOMERS.column_names} | changes
    for key in ("closed_at", "updated_at"):
        if isinstance(out[key], datetime):
            out[key] = out[key].strftime(STAMP)
    return out


def _deliver_corrections() -> dict:
    """Write correction files dated CORRECTION_NIGHT into the inbox; return what they change."""
    singles = _single_txn_days(date(2026, 9, 1), date(2026, 9, 30))
    moved_day = singles[0]
    moved_customer = next(r for r in singles[1:] if r["customer_id"] != moved_day["customer_id"])
    quiet = [
        c
        for c in _quiet_customers()
        if c["customer_id"] not in (moved_day["customer_id"], moved_customer["customer_id"])
    ]
    late_buyer, closing, reopening, receiver = quiet[:4]
    new_day = moved_day["txn_at"] + timedelta(days=15)
    transactions = [
        # re-delivery: the same transaction, on another day
        _txn_row(moved_day, txn_at=new_day),
        # re-delivery: the same transaction, booked to another customer
        _txn_row(moved_customer, customer_id=receiver["customer_id"]),
        # a late transaction for a past month
        {
            "txn_id": "TXLATE000001",
            "customer_id": late_buyer["customer_id"],
            "txn_at": LATE_TXN_AT.strftime(STAMP),
            "txn_type": "purchase",
            "channel": "online",
            "amount": str(LATE_AMOUNT),
            "currency": "CNY",
            "product_category": "electronics",
        },
    ]
    customers = [
        # a closure delivered late, with an earlier updated_at than the night's own records
        _customer_row(closing, status="closed", closed_at="2026-09-10 10:00:00", updated_at="2026-09-10 18:00:00"),
        # an account closed and reopened between two month-ends, both delivered late
        _customer_row(
            reopening, status="closed", closed_at=REOPEN_CLOSED_AT.strftime(STAMP), updated_at="2026-07-05 12:00:00"
        ),
    ]
    reopened = [_customer_row(reopening, status="active", closed_at=None, updated_at=REOPENED_AT.strftime(STAMP))]
    stamp = CORRECTION_NIGHT.strftime("%Y%m%d")
    _write(TRANSACTIONS, settings.inbox_dir() / "transactions" / f"transactions_{stamp}_corrections.csv", transactions)
    # a key appears once per file (a blocking quality check), so the reopening comes in a second file
    _write(CUSTOMERS, settings.inbox_dir() / "customers" / f"customers_{stamp}_corrections.csv", customers)
    _write(CUSTOMERS, settings.inbox_dir() / "customers" / f"customers_{stamp}_reopened.csv", reopened)
    return {
        "emptied_days": [
            (moved_day["customer_id"], moved_day["txn_at"].date()),
            (moved_customer["customer_id"], moved_customer["txn_at"].date()),
        ],
        "moved_to": (moved_day["customer_id"], new_day.date()),
        "received": (receiver["customer_id"], moved_customer["txn_at"].date()),
        "late_buyer": late_buyer["customer_id"],
        "closing": closing["customer_id"],
        "reopening": reopening["customer_id"],
    }


def _past_values(corrected: dict) -> dict:
    """What the corrections should change in the month-end slices, as the warehouse has it now."""
    [(late_spend,)] = query(
        """select coalesce(sum(spend_365d), 0) from intermediate.int_customer_activity_at_dates
           where customer_id = ? and reference_date = date '2026-08-31'""",
        [corrected["late_buyer"]],
    )

    def statuses(customer_id: str) -> dict[date, str]:
        return dict(
            query(
                """select s.reference_date, s.status from intermediate.int_customer_states_at_dates s
               inner join intermediate.int_reference_dates r on r.reference_date = s.reference_date and r.is_month_end
               where s.customer_id = ? and s.reference_date >= date '2026-06-30'""",
                [customer_id],
            )
        )

    return {
        "late_spend": late_spend,
        "closing": statuses(corrected["closing"]),
        "reopening": statuses(corrected["reopening"]),
    }


def _cohort_inputs() -> dict:
    return {
        "years": _records("select * from intermediate.int_customer_relationship_years"),
        "slices": query(
            "select customer_id, reference_date, value_tier from intermediate.int_customer_states_at_dates"
        ),
        "today": query(
            """select s.customer_id, year(s.signup_date), s.value_tier
               from intermediate.int_customer_states_at_dates as s
               inner join intermediate.int_reference_dates as r on r.reference_date = s.reference_date and r.is_as_of"""
        ),
        "marts": _records("select * from marts.customer_ltv_cohort_years where is_observed"),
    }


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    with project_home(tmp_path_factory.mktemp("corrections")):
        generate(
            GeneratorConfig(
                out_dir=settings.inbox_dir(),
                truth_dir=settings.ground_truth_dir(),
                customers=150,
                days=400,
                seed=23,
                end_date=END,
            )
        )
        state: dict = {}
        state["first"] = run_nightly(as_of_date=FIRST_NIGHT)
        state["month_ends"] = _month_ends()
        state["after_first"] = {
            t: _watermarks(t) for t in ("int_customer_activity_at_dates", "int_customer_states_at_dates")
        }
        state["month_ends_first"] = query(
            """select * exclude (built_through_load_id) from intermediate.int_customer_states_at_dates
               where reference_date in (select reference_date from intermediate.int_reference_dates where is_month_end)
               order by all"""
        )
        state["churn_after_first"] = _churn_watermarks()
        state["normal"] = run_nightly(as_of_date=NORMAL_NIGHT)
        state["churn_after_normal"] = _churn_watermarks()
        state["after_normal"] = {
            t: _watermarks(t) for t in ("int_customer_activity_at_dates", "int_customer_states_at_dates")
        }
        state["month_ends_normal"] = query(
            """select * exclude (built_through_load_id) from intermediate.int_customer_states_at_dates
               where reference_date in (select reference_date from intermediate.int_reference_dates where is_month_end)
               order by all"""
        )
        state["before_corrections"] = _tables()
        state["corrected"] = _deliver_corrections()
        state["past_before"] = _past_values(state["corrected"])
        state["correction"] = run_nightly(as_of_date=CORRECTION_NIGHT)
        state["past_after"] = _past_values(state["corrected"])
        state["after_correction"] = {
            t: _watermarks(t) for t in ("int_customer_activity_at_dates", "int_customer_states_at_dates")
        }
        state["incremental"] = _tables()
        state["full"] = run_nightly(as_of_date=CORRECTION_NIGHT, full_refresh=True)
        state["refreshed"] = _tables()
        state["cohort"] = _cohort_inputs()
        yield state


def test_every_night_succeeds(nights):
    for name in ("first", "normal", "correction", "full"):
        outcome = nights[name]
        assert outcome.success, f"{name}: {outcome.failure}"
        assert outcome.checks_failed == []


def test_a_normal_night_computes_only_the_moving_slices(nights):
    month_ends = set(nights["month_ends"])
    for table, before in nights["after_first"].items():
        after = nights["after_normal"][table]
        assert month_ends <= set(before) and month_ends <= set(after)
        # month-end slices were not recomputed: they keep the watermark of the first night
        assert {d: after[d] for d in month_ends} == {d: before[d] for d in month_ends}, table
        assert after[NORMAL_NIGHT] > before[FIRST_NIGHT]
    assert nights["month_ends_normal"] == nights["month_ends_first"]
    # churn_features: the month-end snapshots were not recomputed either, the scoring snapshot moved
    before, after = nights["churn_after_first"], nights["churn_after_normal"]
    assert {d: after[d] for d in month_ends} == {d: before[d] for d in month_ends}
    assert FIRST_NIGHT not in after and after[NORMAL_NIGHT] > before[FIRST_NIGHT]


def test_late_files_recompute_the_month_ends_from_the_earliest_day_they_touch(nights):
    earliest = {
        # activity reads transactions only: the late purchase is the earliest day touched
        "int_customer_activity_at_dates": LATE_TXN_AT.date(),
        # states also read customer versions: the late closure before the reopening comes first
        "int_customer_states_at_dates": REOPEN_CLOSED_AT.date(),
    }
    for table, before in nights["after_normal"].items():
        after = nights["after_correction"][table]
        assert any(d < earliest[table] for d in nights["month_ends"])  # some history stays untouched
        for month_end in nights["month_ends"]:
            if month_end < earliest[table]:
                assert after[month_end] == before[month_end], (table, month_end)  # untouched history
            else:
                assert after[month_end] > before[month_end], (table, month_end)


def test_corrections_reach_the_past_slices(nights):
    before, after = nights["past_before"], nights["past_after"]
    # the late purchase of 15 August counts in the 31 August slice (and later ones)
    assert after["late_spend"] == before["late_spend"] + LATE_AMOUNT
    # the late closure (closed on 10 September) shows from the September month-end on
    assert before["closing"][date(2026, 9, 30)] == "active"
    assert after["closing"][date(2026, 8, 31)] == "active" and after["closing"][date(2026, 9, 30)] == "closed"
    # closed on 5 July, reopened on the 20th: open again at every month-end
    assert set(after["reopening"].values()) == {"active"}


def _labels(tables: dict, customer_id: str) -> dict[date, int | None]:
    """churn_features.churned by snapshot date for one customer, from a _tables() result."""
    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    try:
        names = [r[0] for r in con.execute("describe marts.churn_features").fetchall()]
    finally:
        con.close()
    key, snapshot, churned = names.index("customer_id"), names.index("snapshot_date"), names.index("churned")
    return {r[snapshot]: r[churned] for r in tables["marts.churn_features"] if r[key] == customer_id}


def test_churn_labels_count_late_closures_and_not_undone_ones(nights):
    corrected = nights["corrected"]
    for run in ("incremental", "refreshed"):
        reopening = _labels(nights[run], corrected["reopening"])
        # closed inside the window after 30 June (reopened later, but that is churn in the window)
        assert reopening[SNAPSHOT_BEFORE_REOPENING] == 1, run
        # active again on 31 July and buying after it: the old closure is not churn
        assert reopening[SNAPSHOT_AFTER_REOPENING] == 0, run
        # closed on 10 September, delivered late: inside the window after 31 July
        assert _labels(nights[run], corrected["closing"])[SNAPSHOT_AFTER_REOPENING] == 1, run
    before = _labels(nights["before_corrections"], corrected["closing"])
    assert before[SNAPSHOT_AFTER_REOPENING] == 0  # what the label said before the late closure arrived


def test_emptied_customer_days_disappear(nights):
    corrected = nights["corrected"]
    daily = {(r[0], r[1]) for r in nights["incremental"]["intermediate.int_customer_daily_activity"]}
    before = {(r[0], r[1]) for r in nights["before_corrections"]["intermediate.int_customer_daily_activity"]}
    for key in corrected["emptied_days"]:
        assert key in before and key not in daily
    assert corrected["moved_to"] in daily and corrected["received"] in daily


def test_incremental_nights_equal_a_full_refresh(nights):
    incremental, refreshed = nights["incremental"], nights["refreshed"]
    assert set(refreshed) == set(incremental)
    assert "intermediate.int_customer_daily_activity" in incremental and "marts.churn_features" in incremental
    for table in incremental:
        # segment_migration comes from the SCD2 snapshot, which a full refresh keeps (it is history)
        assert refreshed[table] == incremental[table], f"{table} differs after --full-refresh"


def test_cohort_years_are_measured_on_the_tier_at_the_start_of_each_year(nights):
    cohort = nights["cohort"]
    slices: dict[str, list[tuple[date, str]]] = {}
    for customer_id, reference_date, tier in sorted(cohort["slices"]):
        slices.setdefault(customer_id, []).append((reference_date, tier))
    today = {customer_id: tier for customer_id, _, tier in cohort["today"]}
    years = cohort["years"]
    assert len(years) >= 10  # 400 days of history: some relationship years are fully observed
    for year in years:
        history = slices[year["customer_id"]]
        before = [tier for reference_date, tier in history if reference_date <= year["year_start"]]
        # the latest slice on or before the year start, else the customer's earliest slice
        assert year["year_start_value_tier"] == (before[-1] if before else history[0][1]), year
        assert year["value_tier"] == today[year["customer_id"]]
    assert any(y["year_start_value_tier"] != y["value_tier"] for y in years)  # tiers do move

    # the mart's observed years: retention of the customers in the tier when the year started...
    groups: dict[tuple, list[dict]] = {}
    for year in years:
        groups.setdefault((year["signup_year"], year["year_start_value_tier"], year["year_number"]), []).append(year)
    sizes: dict[tuple, int] = {}
    for _, signup_year, tier in cohort["today"]:
        sizes[(signup_year, tier)] = sizes.get((signup_year, tier), 0) + 1
    assert cohort["marts"]
    for row in cohort["marts"]:
        members = [
            y for y in groups[(row["signup_year"], row["value_tier"], row["year_number"])] if y["is_open_at_start"]
        ]
        stayed = [y for y in members if y["is_open_at_end"]]
        assert row["churn_rate"] == pytest.approx(1 - len(stayed) / len(members), abs=1e-6), row
        # ...and N, the customers valued, by the tier they have today
        assert row["cohort_customers"] == sizes[(row["signup_year"], row["value_tier"])]


# churn_features night by night ------------------------------------------------------------------
# After the nights above, on a copy of the warehouse: each night loads its files with the real
# loader and runs the models of churn_features (`dbt run --select +churn_features`) incrementally,
# and from scratch on a copy taken just before, with the same as-of date.

LATE_CALL_AT = datetime(2026, 8, 10, 11, 0, 0)  # delivered on 22 November
LATE_COMPLAINT_AT = datetime(2026, 9, 5, 15, 0, 0)  # opened and written then, delivered on 23 November
LATE_CLOSED_AT = datetime(2026, 8, 20, 10, 0, 0)  # the account closed then; the closure was recorded on 24 November
CORRECTED_TXN_DAY = date(2026, 9, 15)  # a purchase of that day re-delivered on 25 November with another amount
INCREMENTAL_TABLES = (
    "marts.churn_features",
    "intermediate.int_customer_daily_activity",
    "intermediate.int_customer_activity_at_dates",
    "intermediate.int_customer_states_at_dates",
)


def _dbt(warehouse: Path, args: list[str]) -> subprocess.Popen:
    """`dbt <args>` against another warehouse file, with its own target and log folders."""
    from dagster_project.defs.dbt.project import DBT_DIR, dbt_executable

    work = warehouse.parent
    folders = ["--profiles-dir", str(DBT_DIR), "--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    return subprocess.Popen(
        [dbt_executable(), *args, *folders],
        cwd=DBT_DIR,
        env={**os.environ, "CRM_WAREHOUSE_PATH": str(warehouse)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen, must_succeed: bool = True) -> str:
    out, _ = proc.communicate()
    assert proc.returncode == 0 or not must_succeed, out[-4000:]
    return out


def _contents(path: Path) -> dict[str, list[tuple]]:
    out = {}
    for table in INCREMENTAL_TABLES:
        columns = [r[0] for r in query(f"describe {table}", path=path)]
        exclude = f" exclude ({WATERMARK})" if WATERMARK in columns else ""
        out[table] = query(f"select *{exclude} from {table} order by all", path=path)
    return out


def _churn_night(work: Path, name: str, as_of: date, rows: dict | None = None, files: list[Path] = ()) -> dict:
    """Load `rows` ({spec: [row, ...]}) and copies of `files`, then build as of `as_of`, incrementally
    and from scratch. Returns both contents and the churn_features slice watermarks around it."""
    warehouse = work / "incremental" / "crm.duckdb"
    before = _churn_watermarks(warehouse)
    inbox = work / "inbox" / name
    for spec, records in (rows or {}).items():
        # dated END in the name: the loader refuses extract dates after tomorrow, and these nights
        # run as of dates after END
        _write(spec, inbox / spec.kind / f"{spec.kind}_{END:%Y%m%d}_{name}.csv", records)
    for path in files:
        (inbox / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, inbox / path.parent.name / path.name)
    if rows or files:
        con = ods.connect(warehouse)
        try:
            for kind in ("customers", "transactions", "calls", "complaints"):
                if (inbox / kind).exists():
                    result = ingest(con, load_mapping(kind, settings.sources_dir()), inbox, scratch=work / "scratch")
                    assert result.count("loaded") == 1 and result.total("rows_rejected") == 0, result
        finally:
            con.close()
    full = work / "full" / "crm.duckdb"
    full.parent.mkdir(exist_ok=True)
    shutil.copy(warehouse, full)
    variables = ["--vars", json.dumps({"as_of_date": as_of.isoformat()})]
    runs = [
        _dbt(warehouse, ["run", "--select", "+churn_features", *variables]),
        _dbt(full, ["run", "--select", "+churn_features", "--full-refresh", *variables]),
    ]
    for proc in runs:
        _finish(proc)
    return {
        "incremental": _contents(warehouse),
        "full": _contents(full),
        "before": before,
        "after": _churn_watermarks(warehouse),
    }


def _churn_row(path: Path, customer_id: str, snapshot: date) -> dict | None:
    found = _records_at(path, "select * from marts.churn_features where customer_id = ? and snapshot_date = ?",
                        [customer_id, snapshot])  # fmt: skip
    return found[0] if found else None


def _records_at(path: Path, sql: str, params: list | None = None) -> list[dict]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def _row(spec, record: dict, **changes) -> dict:
    out = {c: record[c] for c in spec.column_names} | changes
    return {k: (v.strftime(STAMP) if isinstance(v, datetime) else v) for k, v in out.items()}


@pytest.fixture(scope="module")
def churn_nights(nights, tmp_path_factory):
    work = tmp_path_factory.mktemp("churn_nights")
    warehouse = work / "incremental" / "crm.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(settings.warehouse_path(), warehouse)

    def churned_at(customer_id: str, snapshot: date):
        row = _churn_row(warehouse, customer_id, snapshot)
        return row and row["churned"]

    # who the late data is about: customers active (and buying) at the month-ends it changes
    [caller, complainer, closing] = [
        r[0]
        for r in query(
            """select customer_id from marts.churn_features
               where snapshot_date in ('2026-05-31', '2026-06-30', '2026-07-31', '2026-08-31', '2026-09-30')
               group by 1 having count(*) = 5 and sum(churned) filter (where snapshot_date <= '2026-07-31') = 0
               order by 1 limit 3""",
            path=warehouse,
        )
    ]
    call = _records_at(warehouse, "select * from ods.calls where _is_current and direction = 'inbound' limit 1")[0]
    complaint = _records_at(warehouse, "select * from ods.complaints where _is_current limit 1")[0]
    customer = _records_at(warehouse, "select * from ods.customers where _is_current and customer_id = ?", [closing])[0]
    [txn] = _records_at(
        warehouse,
        """select * from ods.transactions where _is_current and txn_type = 'purchase' and txn_at::date = ?
           order by txn_id limit 1""",
        [CORRECTED_TXN_DAY],
    )
    state: dict = {"caller": caller, "complainer": complainer, "closing": closing, "txn": txn}
    nights_plan = [
        ("normal", END, None, sorted(settings.inbox_dir().glob(f"*/*_{END:%Y%m%d}.csv"))),
        ("late_call", END + timedelta(days=1), {CALLS: [_row(
            CALLS, call, call_id="CALLLATE0001", customer_id=caller, started_at=LATE_CALL_AT, direction="inbound",
        )]}, ()),
        ("late_complaint", END + timedelta(days=2), {COMPLAINTS: [_row(
            COMPLAINTS, complaint, complaint_id="CPLLATE00001", customer_id=complainer,
            opened_at=LATE_COMPLAINT_AT - timedelta(hours=2), status="open", resolved_at=None, satisfaction=None,
            compensation_amount=None, updated_at=LATE_COMPLAINT_AT,
        )]}, ()),
        ("closure_recorded_late", END + timedelta(days=3), {CUSTOMERS: [_row(
            CUSTOMERS, customer, status="closed", closed_at=LATE_CLOSED_AT,
            updated_at=datetime.combine(END + timedelta(days=3), datetime.min.time()) + timedelta(hours=9),
        )]}, ()),
        ("corrected_txn", END + timedelta(days=4), {TRANSACTIONS: [_row(
            TRANSACTIONS, txn, amount=txn["amount"] + 1000,
        )]}, ()),
        ("window_closes", date(2026, 11, 30), None, ()),  # 31 August + 90 days = 29 November
        ("as_of_back", END + timedelta(days=2), None, ()),
    ]  # fmt: skip
    for name, as_of, rows, files in nights_plan:
        state[name] = _churn_night(work, name, as_of, rows, files)
        state[name]["as_of"] = as_of
        state[name]["labels"] = {
            "closing": {d: churned_at(closing, d) for d in (date(2026, 7, 31), date(2026, 8, 31))},
            "august": query(
                "select count(*), count(churned) from marts.churn_features where snapshot_date = '2026-08-31'",
                path=warehouse,
            )[0],
        }
        state[name]["calls_90d"] = _churn_row(warehouse, caller, date(2026, 8, 31))["calls_90d"]
        state[name]["open_complaints"] = _churn_row(warehouse, complainer, date(2026, 9, 30))["open_complaints"]
    state["warehouse"] = warehouse
    yield state


CHURN_NIGHTS = (
    "normal", "late_call", "late_complaint", "closure_recorded_late", "corrected_txn", "window_closes", "as_of_back",
)  # fmt: skip


@pytest.mark.parametrize("night", CHURN_NIGHTS)
def test_incremental_churn_features_equal_a_full_refresh(churn_nights, night):
    result = churn_nights[night]
    assert len(result["full"]["marts.churn_features"]) > 1000
    for table in INCREMENTAL_TABLES:
        assert result["incremental"][table] == result["full"][table], f"{night}: {table} differs from --full-refresh"


# the month-ends each night must recompute: the snapshots on or after a changed feature day, and the
# labelled snapshots whose 90-day window reaches a changed transaction day or closure
RECOMPUTED = {
    "normal": set(),
    "late_call": {date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31)},
    "late_complaint": {date(2026, 9, 30), date(2026, 10, 31)},
    "closure_recorded_late": {date(2026, 5, 31), date(2026, 6, 30), date(2026, 7, 31)},
    "corrected_txn": {date(2026, 6, 30), date(2026, 7, 31), date(2026, 9, 30), date(2026, 10, 31)},
}


@pytest.mark.parametrize("night", sorted(RECOMPUTED))
def test_a_night_recomputes_only_the_snapshots_it_can_have_changed(churn_nights, night):
    result = churn_nights[night]
    before, after, as_of = result["before"], result["after"], result["as_of"]
    newest = max(after.values())
    assert newest > max(before.values())  # the night loaded something
    recomputed = {d for d, w in after.items() if w == newest and d != as_of}
    assert recomputed == RECOMPUTED[night]
    assert after[as_of] == newest  # the scoring snapshot, every night


def test_late_data_reaches_the_churn_features(churn_nights):
    # the late call counts in the 31 August snapshot, the late complaint is open on 30 September
    assert churn_nights["late_call"]["calls_90d"] == churn_nights["normal"]["calls_90d"] + 1
    assert churn_nights["late_complaint"]["open_complaints"] == churn_nights["late_call"]["open_complaints"] + 1
    # closed on 20 August, recorded on 24 November: churn after 31 July, as soon as it is recorded...
    labels = [churn_nights[n]["labels"]["closing"][date(2026, 7, 31)] for n in CHURN_NIGHTS]
    assert labels == [0, 0, 0, 1, 1, 1, 0]  # ...and no longer when the as-of date moves back before that
    # the 31 August labels exist once its window is over (29 November), and not when the as-of date moves back
    assert [churn_nights[n]["labels"]["august"][1] for n in ("corrected_txn", "window_closes", "as_of_back")] == [
        0,
        churn_nights["window_closes"]["labels"]["august"][0],
        0,
    ]


# Data tests scoped to the latest build (macros/latest_build.sql) -------------------------------
SCOPED_MODELS = ("churn_features", "fct_transactions", "int_customer_activity_at_dates", "int_customer_states_at_dates")
NONNEGATIVE = (
    "tenure_days", "days_since_last_txn", "consumption_txn_count_90d", "non_consumption_txn_count_90d",
    "complaints_90d", "complaints_365d", "open_complaints", "open_complaints_beyond_sla",
    "longest_open_complaint_days", "calls_30d", "calls_90d", "cancel_intent_calls_90d", "transfers_90d",
    "abandoned_calls_90d", "repeat_contacts_30d",
)  # fmt: skip


def _plant_bad_rows(path: Path, latest: bool) -> None:
    """Rows breaking every data test of the scoped models, with the newest watermark (latest build)
    or with the oldest one: nulls, values out of range or off their lists, an unknown customer, and
    rows repeating the key of an existing row written by an older build."""
    con = duckdb.connect(str(path))
    try:
        for table in ("marts.churn_features", "marts.fct_transactions", *INCREMENTAL_TABLES[2:]):
            [(oldest, newest)] = con.execute(f"select min({WATERMARK}), max({WATERMARK}) from {table}").fetchall()
            assert oldest < newest  # the nights left older builds' rows behind
            mark = newest if latest else oldest
            # a row of an older build whose key the planted duplicate repeats
            old_row = f"from {table} where {WATERMARK} = {oldest} limit 1"
            if table == "marts.churn_features":
                broken = ", ".join(f"-1 as {c}" for c in NONNEGATIVE)
                con.execute(
                    f"""insert into {table} select * replace (
                            null as customer_id, null as snapshot_date, null as is_scoring_snapshot, {broken},
                            -2 as days_since_last_consumption, 9 as recency_score, 9 as frequency_score,
                            9 as monetary_score, 9 as last_satisfaction, 2 as share_resolved_within_sla,
                            2 as digital_share_90d, 2 as branch_share_90d, null as value_tier, null as is_eligible,
                            7 as churned, null as label_window_days, null as label_definition, {mark} as {WATERMARK})
                        {old_row}"""
                )
                con.execute(
                    f"""insert into {table} select * replace ('bogus' as value_tier, 'bogus' as region,
                            'bogus' as customer_type, {mark} as {WATERMARK}) {old_row}"""
                )
                con.execute(
                    f"insert into {table} select * replace ('NOBODY' as customer_id, {mark} as {WATERMARK}) {old_row}"
                )
            elif table == "marts.fct_transactions":
                con.execute(
                    f"""insert into {table} select * replace (
                            null as txn_id, null as customer_id, null as txn_at, -1 as amount, {mark} as {WATERMARK})
                        {old_row}"""
                )
                con.execute(
                    f"""insert into {table} select * replace ('bogus' as txn_type, 'bogus' as channel,
                            'USD' as currency, 'bogus' as product_category, {mark} as {WATERMARK}) {old_row}"""
                )
            else:
                con.execute(f"insert into {table} select * replace ({mark} as {WATERMARK}) {old_row}")
    finally:
        con.close()


def _test_statuses(path: Path, extra: list[str] = ()) -> tuple[dict[str, str], set[str]]:
    """`dbt test` of the scoped models on `path`: status per test, and the tests scoped to the latest build."""
    out = _finish(_dbt(path, ["test", "--select", *SCOPED_MODELS, "--exclude", "test_type:unit", *extra]), False)
    target = path.parent / "target"
    results = json.loads((target / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses and "error" not in statuses.values(), out[-3000:]
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    scoped = {
        uid
        for uid in statuses
        if nodes[uid]["config"].get("where") == "__latest_build__"
        or (nodes[uid].get("test_metadata") or {}).get("kwargs", {}).get("keys_of_latest_build")
    }
    return statuses, scoped


def test_scoped_data_tests_fail_on_bad_rows_of_the_latest_build(churn_nights):
    clean = churn_nights["warehouse"].parent.parent / "tests-clean" / "crm.duckdb"
    planted = churn_nights["warehouse"].parent.parent / "tests-planted" / "crm.duckdb"
    for path in (clean, planted):
        path.parent.mkdir()
        shutil.copy(churn_nights["warehouse"], path)
    _plant_bad_rows(planted, latest=True)

    statuses, scoped = _test_statuses(clean)
    assert set(statuses.values()) == {"pass"}
    assert len(scoped) >= 40 and all(any(m in uid for m in SCOPED_MODELS) for uid in scoped)
    statuses, scoped = _test_statuses(planted)
    assert {uid for uid in scoped if statuses[uid] != "fail"} == set()  # every scoped test can fail
    # the unique tests failed on keys repeated between an old row and a new one
    assert {uid for uid in scoped if ".unique_combination_of_columns" in uid} and all(
        statuses[uid] == "fail" for uid in scoped if ".unique_combination_of_columns" in uid
    )


def test_scoped_data_tests_leave_older_builds_to_test_all_rows(churn_nights):
    """Rows of older builds were tested by the night that wrote them: a night does not test them
    again, `--vars '{"test_all_rows": true}'` (and every --full-refresh build) does."""
    planted = churn_nights["warehouse"].parent.parent / "tests-planted-old" / "crm.duckdb"
    planted.parent.mkdir()
    shutil.copy(churn_nights["warehouse"], planted)
    _plant_bad_rows(planted, latest=False)

    statuses, scoped = _test_statuses(planted)
    assert all(statuses[uid] == "pass" for uid in scoped)
    statuses, scoped = _test_statuses(planted, ["--vars", json.dumps({"test_all_rows": True})])
    assert all(statuses[uid] == "fail" for uid in scoped)


def test_a_foreign_currency_stops_the_marts(nights):
    stamp = END.strftime("%Y%m%d")
    _write(
        TRANSACTIONS,
        settings.inbox_dir() / "transactions" / f"transactions_{stamp}_fx.csv",
        [
            {
                "txn_id": "TXUSD0000001",
                "customer_id": nights["corrected"]["late_buyer"],
                "txn_at": f"{END} 10:00:00",
                "txn_type": "purchase",
                "channel": "online",
                "amount": "99.00",
                "currency": "USD",
                "product_category": "travel",
            },
        ],
    )
    outcome = run_nightly(as_of_date=END)
    assert not outcome.success
    assert any(name.endswith("fct_transactions_amounts_are_in_the_base_currency") for name in outcome.checks_failed)
    # nothing computed from transactions moved to the new night
    assert query("select distinct as_of_date from marts.customer_rfm") == [(CORRECTION_NIGHT,)]
    assert query("select max(snapshot_date) from marts.churn_features") == [(CORRECTION_NIGHT,)]
    assert query("select count(*) from intermediate.int_customer_daily_activity where activity_date = ?", [END]) == [
        (0,)
    ]
