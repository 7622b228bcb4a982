"""The nightly job end to end on generated demo extracts: real Dagster, real dbt, real DuckDB.

One small warehouse is built per module (two nights, like `make demo`), then inspected.
"""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest
from e2e_home import project_home, query

from dagster_project import settings
from dagster_project.demo import GeneratorConfig, generate
from dagster_project.runner import run_nightly

END = date(2026, 11, 21)
FIRST_NIGHT = date(2026, 10, 31)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    """Generate 400 customers x 150 days, run the night of 2026-10-31, then the latest night."""
    with project_home(tmp_path_factory.mktemp("nightly")) as root:
        generate(GeneratorConfig(out_dir=settings.inbox_dir(), truth_dir=settings.ground_truth_dir(),
                                 customers=400, days=150, seed=11, end_date=END))
        first = run_nightly(as_of_date=FIRST_NIGHT)
        second = run_nightly()
        yield {"root": root, "first": first, "second": second}



def _marts() -> dict[str, list[tuple]]:
    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1").fetchall()]
        out = {}
        for t in tables:
            # the build watermark of incremental marts records which night wrote a row: not content
            columns = [r[0] for r in con.execute(f"describe marts.{t}").fetchall()]
            exclude = " exclude (built_through_load_id)" if "built_through_load_id" in columns else ""
            out[t] = con.execute(f"select *{exclude} from marts.{t} order by all").fetchall()
        return out
    finally:
        con.close()


def test_both_nights_succeed_with_every_check_passing(nightly):
    for outcome in (nightly["first"], nightly["second"]):
        assert outcome.success, outcome.failure
        assert outcome.checks_failed == []
        assert outcome.checks_passed > 100  # ingestion reconciliation + every dbt test
    assert "marts/customer_rfm" in nightly["second"].materialized


def test_first_night_loads_only_extracts_up_to_its_date(nightly):
    latest = query("""select max(extract_date) from ods.load_log l
                       where run_id = ? and status = 'loaded' and kind = 'transactions'""", [nightly["first"].run_id])
    assert latest == [(FIRST_NIGHT,)]
    second = query("select count(*), min(extract_date), max(extract_date) from ods.load_log "
                    "where run_id = ? and kind = 'transactions'", [nightly["second"].run_id])
    assert second == [(21, date(2026, 11, 1), END)]


def test_ods_tables_match_the_load_log(nightly):
    for kind in ("customers", "transactions", "calls", "complaints"):
        [(in_table,)] = query(f"select count(*) from ods.{kind}")
        [(logged, read, rejected, dups)] = query(
            "select sum(rows_loaded), sum(rows_read), sum(rows_rejected), sum(rows_duplicate) "
            "from ods.load_log where kind = ? and status = 'loaded'", [kind])
        assert in_table == logged > 0
        assert read == logged + rejected + dups


def test_running_again_loads_nothing_and_changes_no_ods_row(nightly):
    before = {k: query(f"select * from ods.{k} order by all") for k in ("customers", "transactions", "calls", "complaints")}
    marts_before = _marts()
    again = run_nightly()
    assert again.success
    assert query("select count(*) from ods.load_log where run_id = ?", [again.run_id]) == [(0,)]
    after = {k: query(f"select * from ods.{k} order by all") for k in before}
    assert after == before
    assert _marts() == marts_before  # the same night gives the same marts


def test_incremental_nights_equal_a_full_refresh(nightly):
    incremental = _marts()
    full = run_nightly(full_refresh=True)
    assert full.success, full.failure
    refreshed = _marts()
    # segment_migration comes from the SCD2 snapshot, which a full refresh keeps (it is history)
    assert set(refreshed) == set(incremental)
    for table in incremental:
        assert refreshed[table] == incremental[table], f"marts.{table} differs after --full-refresh"


def test_as_of_marts_describe_the_as_of_date(nightly):
    assert query("select distinct as_of_date from marts.dim_customers") == [(END,)]
    assert query("select distinct as_of_date from marts.customer_rfm") == [(END,)]
    # the customers file of a later day cannot change the state of an earlier as-of date
    assert query("select count(*) from marts.dim_customers where signup_date > ?", [END]) == [(0,)]


def test_segment_migration_records_the_move_between_the_two_nights(nightly):
    rows = query("select from_date, to_date, sum(customers) from marts.segment_migration "
                  "where dimension = 'value_tier' group by all")
    assert rows and rows[0][0] == FIRST_NIGHT and rows[0][1] == END
    [(customers,)] = query("select count(*) from marts.dim_customers")
    assert rows[0][2] == customers


def test_personal_data_is_masked_in_the_marts(nightly):
    clear = {v for r in query("select full_name, phone, email from ods.customers") for v in r if v is not None}
    masked = query("select full_name_masked, phone_masked, email_masked from marts.dim_customers")
    assert masked
    for row in masked:
        present = [v for v in row if v is not None]
        assert present and not (set(present) & clear)
        assert all("*" in v for v in present)


def _manifest() -> dict:
    from dagster_project.defs.dbt.project import ensure_manifest

    return json.loads(ensure_manifest().read_text())


def test_every_mart_and_mart_column_is_described():
    manifest = _manifest()
    missing = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["schema"] != "marts":
            continue
        if not node.get("description", "").strip():
            missing.append(node["name"])
        for name, column in node["columns"].items():
            if not column.get("description", "").strip():
                missing.append(f"{node['name']}.{name}")
        built = set(node["columns"])
        if not built:
            missing.append(f"{node['name']} (no columns documented)")
    assert missing == []


def test_every_mart_has_a_tested_primary_key():
    manifest = _manifest()
    marts = {n["unique_id"]: n["name"] for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and n["schema"] == "marts"}
    keyed: dict[str, set[str]] = {name: set() for name in marts.values()}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test":
            continue
        test = node.get("test_metadata", {}).get("name")
        for dep in node["depends_on"]["nodes"]:
            if dep in marts and test in ("unique", "not_null", "unique_combination_of_columns"):
                keyed[marts[dep]].add(test)
    unkeyed = [m for m, tests in keyed.items() if not ({"unique", "not_null"} <= tests or "unique_combination_of_columns" in tests)]
    assert unkeyed == []
