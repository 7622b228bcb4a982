"""Resources shared by the asset modules: the warehouse DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from .. import settings
from ..extracts import ods
from ..extracts.spec import SOURCE_KINDS

# Every asset that writes the warehouse uses this pool, so at most one writes at a time even under
# a multi-process executor (DuckDB allows one writing process per file).
WAREHOUSE_POOL = "duckdb_warehouse"


class RunSettings(dg.ConfigurableResource):
    """Settings of one run that every asset reads: the night it stands for.

    `crm-warehouse run --as-of` and the schedule set them through run config
    (`resources: {run_settings: {config: {...}}}`).
    """

    as_of_date: str | None = None
    """The night of this date (YYYY-MM-DD): extracts dated up to it, every metric as of it.
    Default: every new extract, as of the latest extract date loaded."""
    full_refresh: bool = False
    """Rebuild incremental dbt models from scratch."""

    def through_date(self) -> date | None:
        return date.fromisoformat(self.as_of_date) if self.as_of_date else None

    def resolve_as_of(self, warehouse: Warehouse) -> date | None:
        """The configured as-of date, else the newest extract date among loaded source files."""
        if self.as_of_date:
            return date.fromisoformat(self.as_of_date)
        if not warehouse.resolved_path().exists():
            return None
        kinds = ", ".join(f"'{k}'" for k in SOURCE_KINDS)
        with warehouse.connect(read_only=True) as con:
            row = con.execute(
                f"select max(extract_date) from ods.load_log where status = 'loaded' and kind in ({kinds})"
            ).fetchall()
        return row[0][0] if row else None


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
