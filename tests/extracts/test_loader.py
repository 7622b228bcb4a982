"""The ODS loader against real DuckDB files: every row accounted for, once."""

from __future__ import annotations

import shutil

from extract_testkit import CUSTOMERS_DAY1, extract, load, query, write

MESSY = extract(
    "transactions",
    "T1,C1,2026-11-20 10:00:00,purchase,online,12.50,CNY,groceries",   # line 2: good
    "T2,C1,2026-13-45 10:00:00,purchase,online,12.50,CNY,groceries",   # line 3: bad date
    "T3,C2,2026-11-20 11:00:00,purchse,pos,5.00,CNY,dining",           # line 4: unknown enum
    "T4,C2,2026-11-20 11:00:00,payment,online,-5.00,CNY,",             # line 5: negative amount
    "T5,C2,2026-11-20",                                                # line 6: truncated
    "T1,C1,2026-11-20 10:00:00,purchase,online,12.50,CNY,groceries",   # line 7: exact duplicate of line 2
    "T6,C2,2026-11-20 12:00:00,purchase,atm,12,5O,CNY,groceries",      # line 8: too many fields
    "T7,C9,2026-11-20 12:00:00,withdrawal,atm,100,CNY,",               # line 9: good, unknown customer
    "T8,C2,2026-11-20 12:30:00,withdrawal,atm,abc,CNY,",               # line 10: non-numeric amount
    "T1,C1,2026-11-20 10:00:00,purchase,online,99.00,CNY,groceries",   # line 11: same key, other values
)


def test_bad_rows_are_quarantined_with_file_line_column_and_reason(crm_env):
    write(crm_env.inbox, "customers/customers_20261120.csv", CUSTOMERS_DAY1)
    write(crm_env.inbox, "transactions/transactions_20261120.csv", MESSY)
    load(crm_env.warehouse, crm_env.inbox, "customers")
    result = load(crm_env.warehouse, crm_env.inbox, "transactions")

    [f] = result.files
    assert (f.status, f.rows_read, f.rows_loaded, f.rows_rejected, f.rows_duplicate) == ("loaded", 10, 2, 7, 1)
    assert f.reconciled and f.data_lines == 10

    rejects = query(
        crm_env.warehouse,
        "select source_file, source_line, column_name, reason, raw_text, error_type from ods.rejected_rows order by source_line",
    )
    by_line = {r[1]: r for r in rejects}
    assert set(by_line) == {3, 4, 5, 6, 8, 10, 11}
    assert all(r[0] == "transactions/transactions_20261120.csv" for r in rejects)
    assert by_line[3][2:4] == ("txn_at", "txn_at: '2026-13-45 10:00:00' is not a valid date-time "
                               "(expected %Y-%m-%d %H:%M:%S or %Y-%m-%dT%H:%M:%S or %Y-%m-%d %H:%M or %Y-%m-%d)")
    assert by_line[4][2:4] == ("txn_type", "txn_type: 'purchse' is not one of purchase, refund, payment, fee, transfer, withdrawal")
    assert by_line[5][2:4] == ("amount", "amount: -5.00 is below the minimum 0")
    assert by_line[6][3] == "has 3 fields, expected 8: the line is truncated or a field is missing"
    assert by_line[6][4] == "T5,C2,2026-11-20" and by_line[6][5] == "structure"
    assert "more than 8 fields" in by_line[8][3]
    assert by_line[10][2:4] == ("amount", "amount: 'abc' is not a valid number")
    assert by_line[11][3] == "txn_id T1 already appears on line 2 of this file with different values"
    assert by_line[11][5] == "conflict"
    # the raw text is the exact line from the file
    assert by_line[3][4] == "T2,C1,2026-13-45 10:00:00,purchase,online,12.50,CNY,groceries"

    assert query(crm_env.warehouse, "select source_line, natural_key, duplicate_of_line from ods.duplicate_rows") == [(7, "T1", 2)]
    loaded = query(crm_env.warehouse, "select txn_id, _source_line, _is_orphan, _is_current from ods.transactions order by txn_id")
    assert loaded == [("T1", 2, False, True), ("T7", 9, True, True)]


