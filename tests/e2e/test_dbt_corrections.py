"""Corrected and late deliveries end to end: real Dagster, real dbt, real DuckDB.

One small warehouse is built per module from generated demo extracts: a first night, a normal
night (only the new day arrives), then a night that also brings correction files the way a source
system sends them: a re-delivered transaction moved to another day, one moved to another customer,
a late transaction for a past month, a late account closure (with an earlier updated_at) and an
account closed and reopened, both delivered late. The incremental result must equal a
`--full-refresh` of the same night, intermediate tables and marts alike; the churn labels must
count the late closure and not the closure undone by the reopening; the cohort CLV must measure
each relationship year on the value tier the customer had when it started. A last night brings a
transaction in a foreign currency, which must stop the marts.

The history is 400 days (some relationship years lie entirely inside the data) for 150 customers.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from e2e_home import project_home, query

from dagster_project import settings
from dagster_project.demo import GeneratorConfig, generate
from dagster_project.extracts.spec import CUSTOMERS, TRANSACTIONS
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


def _month_ends() -> list[date]:
    return [
        d
        for (d,) in query("select reference_date from intermediate.int_reference_dates where is_month_end order by 1")
    ]


def _write(kind_spec, path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(kind_spec.column_names))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _records(sql: str, params: list | None = None) -> list[dict]:
    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    try:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


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
        state["normal"] = run_nightly(as_of_date=NORMAL_NIGHT)
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
