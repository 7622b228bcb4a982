"""The retention-effectiveness report, read from the published analyst database.

The database (`settings.published_path()`) is opened read-only for each request and closed at
once, so the portal never holds a lock that would stop the nightly publish from replacing it.

`crm-warehouse publish` (defs/ops/publish.py) copies the marts into the published file's default
schema `main`, so the mart is read from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

TABLE = "retention_effectiveness"
SCHEMA = "main"  # where publish_marts puts every mart
COLUMNS = (
    "list_date",
    "team",
    "agent",
    "listed",
    "contacted",
    "reached",
    "self_reported_retained",
    "churn_rate_contacted",
    "churn_rate_control",
    "uplift",
    "uplift_ci_low",
    "uplift_ci_high",
    "window_end_date",
    "is_window_complete",
)
MAX_ROWS = 5000


@dataclass
class Report:
    status: str  # ok | missing | unavailable
    message: str = ""
    rows: list[dict[str, object]] = field(default_factory=list)
    truncated: bool = False


def load_report(published_path: Path, team: str | None) -> Report:
    """Rows of the effectiveness mart, newest list first; `team=None` means every team."""
    path = Path(published_path)
    if not path.exists():
        return Report("missing", "No report yet: the analyst database has not been published.")
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        log.warning("cannot open %s read-only: %s", path, exc)
        return Report("unavailable", "The report database is being updated; try again in a minute.")
    try:
        # Qualify with the catalog: the published file is usually `marts.duckdb`, and a bare
        # `marts.<table>` would be read as catalog.table there.
        catalog_row = conn.execute("select current_database()").fetchone()
        catalog = str(catalog_row[0]) if catalog_row else ""
        built = conn.execute(
            "select count(*) from information_schema.tables where table_catalog = ? and table_schema = ? and table_name = ?",
            [catalog, SCHEMA, TABLE],
        ).fetchall()[0][0]
        if not built:
            return Report("missing", "No report yet: the effectiveness mart has not been built.")
        quoted = '"' + catalog.replace('"', '""') + '"'
        sql = f"select {', '.join(COLUMNS)} from {quoted}.{SCHEMA}.{TABLE}"
        params: list[object] = []
        if team is not None:
            sql += " where team = ?"
            params.append(team)
        sql += " order by list_date desc, team, agent nulls first limit ?"
        params.append(MAX_ROWS + 1)
        cursor = conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    except duckdb.Error as exc:
        log.warning("cannot read %s from %s: %s", TABLE, path, exc)
        return Report("unavailable", f"The report cannot be read ({type(exc).__name__}); the mart may be changing.")
    finally:
        conn.close()
    truncated = len(rows) > MAX_ROWS
    return Report("ok", "", rows[:MAX_ROWS], truncated)
