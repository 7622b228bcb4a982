"""`crm-warehouse bench` end to end on a tiny generated period, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from dagster_project.bench.memory import RssSampler
from dagster_project.bench.scratch import ScratchError, close_scratch, open_scratch
from dagster_project.cli import main

if TYPE_CHECKING:  # annotations only: at run time another folder's conftest.py can shadow the name
    from conftest import CrmEnv


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["bench", *args], catch_exceptions=False)


def test_generate_and_ingest_report_consistent_positive_numbers(
    crm_env: CrmEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/never-called")  # removed while benchmarking
    before = dict(os.environ)
    result = _invoke("--customers", "300", "--days", "30", "--stages", "generate,ingest", "--json", "-")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds the JSON alone; the table went to stderr
    assert "JSON report written to stdout" in result.stderr
    assert "ingest transactions" in result.stderr

    assert report["success"] is True
    assert [s["name"] for s in report["stages"]] == ["generate", "ingest"]
    generate, ingest = report["stages"]
    for stage in (generate, ingest):
        assert stage["status"] == "ok" and stage["error"] is None
        assert stage["seconds"] > 0 and stage["rows"] > 0
        assert stage["peak_rss_mb"] > 0 and stage["rss_samples"] > 0

    # Every generated row was read and loaded, kind by kind.
    generated = generate["details"]["rows_by_kind"]
    loader = {k["kind"]: k for k in ingest["details"]["loader"]}
    assert ingest["rows"] == generate["rows"] == sum(generated.values())
    for kind, rows in generated.items():
        assert rows > 0
        assert loader[kind]["rows_read"] == loader[kind]["rows_loaded"] == rows
        assert loader[kind]["files_loaded"] == 30 and loader[kind]["files_failed"] == 0
    assert ingest["details"]["rows_match_generated"] is True

    measurements = {m["label"]: m for m in ingest["measurements"]}
    assert measurements["ingest transactions"]["rows"] == generated["transactions"]
    assert measurements["ingest all kinds"]["rows"] == ingest["rows"]
    assert measurements["bare CTAS read_csv all kinds"]["rows"] == ingest["rows"]
    assert measurements["bare typed read transactions"]["rows"] == generated["transactions"]
    for m in measurements.values():
        assert m["seconds"] > 0 and m["rows_per_s"] > 0 and m["peak_rss_mb"] > 0
    # The ingest of all kinds cannot be faster than its slowest kind.
    assert measurements["ingest all kinds"]["seconds"] >= measurements["ingest transactions"]["seconds"]

    ratios = ingest["details"]["ratios_ingest_over_bare"]
    assert set(ratios) == {
        "transactions_vs_bare_ctas",
        "transactions_vs_bare_read",
        "all_kinds_vs_bare_ctas",
        "all_kinds_vs_bare_read",
    }
    assert all(r > 0 for r in ratios.values())
    assert {t["name"] for t in report["targets"]} >= {"ingest peak RSS MB (process tree)"}

    # The scratch folder was under the (test's) data folder and is gone; the warehouse was never touched.
    scratch = Path(report["scratch"]["path"])
    assert scratch.parent == crm_env.data / "scratch"
    assert not scratch.exists() and report["scratch"]["removed"] is True
    assert not crm_env.warehouse.exists()
    assert not any(crm_env.inbox.iterdir())
    assert dict(os.environ) == before


def test_a_failed_stage_exits_non_zero_and_still_writes_the_report(crm_env: CrmEnv, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = _invoke("--customers", "300", "--days", "3", "--stages", "ingest", "--json", str(out))
    assert result.exit_code == 1
    assert f"JSON report written to {out}" in result.stdout
    report = json.loads(out.read_text())
    assert report["success"] is False
    assert report["stages"][0]["status"] == "failed"
    assert "no extract files" in report["stages"][0]["error"]


def test_refuses_a_workdir_it_did_not_make(crm_env: CrmEnv, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(
        main, ["bench", "--customers", "300", "--days", "3", "--stages", "generate", "--workdir", str(precious)]
    )
    assert result.exit_code == 2
    assert "not empty" in result.output
    assert (precious / "notes.txt").read_text() == "keep me"


def test_sampler_counts_a_child_process_memory() -> None:
    code = "import time; b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.0)"
    with RssSampler(interval=0.05) as sampler, sampler.scope() as peak:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert peak.children_mb is not None and peak.children_mb >= 250
    assert peak.tree_mb >= peak.children_mb + 1


def test_a_work_folder_in_use_is_refused(tmp_path: Path) -> None:
    first = open_scratch(tmp_path / "work")
    try:
        with pytest.raises(ScratchError, match="in use by another"):
            open_scratch(tmp_path / "work")
    finally:
        close_scratch(first, remove=False)
    second = open_scratch(tmp_path / "work")  # free again once the first run let go
    close_scratch(second, remove=True)
    assert not (tmp_path / "work").exists()