def _snapshot(warehouse):
    tables = ["transactions", "customers", "rejected_rows", "duplicate_rows", "load_log"]
    return {t: query(warehouse, f"select * from ods.{t} order by all") for t in tables}


def test_rerun_and_renamed_copy_change_nothing(crm_env):
    write(crm_env.inbox, "customers/customers_20261120.csv", CUSTOMERS_DAY1)
    write(crm_env.inbox, "transactions/transactions_20261120.csv", MESSY)
    load(crm_env.warehouse, crm_env.inbox, "customers")
    load(crm_env.warehouse, crm_env.inbox, "transactions")
    before = _snapshot(crm_env.warehouse)

    again = load(crm_env.warehouse, crm_env.inbox, "transactions")
    assert again.files == [] and again.skipped == 1
    assert _snapshot(crm_env.warehouse) == before

    shutil.copy(crm_env.inbox / "transactions/transactions_20261120.csv", crm_env.inbox / "transactions/transactions_20261120_resent.csv")
    copy = load(crm_env.warehouse, crm_env.inbox, "transactions")
    assert [(f.status, f.rows_loaded) for f in copy.files] == [("duplicate_file", 0)]
    after = _snapshot(crm_env.warehouse)
    for table in ("transactions", "rejected_rows", "duplicate_rows"):
        assert after[table] == before[table]
    # logged once, and not again on the next run
    assert load(crm_env.warehouse, crm_env.inbox, "transactions").files == []


def test_corrected_redelivery_supersedes_older_version(crm_env):
    write(crm_env.inbox, "transactions/transactions_20261120.csv", extract(
        "transactions",
        "T1,C1,2026-11-20 10:00:00,purchase,online,12.50,CNY,groceries",
        "T2,C1,2026-11-20 11:00:00,purchase,online,20.00,CNY,dining",
    ))
    load(crm_env.warehouse, crm_env.inbox, "transactions")
    write(crm_env.inbox, "transactions/transactions_20261120_v2.csv", extract(
        "transactions",
        "T1,C1,2026-11-20 10:00:00,purchase,online,13.50,CNY,groceries",  # corrected amount
        "T2,C1,2026-11-20 11:00:00,purchase,online,20.00,CNY,dining",     # unchanged
    ))
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions").files
    assert (f.rows_loaded, f.rows_duplicate) == (1, 1)
    current = query(crm_env.warehouse, "select txn_id, amount from ods.transactions_current order by txn_id")
    assert [(t, float(a)) for t, a in current] == [("T1", 13.5), ("T2", 20.0)]
    assert query(crm_env.warehouse, "select count(*) from ods.transactions")[0][0] == 3  # history kept


def test_customers_supersede_by_updated_at_even_when_delivered_late(crm_env):
    write(crm_env.inbox, "customers/customers_20261121.csv", extract(
        "customers", "C1,张伟,13800138000,new@example.cn,east,individual,2020-01-01,closed,2026-11-21 09:00:00,2026-11-21 09:00:00",
    ))
    load(crm_env.warehouse, crm_env.inbox, "customers")
    write(crm_env.inbox, "customers/customers_20261120.csv", CUSTOMERS_DAY1)  # the older file arrives late
    load(crm_env.warehouse, crm_env.inbox, "customers")
    current = query(crm_env.warehouse, "select customer_id, status, email from ods.customers_current order by 1")
    assert current == [("C1", "closed", "new@example.cn"), ("C2", "active", None)]


def test_orphans_are_kept_flagged_and_resolved_when_the_customer_arrives(crm_env):
    write(crm_env.inbox, "transactions/transactions_20261120.csv", extract(
        "transactions", "T1,C1,2026-11-20 10:00:00,purchase,online,12.50,CNY,groceries",
    ))
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions").files
    assert (f.rows_loaded, f.rows_orphan) == (1, 1)
    write(crm_env.inbox, "customers/customers_20261120.csv", CUSTOMERS_DAY1)
    load(crm_env.warehouse, crm_env.inbox, "customers")
    load(crm_env.warehouse, crm_env.inbox, "transactions")  # no new file; refreshes the flag
    assert query(crm_env.warehouse, "select _is_orphan from ods.transactions") == [(False,)]


