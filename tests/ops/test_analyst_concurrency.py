"""Acceptance: analysts query marts.duckdb while nightly runs publish; nobody gets a lock error and
nobody ever sees half of one publish and half of another."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
from ops_testkit import (
    MART_KEYS,
    build_defs,
    customers_file,
    dbt_keys_on_transactions,
    dbt_models_def,
    nightly_job,
    sample_marts,
    transactions_file,
    write,
)

from dagster_project import settings
from dagster_project.defs.ingest.assets import ingest_assets
from dagster_project.defs.ops import build_publish_asset
from dagster_project.defs.ops.publish import publish_marts

ANALYST = textwrap.dedent(
    """
    import json, os, sys, time
    import duckdb

    path, mode, out, stop = sys.argv[1:5]

    def observe(con):
        return {
            "lines": con.execute("select count(*) from marts.txn_lines").fetchone()[0],
            "amounts": con.execute("select count(*) from marts.txn_amounts").fetchone()[0],
            "by_customer": con.execute("select sum(txns) from marts.txn_by_customer").fetchone()[0],
            "published": dict(con.execute("select table_name, row_count from marts._published").fetchall()),
            "runs": sorted({r[0] for r in con.execute("select run_id from marts._published").fetchall()}),
        }

    with open(out, "w") as fh:
        held = duckdb.connect(path, read_only=True) if mode == "held" else None
        while not os.path.exists(stop):
            try:
                con = held or duckdb.connect(path, read_only=True)
                try:
                    record = observe(con)
                finally:
                    if held is None:
                        con.close()
            except Exception as exc:
                record = {"error": repr(exc)}
            fh.write(json.dumps(record) + "\\n")
            fh.flush()
            time.sleep(0.02)
        if held is not None:
            held.close()
    """
)


def _start_analyst(path: Path, mode: str, out: Path, stop: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", ANALYST, str(path), mode, str(out), str(stop)])
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        assert proc.poll() is None, f"analyst {mode} exited early"
        time.sleep(0.05)
    return proc


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_analysts_see_old_or_new_marts_never_a_mix_and_nobody_waits_for_a_lock(
    crm_env, instance, monkeypatch, tmp_path
):
    monkeypatch.setenv("CRM_WAREHOUSE_PATH", str(crm_env.warehouse))
    dbt_models = dbt_models_def()
    dbt_keys = dbt_keys_on_transactions(dbt_models)
    publish = build_publish_asset([*MART_KEYS, *dbt_keys])
    full = dg.AssetSelection.assets(*ingest_assets, sample_marts, publish, *dbt_keys)
    quick = dg.AssetSelection.assets(*ingest_assets, sample_marts, publish)
    defs = build_defs(
        [sample_marts, publish, dbt_models],
        [nightly_job(full, "nightly"), nightly_job(quick, "quick")],
        crm_env.warehouse,
    )
    published = settings.published_path()
    assert published.name == "marts.duckdb"

    write(crm_env.inbox, "customers/customers_20261120.csv", customers_file("20261120", ["C1", "C2", "C3"]))
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 20, ["C1", "C2"]))
    first = defs.resolve_job_def("quick").execute_in_process(instance=instance)
    assert first.success and published.exists()

    stop = tmp_path / "stop"
    held_out, fresh_out = tmp_path / "held.jsonl", tmp_path / "fresh.jsonl"
    held = _start_analyst(published, "held", held_out, stop)
    fresh = _start_analyst(published, "reconnect", fresh_out, stop)
    try:
        write(crm_env.inbox, "customers/customers_20261121.csv", customers_file("20261121", ["C4"]))
        write(
            crm_env.inbox, "transactions/transactions_20261121.csv", transactions_file("20261121", 21, 25, ["C3", "C4"])
        )
        second = defs.resolve_job_def("nightly").execute_in_process(instance=instance)  # ingest + dbt + marts + publish
        assert second.success
        assert dbt_keys <= {e.asset_key for e in second.get_asset_materialization_events()}
        # more swaps while the analysts keep querying
        later = [publish_marts(crm_env.warehouse, published, run_id=f"extra-{i}").run_id for i in range(5)]
        time.sleep(0.3)
    finally:
        stop.write_text("stop")
        held.wait(timeout=30)
        fresh.wait(timeout=30)
    assert held.returncode == 0 and fresh.returncode == 0

    order = [first.run_id, second.run_id, *later]
    expected_rows = {first.run_id: 20, second.run_id: 45, **{r: 45 for r in later}}
    for out in (held_out, fresh_out):
        records = _records(out)
        assert records, f"{out.name}: no observations"
        errors = [r["error"] for r in records if "error" in r]
        assert errors == [], f"{out.name}: {errors[:3]}"
        for r in records:
            [run] = r["runs"]  # one publish per observation
            n = expected_rows[run]
            assert r["lines"] == r["amounts"] == r["by_customer"] == n, r
            assert r["published"]["txn_lines"] == r["published"]["txn_amounts"] == n, r

    held_runs = {r["runs"][0] for r in _records(held_out)}
    assert held_runs == {first.run_id}  # an open connection keeps reading the file it opened
    seen = [r["runs"][0] for r in _records(fresh_out)]
    assert seen[0] == first.run_id and seen[-1] == later[-1]
    positions = [order.index(run) for run in seen]
    assert positions == sorted(positions)  # never back to an older publish
