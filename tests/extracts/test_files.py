"""Whole-file problems, encodings and company-specific mappings."""

from __future__ import annotations

import gzip

import pytest
from extract_testkit import CUSTOMERS_DAY1, extract, load, query, write

from dagster_project.extracts.mapping import MappingError, load_mapping

GOOD_TXN = extract("transactions", "T1,C1,2026-11-20 10:00:00,purchase,online,12.50,CNY,groceries")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty", b"", ["the file is empty (0 bytes)"]),
        (
            "semicolons",
            GOOD_TXN.replace(",", ";").encode(),
            ["line 1", "single column", "delimiter ','", "looks ';'-separated", "set `delimiter: ';'`"],
        ),
        (
            "missing_columns",
            b"txn_id,customer_id,amount\nT1,C1,12.50\n",
            ["line 1", "missing required column(s) txn_at, txn_type, channel, currency", "rename:"],
        ),
        (
            "truncated_gzip",
            gzip.compress(GOOD_TXN.encode() * 200)[:-40],
            ["gzip stream is damaged or truncated", "re-deliver"],
        ),
        (
            "latin1",
            GOOD_TXN.replace("CNY", "CNY").encode().replace(b"groceries", b"\xe9picerie\xff\xfe"),
            ["line 2", "is not valid UTF-8", "not UTF-8 or GB18030 either"],
        ),
    ],
)
def test_unreadable_file_fails_alone_with_a_message_naming_file_line_and_problem(crm_env, name, content, expected):
    bad = write(crm_env.inbox, f"transactions/transactions_20261120_{name}.csv", content)
    write(crm_env.inbox, "transactions/transactions_20261121.csv", GOOD_TXN.replace("T1,", "T2,"))
    result = load(crm_env.warehouse, crm_env.inbox, "transactions")
    statuses = {f.source_file: f.status for f in result.files}
    assert statuses == {
        f"transactions/transactions_20261120_{name}.csv": "failed",
        "transactions/transactions_20261121.csv": "loaded",
    }
    message = next(f.message for f in result.files if f.status == "failed")
    assert message.startswith(f"transactions/transactions_20261120_{name}.csv")
    for part in expected:
        assert part in message, message
    assert bad.exists()  # stays in the inbox for re-delivery
    logged = query(crm_env.warehouse, "select status, message from ods.load_log where status = 'failed'")
    assert logged == [("failed", message)]
    # retried on the next run (it may have been fixed by a mapping change), and logged again
    again = load(crm_env.warehouse, crm_env.inbox, "transactions", run_id="second")
    assert [f.status for f in again.files] == ["failed"]


def test_declared_utf8_refuses_a_gb18030_file_with_the_line(crm_env):
    (crm_env.reference / "sources" / "customers.yml").write_text("encoding: utf-8\n", encoding="utf-8")
    write(crm_env.inbox, "customers/customers_20261120.csv", CUSTOMERS_DAY1, encoding="gb18030")
    mapping = load_mapping("customers", crm_env.reference / "sources")
    [f] = load(crm_env.warehouse, crm_env.inbox, "customers", mapping).files
    assert f.status == "failed"
    assert "line 2" in f.message and "is not valid utf-8" in f.message and "encoding:" in f.message


NAMES = ["张伟", "欧阳娜娜", "䶮", "𠀀", "龘龘", "李·明", "Zoë Müller"]


@pytest.mark.parametrize("declared", ["auto", "gb18030"])
def test_gb18030_names_round_trip_byte_exactly(crm_env, declared):
    rows = [
        f"C{i},{name},1380013800{i},,east,individual,2020-01-01,active,,2026-11-20 08:00:00"
        for i, name in enumerate(NAMES)
    ]
    raw = extract("customers", *rows).encode("gb18030")
    write(crm_env.inbox, "customers/customers_20261120.csv", raw)
    if declared != "auto":
        (crm_env.reference / "sources" / "customers.yml").write_text(f"encoding: {declared}\n", encoding="utf-8")
    mapping = load_mapping("customers", crm_env.reference / "sources")
    [f] = load(crm_env.warehouse, crm_env.inbox, "customers", mapping).files
    assert f.status == "loaded" and f.rows_loaded == len(NAMES)
    assert query(crm_env.warehouse, "select encoding from ods.load_log") == [("gb18030",)]
    stored = [r[0] for r in query(crm_env.warehouse, "select full_name from ods.customers order by _source_line")]
    assert stored == NAMES
    assert [s.encode("gb18030") for s in stored] == [n.encode("gb18030") for n in NAMES]


