"""A project home of its own for an end-to-end test module.

The end-to-end modules build a warehouse from generated demo extracts under a temporary folder:
`settings.pointed_at` makes every path setting derive from it and restores them all afterwards.
Restoring matters: the dbt asset writes CRM_WAREHOUSE_PATH into os.environ (dbt's profile reads
it), and a module that left it set made the next module load its data into the previous
module's warehouse.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from dagster_project import settings

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def project_home(root: Path) -> Iterator[Path]:
    """Data under root/data (with a copy of the repository's reference data), models under root/models."""
    with settings.pointed_at(root / "data", root / "models"):
        shutil.copytree(REPO / "data" / "reference", settings.reference_dir())
        yield root


def query(sql: str, params: list | None = None, path: Path | None = None) -> list[tuple]:
    """Rows of one query on the warehouse (or `path`), opened read-only and closed again."""
    con = duckdb.connect(str(path or settings.warehouse_path()), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
