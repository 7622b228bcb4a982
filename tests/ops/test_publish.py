"""Publishing the marts: a new DuckDB file swapped in atomically; failures leave the old one as it was."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from dagster_project import settings
from dagster_project.cli import main
from dagster_project.defs.ops import PUBLISH_KEY, build_publish_asset
from dagster_project.defs.ops.publish import PublishError, publish_marts, published_info
from dagster_project.defs.resources import WAREHOUSE_POOL, RunSettings, Warehouse

REPO = Path(__file__).resolve().parents[2]


def make_warehouse(path: Path, orders: int, extract_day: str = "2026-11-20") -> None:
    """A warehouse with a load log, two marts tables, a view, and a table outside marts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema if not exists ods")
        con.execute("create or replace table ods.load_log (kind VARCHAR, status VARCHAR, extract_date DATE)")
        con.execute(f"insert into ods.load_log values ('transactions', 'loaded', date '{extract_day}')")
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists staging")
        con.execute("create or replace table staging.not_published as select 1 as x")
        con.execute(
            f"create or replace table marts.dim_customers as "
            f"select 'C' || i as customer_id, i % 3 as segment from range({orders}) t(i)"
        )
        con.execute(
            "create or replace table marts.customer_rfm as "
            "select customer_id, segment * 10 as score, 12.5::decimal(18,2) as monetary from marts.dim_customers"
        )
        con.execute(
            "create or replace view marts.segment_summary as "
            "select segment, count(*) as customers from marts.dim_customers group by 1"
        )
    finally:
        con.close()


def read(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_publish_copies_marts_into_main_of_a_new_file(crm_env):
    make_warehouse(crm_env.warehouse, 30)
    target = crm_env.warehouse.parent / "marts.duckdb"
    result = publish_marts(crm_env.warehouse, target, run_id="run-1")

    assert result.tables == {"customer_rfm": 30, "dim_customers": 30, "segment_summary": 3}
    assert result.as_of_date == date(2026, 11, 20)
    # a file named marts.duckdb has catalog `marts`: marts.<table> resolves to catalog.main.table
    assert read(target, "select count(*) from marts.dim_customers") == [(30,)]
    assert read(target, "select sum(customers) from marts.segment_summary") == [(30,)]
    assert read(
        target,
        "select schema_name from duckdb_schemas() where database_name = 'marts' "
        "and schema_name not in ('information_schema', 'pg_catalog')",
    ) == [("main",)]
    tables = read(target, "select table_name from duckdb_tables() where database_name = 'marts' order by 1")
    assert tables == [("_published",), ("customer_rfm",), ("dim_customers",), ("segment_summary",)]
    types = dict(
        read(target, "select column_name, data_type from information_schema.columns where table_name = 'customer_rfm'")
    )
    assert types["monetary"] == "DECIMAL(18,2)"
    meta = read(target, "select table_name, row_count, run_id, as_of_date from marts._published order by 1")
    assert meta == [
        ("customer_rfm", 30, "run-1", date(2026, 11, 20)),
        ("dim_customers", 30, "run-1", date(2026, 11, 20)),
        ("segment_summary", 3, "run-1", date(2026, 11, 20)),
    ]
    info = published_info(target)
    assert info is not None and info.run_id == "run-1" and info.tables["dim_customers"] == 30
    # read-only on disk, no WAL, no temporary files left
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".marts")) == [".marts.duckdb.lock"]
    assert not target.with_name("marts.duckdb.wal").exists()