def test_quoted_line_breaks_blank_lines_and_a_runaway_quote_keep_physical_line_numbers(crm_env):
    text = (
        extract("customers")
        + 'C1,"Zhang\nWei",13800138000,,east,individual,2020-01-01,active,,2026-11-20 08:00:00\n'   # lines 2-3
        + "\n"                                                                                      # line 4 blank
        + "C2,Li,13900139000,,mars,individual,2020-01-01,active,,2026-11-20 08:00:00\n"            # line 5 bad region
        + "C3,Wang\n"                                                                               # line 6 truncated
        + "C4,Zhao,13700137000,,west,individual,2020-01-01,active,,2026-11-20 08:00:00\n"          # line 7 bad region
        + 'C5,"never closed,13600136000,,east,individual,2020-01-01,active,,2026-11-20 08:00:00\n'  # line 8 runaway
    )
    write(crm_env.inbox, "customers/customers_20261120.csv", text)
    [f] = load(crm_env.warehouse, crm_env.inbox, "customers").files
    assert f.reconciled and f.rows_loaded == 1 and "span several lines" in (f.message or "")
    lines = dict(query(crm_env.warehouse, "select source_line, column_name from ods.rejected_rows"))
    assert set(lines) == {5, 6, 7, 8}
    assert lines[5] == "region" and lines[7] == "region"
    assert query(crm_env.warehouse, "select full_name, _source_line from ods.customers") == [("Zhang\nWei", 2)]


def test_many_rows_in_one_batch_reconcile(crm_env):
    """More than one DuckDB row group of rejects and of loaded rows in one transaction.

    Regression test for the DuckDB optimistic-writer bug guarded by `batch._insert_if_any`.
    """
    rows = []
    for i in range(300_000):
        amount = "abc" if i % 2 else f"{i % 1000}.00"
        rows.append(f"T{i},C1,2026-11-20 10:00:00,purchase,online,{amount},CNY,groceries")
    write(crm_env.inbox, "transactions/transactions_20261120.csv", extract("transactions", *rows))
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions").files
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (300_000, 150_000, 150_000)
    assert query(crm_env.warehouse, "select count(*), min(source_line), max(source_line) from ods.rejected_rows") == [
        (150_000, 3, 300_001)
    ]
    assert query(crm_env.warehouse, "select count(*) from ods.transactions group by _load_id") == [(150_000,)]


def test_header_only_files_are_deliveries_not_duplicates(crm_env):
    for day in ("20261120", "20261121"):
        write(crm_env.inbox, f"complaints/complaints_{day}.csv", extract("complaints"))
    result = load(crm_env.warehouse, crm_env.inbox, "complaints")
    assert [(f.status, f.rows_read) for f in result.files] == [("loaded", 0), ("loaded", 0)]
    assert load(crm_env.warehouse, crm_env.inbox, "complaints").files == []


def test_through_date_leaves_later_extracts_for_a_later_run(crm_env):
    from datetime import date

    from dagster_project.extracts import ods
    from dagster_project.extracts.loader import ingest
    from dagster_project.extracts.mapping import default_mapping

    for day in ("20261119", "20261120", "20261121"):
        write(crm_env.inbox, f"transactions/transactions_{day}.csv",
              extract("transactions", f"T{day},C1,2026-11-19 10:00:00,purchase,online,1.00,CNY,groceries"))
    con = ods.connect(crm_env.warehouse)
    try:
        ods.ensure_ods(con)
        first = ingest(con, default_mapping("transactions"), crm_env.inbox, crm_env.root / "s", through=date(2026, 11, 20))
        second = ingest(con, default_mapping("transactions"), crm_env.inbox, crm_env.root / "s")
    finally:
        con.close()
    assert [f.source_file for f in first.files] == [
        "transactions/transactions_20261119.csv", "transactions/transactions_20261120.csv"]
    assert [f.source_file for f in second.files] == ["transactions/transactions_20261121.csv"]
