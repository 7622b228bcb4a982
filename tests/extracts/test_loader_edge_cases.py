"""Edge cases an independent review found: each test reproduces the scenario that used to go wrong."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta

from extract_testkit import CUSTOMERS_DAY1, extract, load, query, write

from dagster_project.extracts import ods
from dagster_project.extracts.mapping import load_mapping

ROWS = [f"T{i},C1,2026-11-01 10:00:00,purchase,online,{i}.00,CNY,groceries" for i in range(1, 31)]


def test_gzip_content_is_read_by_content_not_by_file_name(crm_env):
    write(crm_env.inbox, "transactions/transactions_20261101.csv", extract("transactions", *ROWS), gz=True)
    write(crm_env.inbox, "transactions/transactions_20261102.csv.gz",
          extract("transactions", *[r.replace("T", "P", 1) for r in ROWS]))  # plain text named .gz
    result = load(crm_env.warehouse, crm_env.inbox, "transactions")
    assert [(f.status, f.rows_read, f.rows_loaded, f.records_expected) for f in result.files] == [
        ("loaded", 30, 30, 30), ("loaded", 30, 30, 30)]


def test_a_correction_back_to_an_earlier_value_becomes_current(crm_env):
    row = "T1,C1,2026-11-01 10:00:00,purchase,online,{},CNY,groceries"
    write(crm_env.inbox, "transactions/transactions_20261101.csv", extract("transactions", row.format("100.00")))
    load(crm_env.warehouse, crm_env.inbox, "transactions")
    write(crm_env.inbox, "transactions/transactions_20261101_fix1.csv", extract("transactions", row.format("900.00")))
    load(crm_env.warehouse, crm_env.inbox, "transactions")
    # the same content as the first file, under a new name: a revert, not a duplicate
    shutil.copy(crm_env.inbox / "transactions/transactions_20261101.csv",
                crm_env.inbox / "transactions/transactions_20261101_fix2.csv")
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions").files
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert [float(a) for (a,) in query(crm_env.warehouse, "select amount from ods.transactions_current")] == [100.0]
    # and a row-level revert inside a mixed file
    write(crm_env.inbox, "transactions/transactions_20261101_fix3.csv",
          extract("transactions", row.format("900.00"), row.replace("T1", "T2").format("5.00")))
    load(crm_env.warehouse, crm_env.inbox, "transactions")
    write(crm_env.inbox, "transactions/transactions_20261101_fix4.csv",
          extract("transactions", row.format("100.00"), row.replace("T1", "T2").format("5.00")))
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions").files
    assert (f.rows_loaded, f.rows_duplicate) == (1, 1)  # T1 back to 100 loads; T2 unchanged is a duplicate
    current = query(crm_env.warehouse, "select txn_id, amount from ods.transactions_current order by 1")
    assert [(t, float(a)) for t, a in current] == [("T1", 100.0), ("T2", 5.0)]
    # re-sending the current content again is a plain duplicate file
    shutil.copy(crm_env.inbox / "transactions/transactions_20261101_fix4.csv",
                crm_env.inbox / "transactions/transactions_20261101_fix5.csv")
    assert [f.status for f in load(crm_env.warehouse, crm_env.inbox, "transactions").files] == ["duplicate_file"]


def test_a_stray_byte_in_a_utf8_file_is_refused_not_guessed_as_gb18030(crm_env):
    text = CUSTOMERS_DAY1.encode("utf-8").replace(b"Li, Ming", b"Li, Mi\xe9ng")
    write(crm_env.inbox, "customers/customers_20261120.csv", text)
    [f] = load(crm_env.warehouse, crm_env.inbox, "customers").files
    assert f.status == "failed"
    assert "line 3" in f.message and "rest of the file is UTF-8" in f.message
    # a real GB18030 file is still detected, and the guess is noted in the load log
    write(crm_env.inbox, "customers/customers_20261121.csv", CUSTOMERS_DAY1.replace("C1,", "C7,"), encoding="gb18030")
    loaded = [f for f in load(crm_env.warehouse, crm_env.inbox, "customers").files if f.status == "loaded"]
    assert loaded and "GB18030" in loaded[0].message


def test_old_mac_line_ends_do_not_stop_the_other_files(crm_env):
    write(crm_env.inbox, "transactions/transactions_20261101.csv", extract("transactions", *ROWS[:3]).replace("\n", "\r"))
    write(crm_env.inbox, "transactions/transactions_20261102.csv", extract("transactions", *ROWS[3:6]))
    result = load(crm_env.warehouse, crm_env.inbox, "transactions")
    by_file = {f.source_file: f for f in result.files}
    assert by_file["transactions/transactions_20261102.csv"].rows_loaded == 3
    cr = by_file["transactions/transactions_20261101.csv"]
    assert (cr.status == "loaded" and cr.rows_loaded == 3 and cr.reconciled) or cr.status == "failed"


def test_a_corrected_file_with_the_same_size_and_mtime_is_hashed_again(crm_env):
    path = write(crm_env.inbox, "transactions/transactions_20261101.csv", extract("transactions", ROWS[0]))
    load(crm_env.warehouse, crm_env.inbox, "transactions")
    stat = path.stat()
    path.write_bytes(path.read_bytes().replace(b",1.00,", b",9.00,"))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))             # mtime preserved, like cp -p
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions").files
    assert f.rows_loaded == 1
    assert [float(a) for (a,) in query(crm_env.warehouse, "select amount from ods.transactions_current")] == [9.0]


def test_keyless_sources_keep_repeat_purchases_and_replace_by_extract_date(crm_env):
    (crm_env.reference / "sources" / "transactions.yml").write_text(
        "surrogate_key: txn_id\nsource_columns: [customer_id, txn_at, txn_type, channel, amount, currency, product_category]\n"
        "header: false\n", encoding="utf-8")
    mapping = load_mapping("transactions", crm_env.reference / "sources")
    coffee = "C1,2026-11-01 08:00:00,purchase,pos,18.00,CNY,dining"
    write(crm_env.inbox, "transactions/transactions_20261101.csv", f"{coffee}\n{coffee}\nC1,2026-11-01 09:00:00,purchase,pos,30.00,CNY,dining\n")
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions", mapping).files
    assert (f.rows_loaded, f.rows_duplicate) == (3, 0)  # two identical coffees are two purchases
    # the day is re-delivered with the 30.00 corrected to 35.00: it replaces the earlier delivery
    write(crm_env.inbox, "transactions/transactions_20261101_v2.csv", f"{coffee}\n{coffee}\nC1,2026-11-01 09:00:00,purchase,pos,35.00,CNY,dining\n")
    load(crm_env.warehouse, crm_env.inbox, "transactions", mapping)
    [(total, n)] = query(crm_env.warehouse, "select sum(amount), count(*) from ods.transactions_current")
    assert (float(total), n) == (71.0, 3)


def test_a_file_dated_in_the_future_is_refused(crm_env):
    future = (date.today() + timedelta(days=30)).strftime("%Y%m%d")
    write(crm_env.inbox, f"transactions/transactions_{future}.csv", extract("transactions", ROWS[0]))
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions").files
    assert f.status == "failed" and "in the future" in f.message


def test_copies_of_a_file_that_failed_are_reported_too(crm_env):
    bad = extract("transactions", ROWS[0]).replace(",", ";")
    write(crm_env.inbox, "transactions/transactions_20261101.csv", bad)
    write(crm_env.inbox, "transactions/transactions_20261101_again.csv", bad)
    result = load(crm_env.warehouse, crm_env.inbox, "transactions")
    assert sorted(f.status for f in result.files) == ["failed", "failed"]
    assert any("same content as transactions/transactions_20261101.csv" in f.message for f in result.files)


def test_reconciliation_flags_records_missing_against_the_independent_count(crm_env):
    from dagster_project.defs.ingest.checks import reconciliation_problems

    write(crm_env.inbox, "transactions/transactions_20261101.csv", extract("transactions", *ROWS[:5]))
    load(crm_env.warehouse, crm_env.inbox, "transactions", run_id="r1")
    con = ods.connect(crm_env.warehouse)
    try:
        assert reconciliation_problems(con, "transactions", ["r1"]) == (1, [])
        con.execute("update ods.load_log set records_expected = 6 where run_id = 'r1'")  # as if a row vanished
        checked, problems = reconciliation_problems(con, "transactions", ["r1"])
    finally:
        con.close()
    assert checked == 1 and "DuckDB read 5 records but an independent count of the file finds 6" in problems[0]


