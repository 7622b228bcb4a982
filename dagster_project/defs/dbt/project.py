"""The dbt project: its location, keeping its manifest fresh, and the dbt command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from dagster_dbt import DbtProject

from ... import settings

DBT_DIR = settings.dbt_project_dir()
DBT_SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".md", ".csv")

dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def manifest_path() -> Path:
    return Path(dbt_project.manifest_path)


def manifest_is_stale() -> bool:
    """True when the manifest is missing or older than any file of the dbt project."""
    manifest = manifest_path()
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for path in DBT_DIR.rglob("*"):
        if path.suffix in DBT_SOURCE_SUFFIXES and "target" not in path.parts and path.stat().st_mtime > built:
            return True
    return False


def dbt_executable() -> str:
    """The `dbt` installed next to this Python (the project venv), else whatever is on PATH."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def ensure_manifest() -> Path:
    """Run `dbt parse` (in a subprocess) when the manifest is missing or stale; returns its path."""
    if manifest_is_stale():
        env = {**os.environ, "CRM_WAREHOUSE_PATH": str(settings.warehouse_path())}
        cmd = [dbt_executable(), "parse", "--quiet", "--profiles-dir", str(DBT_DIR)]
        proc = subprocess.run(cmd, cwd=DBT_DIR, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"dbt parse failed in {DBT_DIR}:\n{proc.stdout}\n{proc.stderr}")
    return manifest_path()


def dbt_build_args(
    as_of_date: date | None,
    full_refresh: bool = False,
    select: str | None = None,
    exclude: str | None = None,
    extra_vars: dict[str, object] | None = None,
) -> list[str]:
    """The `dbt build` arguments for one nightly run (a pure function, unit-tested)."""
    variables: dict[str, object] = dict(extra_vars or {})
    if as_of_date is not None:
        variables["as_of_date"] = as_of_date.isoformat()
    # cautious: a test runs only when all the models it reads are in the selection, so a layer
    # never tests a model another layer has not rebuilt yet (tests stay within one layer)
    args = ["build", "--indirect-selection", "cautious"]
    if variables:
        args += ["--vars", json.dumps(variables, sort_keys=True)]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", exclude]
    return args
