"""The dbt docs site: generated as one static page by an asset, opened or served by `crm-warehouse docs`."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from dagster_project.cli import main
from dagster_project.defs.ops import DOCS_KEY, build_docs_asset
from dagster_project.defs.ops.docs_site import docs_command, docs_index_path
from dagster_project.defs.resources import RunSettings, Warehouse
from dagster_project.extracts import ods

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_docs_asset_writes_one_static_page(crm_env, instance, monkeypatch):
    monkeypatch.setenv("CRM_WAREHOUSE_PATH", str(crm_env.warehouse))
    con = ods.connect(crm_env.warehouse)
    ods.ensure_ods(con)
    con.close()
    asset = build_docs_asset([dg.AssetKey(["ods", "transactions"])])
    result = dg.materialize(
        [asset],
        instance=instance,
        resources={"warehouse": Warehouse(path=str(crm_env.warehouse)), "run_settings": RunSettings()},
    )
    assert result.success
    index = docs_index_path()
    assert index == crm_env.data / "docs" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert "stg_ods__transactions" in html  # manifest inlined: opens from disk without a server
    assert [p.name for p in index.parent.iterdir()] == ["index.html"]  # build folder and temp file cleaned up
    [event] = result.get_asset_materialization_events()
    assert event.asset_key == DOCS_KEY and event.materialization.metadata["path"].value == str(index)


def test_docs_command_line_keeps_the_project_target_untouched(tmp_path):
    cmd = docs_command(tmp_path / "build")
    assert cmd[1:4] == ["docs", "generate", "--static"]
    assert cmd[cmd.index("--target-path") + 1] == str(tmp_path / "build")
    assert cmd[cmd.index("--log-path") + 1] == str(tmp_path / "build" / "logs")


def test_docs_command_opens_or_serves_the_site(crm_env, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["docs"])
    assert result.exit_code != 0 and "No docs site" in result.output

    index = docs_index_path()
    index.parent.mkdir(parents=True)
    index.write_text("<html><body>crm docs</body></html>", encoding="utf-8")
    result = runner.invoke(main, ["docs"])
    assert result.exit_code == 0 and str(index) in result.output and "No desktop browser" in result.output

    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.cli", "docs", "--serve", "--port", "0", "--no-browser"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith("Serving on "):
                url = line.split()[2]
        assert url and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read().decode() == "<html><body>crm docs</body></html>"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