def test_a_failing_publish_leaves_the_published_file_untouched(crm_env):
    make_warehouse(crm_env.warehouse, 10)
    target = crm_env.warehouse.parent / "marts.duckdb"
    publish_marts(crm_env.warehouse, target, run_id="good")
    before = target.read_bytes()

    con = duckdb.connect(str(crm_env.warehouse))
    con.execute(
        "create or replace table marts.dim_customers as select 'C' || i as customer_id, 1 as segment "
        "from range(99) t(i)"
    )
    # a view that fails only when read: the copy dies half way, after some tables were written
    con.execute("create or replace view marts.zz_broken as select error('upstream mart is broken') as x")
    con.close()
    with pytest.raises(duckdb.Error, match="upstream mart is broken"):
        publish_marts(crm_env.warehouse, target, run_id="bad")
    assert target.read_bytes() == before
    assert read(target, "select distinct run_id from marts._published") == [("good",)]
    assert [p.name for p in target.parent.glob(".marts.duckdb.*.tmp*")] == []

    con = duckdb.connect(str(crm_env.warehouse))
    con.execute("drop schema marts cascade")
    con.close()
    with pytest.raises(PublishError, match="schema marts has no tables or views"):
        publish_marts(crm_env.warehouse, target, run_id="empty")
    assert target.read_bytes() == before


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from dagster_project.defs.ops import publish

    def die_before_replace(src, dst):
        Path(sys.argv[3]).write_text(str(src))   # the new file is complete: tell the test where it is
        os.kill(os.getpid(), signal.SIGKILL)      # killed at the worst moment: just before the swap

    publish.os.replace = die_before_replace
    publish.publish_marts(Path(sys.argv[1]), Path(sys.argv[2]), run_id="killed")
    """
)


def test_a_run_killed_before_the_swap_leaves_yesterdays_marts_and_the_next_run_succeeds(
    crm_env, module_instance, tmp_path
):
    make_warehouse(crm_env.warehouse, 10)
    target = crm_env.warehouse.parent / "marts.duckdb"
    publish_marts(crm_env.warehouse, target, run_id="yesterday")
    before = target.read_bytes()
    inode = target.stat().st_ino

    make_warehouse(crm_env.warehouse, 20)
    marker = tmp_path / "tmpfile.txt"
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(crm_env.warehouse), str(target), str(marker)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    leftover = Path(marker.read_text())
    assert leftover.exists() and leftover.parent == target.parent  # the complete new file, never swapped in
    assert target.stat().st_ino == inode and target.read_bytes() == before
    assert read(target, "select count(*) from marts.dim_customers") == [(10,)]

    # The next run (a real materialization of the publish asset) cleans up and publishes today's marts.
    asset = build_publish_asset([])
    result = dg.materialize([asset], instance=module_instance, resources=_resources(crm_env))
    assert result.success
    assert not leftover.exists()
    assert read(target, "select count(*) from marts.dim_customers") == [(20,)]
    run_id = read(target, "select distinct run_id from marts._published")[0][0]
    assert run_id == result.run_id
    [event] = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["table_count"].value == 3 and meta["total_rows"].value == 43
    assert meta["path"].value == str(target)


def _resources(crm_env, as_of: str | None = None) -> dict:
    return {"warehouse": Warehouse(path=str(crm_env.warehouse)), "run_settings": RunSettings(as_of_date=as_of)}


def test_publish_asset_wiring_and_as_of_date(crm_env, module_instance):
    make_warehouse(crm_env.warehouse, 5)
    upstream = dg.AssetKey(["marts", "dim_customers"])
    asset = build_publish_asset([upstream])
    assert asset.key == PUBLISH_KEY and asset.group_names_by_key[PUBLISH_KEY] == "publish"
    assert upstream in asset.asset_deps[PUBLISH_KEY]
    assert asset.op.pool == WAREHOUSE_POOL
    result = dg.materialize([asset], instance=module_instance, resources=_resources(crm_env))
    assert result.success
    # without an as-of date for the run: the newest loaded extract date
    assert read(settings.published_path(), "select distinct as_of_date from marts._published") == [
        (date(2026, 11, 20),)
    ]
    # `crm-warehouse run --as-of` sets it for every asset of the run
    assert dg.materialize([asset], instance=module_instance, resources=_resources(crm_env, "2026-11-18")).success
    assert read(settings.published_path(), "select distinct as_of_date from marts._published") == [
        (date(2026, 11, 18),)
    ]


def test_publish_and_sql_commands(crm_env, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(crm_env.data / "dagster_home"))
    runner = CliRunner()
    result = runner.invoke(main, ["sql", "--query", "select 1"])
    assert result.exit_code != 0 and "No published marts" in result.output and "crm-warehouse publish" in result.output
    result = runner.invoke(main, ["publish"])
    assert result.exit_code != 0 and "the warehouse does not exist yet" in result.output

    make_warehouse(crm_env.warehouse, 12)
    result = runner.invoke(main, ["publish", "--as-of", "2026-11-19"])
    assert result.exit_code == 0, result.output
    assert "Published 3 table(s), 27 rows" in result.output and "marts.dim_customers" in result.output
    assert read(settings.published_path(), "select distinct as_of_date from marts._published") == [
        (date(2026, 11, 19),)
    ]
    # the hand publish is recorded in the project's Dagster module_instance (DAGSTER_HOME under the data folder)
    with dg.DagsterInstance.get() as inst:
        assert inst.get_latest_materialization_event(PUBLISH_KEY) is not None

    result = runner.invoke(
        main, ["sql", "--query", "select segment, count(*) as n from marts.dim_customers group by 1 order by 1"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "segment | n",
        "--------+--",
        "      0 | 4",
        "      1 | 4",
        "      2 | 4",
        "(3 rows)",
    ]
    result = runner.invoke(
        main,
        ["sql", "--format", "csv", "-q", "select customer_id, monetary from customer_rfm order by customer_id limit 2"],
    )
    assert result.output == "customer_id,monetary\nC0,12.50\nC1,12.50\n"
    result = runner.invoke(main, ["sql", "-q", "create table marts.x as select 1"])
    assert result.exit_code != 0 and "read-only" in result.output.lower()

    session = (
        "select count(*)\n  from marts.dim_customers;\n.tables\n.mode csv\nselect 'a,b' as v;\nselect nope;\n.quit\n"
    )
    result = runner.invoke(main, ["sql"], input=session)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "count_star()" in result.output and "12".rjust(len("count_star()")) in lines
    assert "dim_customers" in result.output and "segment_summary" in result.output
    assert 'v\n"a,b"\n' in result.output
    assert "Error:" in result.output and "nope" in result.output
