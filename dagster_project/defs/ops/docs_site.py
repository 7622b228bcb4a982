"""The dbt docs site as one static HTML file: `<data>/docs/index.html`.

`dbt docs generate --static` writes `static_index.html` (manifest and catalog inlined, so it opens
from disk with no server). It runs with its own target and log folders, so it never touches the
manifest that Dagster reads, and the result replaces the previous site atomically.
This module does not import Dagster; `assets.py` wraps it as an asset, `crm-warehouse docs` opens it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import uuid
from datetime import date
from pathlib import Path

from ... import settings

log = logging.getLogger(__name__)

OUTPUT_TAIL_LINES = 30


class DocsError(RuntimeError):
    """dbt could not generate the docs; the message includes dbt's output."""


def docs_dir() -> Path:
    return settings.data_dir() / "docs"


def docs_index_path() -> Path:
    return docs_dir() / "index.html"


def docs_command(target_path: Path, as_of_date: date | None = None) -> list[str]:
    """The dbt command line (a pure function)."""
    from ..dbt.project import DBT_DIR, dbt_executable

    cmd = [
        dbt_executable(),
        "docs",
        "generate",
        "--static",
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path / "logs"),
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
    ]
    if as_of_date is not None:
        cmd += ["--vars", json.dumps({"as_of_date": as_of_date.isoformat()})]
    return cmd


def generate_docs_site(warehouse: Path, output: Path | None = None, as_of_date: date | None = None) -> Path:
    """Run `dbt docs generate --static` against `warehouse` and install the page at `output` atomically."""
    from ..dbt.project import DBT_DIR

    output = output or docs_index_path()
    output.parent.mkdir(parents=True, exist_ok=True)
    build = output.parent / f".build-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "CRM_WAREHOUSE_PATH": str(warehouse)}
    try:
        proc = subprocess.run(
            docs_command(build, as_of_date), cwd=DBT_DIR, env=env, capture_output=True, text=True, check=False
        )
        static = build / "static_index.html"
        if proc.returncode != 0 or not static.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-OUTPUT_TAIL_LINES:])
            raise DocsError(f"dbt docs generate failed (exit {proc.returncode}) in {DBT_DIR}:\n{tail}")
        tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            shutil.copyfile(static, tmp)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    log.info("dbt docs site written to %s", output)
    return output
