"""The inbox sensor: one run per set of new files (content-hash run keys), never a duplicate, never
a write to the warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
from ops_testkit import customers_file, transactions_file, write

from dagster_project.defs.ops.inbox import list_inbox, pending_files, read_warehouse, run_key
from dagster_project.defs.ops.sensors import inbox_sensor
from dagster_project.extracts import ods
from dagster_project.extracts.loader import ingest
from dagster_project.extracts.mapping import load_mapping

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_quiet_period(monkeypatch):
    monkeypatch.setenv("CRM_INBOX_QUIET_SECONDS", "0")


def evaluate(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="inbox_sensor")
    return inbox_sensor(context)


def load_all(crm_env, kinds=("customers", "transactions")) -> None:
    con = ods.connect(crm_env.warehouse)
    try:
        ods.ensure_ods(con)
        for kind in kinds:
            ingest(
                con,
                load_mapping(kind, crm_env.reference / "sources"),
                crm_env.inbox,
                crm_env.warehouse.parent / "scratch",
                run_id="earlier-run",
            )
    finally:
        con.close()


def test_same_files_request_one_run_and_a_new_file_requests_another(crm_env, module_instance, no_quiet_period):
    write(crm_env.inbox, "customers/customers_20261120.csv", customers_file("20261120", ["C1", "C2"]))
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 5))
    write(crm_env.inbox, "transactions/transactions_20261121.csv.part", "still uploading")  # ignored, like ingestion

    first = evaluate(module_instance, None)
    [request] = first.run_requests
    assert request.run_key.startswith("inbox-")
    assert request.tags["crm/trigger"] == "inbox_sensor" and request.tags["crm/new_files"] == "2"

    again = evaluate(module_instance, first.cursor)
    assert again.run_requests == [] and "already requested" in again.skip_reason.skip_message
    # a scan from scratch (lost cursor) derives the same key, which Dagster never runs twice for a sensor
    assert evaluate(module_instance, None).run_requests[0].run_key == request.run_key

    write(crm_env.inbox, "transactions/transactions_20261121.csv", transactions_file("20261121", 6, 5))
    third = evaluate(module_instance, again.cursor)
    [second_request] = third.run_requests
    assert second_request.run_key != request.run_key and second_request.tags["crm/new_files"] == "3"

    # once ingestion has loaded them, nothing is pending any more
    load_all(crm_env)
    done = evaluate(module_instance, third.cursor)
    assert done.run_requests == [] and done.skip_reason.skip_message == "no new extract files"


def test_run_key_is_the_content_not_the_timestamps(crm_env, no_quiet_period, module_instance):
    path = write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 5))
    key = evaluate(module_instance, None).run_requests[0].run_key
    os.utime(path, (time.time() - 5, time.time() - 5))  # touched, same bytes
    assert evaluate(module_instance, None).run_requests[0].run_key == key
    path.write_text(transactions_file("20261120", 1, 6), encoding="utf-8")  # same name, new content
    assert evaluate(module_instance, None).run_requests[0].run_key != key


def test_already_loaded_content_under_a_new_name_does_not_start_a_run(crm_env, no_quiet_period, module_instance):
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 5))
    load_all(crm_env, ["transactions"])
    assert evaluate(module_instance, None).run_requests == []
    write(crm_env.inbox, "transactions/transactions_20261120_resent.csv", transactions_file("20261120", 1, 5))
    assert evaluate(module_instance, None).run_requests == []


def test_waits_for_a_delivery_to_settle(crm_env, module_instance, monkeypatch):
    monkeypatch.setenv("CRM_INBOX_QUIET_SECONDS", "3600")
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 5))
    result = evaluate(module_instance, None)
    assert result.run_requests == [] and "waiting for the delivery to finish" in result.skip_reason.skip_message


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED])
def test_does_not_request_a_run_while_a_nightly_run_is_waiting_or_running(
    crm_env, module_instance, no_quiet_period, status
):
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 5))
    module_instance.add_run(dg.DagsterRun(job_name="nightly", run_id="active-run", status=status))
    try:
        result = evaluate(module_instance, None)
        assert result.run_requests == []
        assert f"active-run is {status.value.lower()}" in result.skip_reason.skip_message
    finally:
        module_instance.delete_run("active-run")
    assert len(evaluate(module_instance, None).run_requests) == 1


HOLD_WRITE_LOCK = textwrap.dedent(
    """
    import sys, time
    import duckdb
    con = duckdb.connect(sys.argv[1])          # a run writing the warehouse
    con.execute("create schema if not exists ods")
    print("locked", flush=True)
    sys.stdin.readline()
    con.close()
    """
)


def test_never_opens_a_busy_warehouse_and_keeps_its_cursor(crm_env, module_instance, no_quiet_period):
    write(crm_env.inbox, "customers/customers_20261120.csv", customers_file("20261120", ["C1"]))
    load_all(crm_env, ["customers"])
    write(crm_env.inbox, "transactions/transactions_20261120.csv", transactions_file("20261120", 1, 5))
    stamp = (crm_env.warehouse.stat().st_mtime_ns, crm_env.warehouse.stat().st_size)
    before = evaluate(module_instance, None)
    assert (crm_env.warehouse.stat().st_mtime_ns, crm_env.warehouse.stat().st_size) == stamp  # read-only

    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(crm_env.warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        busy = evaluate(module_instance, before.cursor)
        assert busy.run_requests == [] and "being written" in busy.skip_reason.skip_message
        assert busy.cursor == before.cursor
    finally:
        writer.communicate("done\n", timeout=30)
    assert evaluate(module_instance, before.cursor).skip_reason.skip_message.startswith("a run was already requested")


def test_pending_files_are_what_ingestion_would_load(crm_env):
    write(crm_env.inbox, "customers/customers_20261120.csv", customers_file("20261120", ["C1"]))
    write(crm_env.inbox, "calls/.hidden_20261120.csv", "x")
    write(crm_env.inbox, "calls/notes.txt", "not an extract")
    files, problems = list_inbox(crm_env.inbox, crm_env.reference / "sources", ["customers", "calls"])
    assert problems == [] and [f.rel for f in files] == ["customers/customers_20261120.csv"]
    assert files[0].extract_date.isoformat() == "2026-11-20"
    pending = pending_files(files, read_warehouse(crm_env.warehouse), {})
    assert [(p.kind, p.rel) for p in pending] == [("customers", "customers/customers_20261120.csv")]
    assert run_key(pending) == run_key(list(reversed(pending)))