def test_utf8_bom_crlf_and_gzip_load_the_same_rows(crm_env):
    text = extract("transactions", *[f"T{i},C1,2026-11-20 10:00:00,purchase,online,{i}.00,CNY,groceries" for i in range(5)])
    write(crm_env.inbox, "transactions/transactions_20261120.csv", ("\ufeff" + text.replace("\n", "\r\n")).encode())
    write(crm_env.inbox, "transactions/transactions_20261121.csv.gz", text.replace("T", "G"), gz=True)
    write(crm_env.inbox, "transactions/transactions_20261122.csv", text.replace("T", "P"))
    result = load(crm_env.warehouse, crm_env.inbox, "transactions")
    assert [(f.status, f.rows_loaded, f.rows_rejected) for f in result.files] == [("loaded", 5, 0)] * 3
    amounts = query(crm_env.warehouse, "select left(txn_id, 1), sum(amount), count(*) from ods.transactions group by 1 order by 1")
    assert [(k, float(s), n) for k, s, n in amounts] == [("G", 10.0, 5), ("P", 10.0, 5), ("T", 10.0, 5)]


def test_company_mapping_renames_formats_constants_and_surrogate_key(crm_env):
    (crm_env.reference / "sources" / "transactions.yml").write_text(
        """
files: "billing/TXN_*.txt"
extract_date: "TXN_(\\\\d{8})"
delimiter: ";"
header: false
source_columns: [CUST_NO, TXN_TIME, TXN_KIND, CHANNEL, AMT, CATEGORY]
encoding: gbk
decimal_separator: ","
rename: {CUST_NO: customer_id, TXN_TIME: txn_at, TXN_KIND: txn_type, CHANNEL: channel, AMT: amount, CATEGORY: product_category}
formats: {txn_at: ["%d/%m/%Y %H:%M"]}
constants: {currency: CNY}
surrogate_key: txn_id
""",
        encoding="utf-8",
    )
    mapping = load_mapping("transactions", crm_env.reference / "sources")
    body = (
        "C1;20/11/2026 10:00;purchase;online;12,50;groceries\n"
        "C1;20/11/2026 10:00;purchase;online;12,50;groceries\n"   # the same purchase twice: two purchases
        "C2;31/11/2026 10:00;purchase;online;3,00;groceries\n"    # 31 November does not exist
        "C2;21/11/2026 11:15;refund;online;3,00;groceries\n"
    )
    write(crm_env.inbox, "billing/TXN_20261121.txt", body, encoding="gbk")
    [f] = load(crm_env.warehouse, crm_env.inbox, "transactions", mapping).files
    assert (f.status, f.rows_read, f.rows_loaded, f.rows_rejected, f.rows_duplicate) == ("loaded", 4, 3, 1, 0)
    assert query(crm_env.warehouse, "select extract_date::varchar from ods.load_log") == [("2026-11-21",)]
    rows = query(crm_env.warehouse, "select customer_id, txn_at::varchar, amount, currency, length(txn_id) from ods.transactions order by 1")
    assert [(c, t, float(a), cur, n) for c, t, a, cur, n in rows] == [
        ("C1", "2026-11-20 10:00:00", 12.5, "CNY", 32),
        ("C1", "2026-11-20 10:00:00", 12.5, "CNY", 32),
        ("C2", "2026-11-21 11:15:00", 3.0, "CNY", 32),
    ]
    assert len({k for (k,) in query(crm_env.warehouse, "select txn_id from ods.transactions")}) == 3
    [(line, reason)] = query(crm_env.warehouse, "select source_line, reason from ods.rejected_rows")
    assert line == 3 and "'31/11/2026 10:00' is not a valid date-time (expected %d/%m/%Y %H:%M)" in reason


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("colour: red\n", "unknown key(s) ['colour']"),
        ("rename: {AMT: amt}\n", "rename 'AMT' -> 'amt': 'amt' is not a transactions column"),
        ("encoding: ebcdic\n", "encoding 'ebcdic' is not supported"),
        ("header: false\n", "source_columns must list the columns"),
        ("delimiter: ';;'\n", "delimiter must be one character"),
    ],
)
def test_broken_mappings_are_refused_with_the_file_and_key(crm_env, yaml_text, fragment):
    path = crm_env.reference / "sources" / "transactions.yml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping("transactions", crm_env.reference / "sources")
    assert str(path) in str(err.value) and fragment in str(err.value)
