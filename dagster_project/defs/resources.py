"""Resources shared by the asset modules: the warehouse DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from .. import settings
from ..extracts import ods

# Every asset that writes the warehouse uses this pool, so at most one writes at a time even under
# a multi-process executor (DuckDB allows one writing process per file).
WAREHOUSE_POOL = "duckdb_warehouse"


class Warehouse(dg.ConfigurableResource):
    """The build DuckDB file. `path` defaults to CRM_WAREHOUSE_PATH (read when used, not at import)."""

    path: str | None = None

    def resolved_path(self) -> Path:
        return Path(self.path) if self.path else settings.warehouse_path()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; closed on exit so dbt (a separate process) can open the file."""
        con = ods.connect(self.resolved_path(), read_only=read_only)
        try:
            if not read_only:
                ods.ensure_ods(con)
            yield con
        finally:
            con.close()
