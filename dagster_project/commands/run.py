"""`crm-warehouse run`: the nightly job, now, in this process."""

from __future__ import annotations

import logging
import sys
import time
from datetime import date, datetime

import click

from .. import settings

# The terminal, captured before the run redirects stdout (dbt's own log lines) to the run log.
TERMINAL = sys.stdout


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _say(text: str) -> None:
    click.echo(text, file=TERMINAL)


def _progress(kind: str, name: str, info: dict) -> None:
    if kind == "step_start":
        _say(f"[{_stamp()}] > {name}")
    elif kind == "step_end":
        mark = "ok" if "error" not in info else "FAILED"
        line = f"[{_stamp()}] {mark} {name} ({info['seconds']:.1f}s)"
        if "error" in info:
            line += f": {info['error']}"
        _say(line)
    elif kind == "materialized":
        meta = info.get("metadata", {})
        if "rows_loaded" in meta:
            _say(
                f"           {name}: {meta.get('files_loaded', 0)} file(s) loaded, {meta.get('files_failed', 0)} failed, "
                f"{meta['rows_loaded']:,} rows loaded, {meta.get('rows_rejected', 0):,} rejected, "
                f"{meta.get('rows_duplicate', 0):,} duplicates"
            )
    elif kind == "check" and not info["passed"]:
        level = "warning" if info["severity"] == "WARN" else "FAILED"
        _say(f"           check {level}: {name}")


def ingest_summary(run_id: str) -> list[tuple]:
    """Per kind: files loaded/failed/duplicate and row counts for this run (empty if no warehouse)."""
    from ..extracts import ods

    path = settings.warehouse_path()
    if not path.exists():
        return []
    con = ods.connect(path, read_only=True)
    try:
        return con.execute(
            """select kind,
                      count(*) filter (where status = 'loaded'),
                      count(*) filter (where status = 'failed'),
                      count(*) filter (where status = 'duplicate_file'),
                      coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),
                      coalesce(sum(rows_rejected), 0), coalesce(sum(rows_duplicate), 0), coalesce(sum(rows_orphan), 0)
               from ods.load_log where run_id = ? group by kind order by kind""",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def failed_files(run_id: str) -> list[str]:
    from ..extracts import ods

    path = settings.warehouse_path()
    if not path.exists():
        return []
    con = ods.connect(path, read_only=True)
    try:
        return [r[0] for r in con.execute(
            "select message from ods.load_log where run_id = ? and status = 'failed' order by load_id", [run_id]
        ).fetchall()]
    finally:
        con.close()


def print_summary(outcome, elapsed: float) -> None:
    click.echo("")
    click.echo(f"Run {outcome.run_id} {'succeeded' if outcome.success else 'FAILED'} in {elapsed:.1f}s")
    rows = ingest_summary(outcome.run_id)
    if rows:
        click.echo("")
        click.echo(f"{'extract':<14}{'files':>7}{'failed':>8}{'dup.files':>10}{'read':>12}{'loaded':>12}{'rejected':>10}{'dup.rows':>10}{'orphans':>9}")
        for kind, loaded, failed, dupf, read, ok, rej, dup, orph in rows:
            click.echo(f"{kind:<14}{loaded:>7}{failed:>8}{dupf:>10}{read:>12,}{ok:>12,}{rej:>10,}{dup:>10,}{orph:>9,}")
    else:
        click.echo("No new extract files were loaded.")
    for message in failed_files(outcome.run_id):
        click.echo(f"  failed: {message}")
    if outcome.steps:
        click.echo("")
        click.echo("Time per stage:")
        checks = [s for s in outcome.steps if s.is_check]
        for step in outcome.steps:
            if not step.is_check:
                click.echo(f"  {step.name:<40}{step.seconds:>8.1f}s  {step.status}")
        if checks:
            failed = [s.name for s in checks if s.status == "failed"]
            label = f"asset checks ({len(checks)} steps)"
            click.echo(f"  {label:<40}{sum(s.seconds for s in checks):>8.1f}s  {'failed: ' + ', '.join(failed) if failed else 'ok'}")
    checks = f"{outcome.checks_passed} passed"
    if outcome.checks_warned:
        checks += f", {len(outcome.checks_warned)} warning(s): {', '.join(outcome.checks_warned)}"
    if outcome.checks_failed:
        checks += f", {len(outcome.checks_failed)} FAILED: {', '.join(outcome.checks_failed)}"
    click.echo(f"Checks: {checks}")
    if outcome.failure:
        click.echo(f"Failure: {outcome.failure}")
    click.echo("")
    click.echo("Outputs:")
    click.echo(f"  published marts for analysts (read-only): {settings.published_path()}   crm-warehouse sql")
    click.echo(f"  build warehouse (ODS + marts): {settings.warehouse_path()}")
    click.echo(f"  target lists: {settings.exports_dir() / 'target_lists'}")
    click.echo(f"  models and model cards: {settings.models_dir()}")
    for report in outcome.reports:
        click.echo(f"  data quality report: {report}")
    click.echo(f"  marts documentation: {settings.data_dir() / 'docs' / 'index.html'}   crm-warehouse docs")
    click.echo(f"  alerts: {settings.data_dir() / 'alerts' / 'alerts.log'}")
    click.echo(f"  run history (make dagster): {settings.dagster_home()}")
    if outcome.log_path:
        click.echo(f"  this run's log (dbt output): {outcome.log_path}")


@click.command("run")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Run the night of this date: load extracts dated up to it and compute every "
                   "time-relative metric as of it (default: all new extracts, as of the latest extract date).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental marts from scratch.")
def run(as_of: datetime | None, full_refresh: bool) -> None:
    """Run the nightly job once, in this process: extracts -> ODS -> marts -> scores -> target lists."""
    from ..runner import run_nightly

    as_of_date: date | None = as_of.date() if as_of else None
    for name in ("dagster", "dagster.builtin"):
        logging.getLogger(name).setLevel(logging.WARNING)
    click.echo(f"Inbox: {settings.inbox_dir()}")
    click.echo(f"Warehouse: {settings.warehouse_path()}")
    log_path = settings.data_dir() / "logs" / f"nightly-{datetime.now():%Y%m%d-%H%M%S}.log"
    t0 = time.perf_counter()
    outcome = run_nightly(as_of_date=as_of_date, full_refresh=full_refresh, on_event=_progress, log_path=log_path)
    print_summary(outcome, time.perf_counter() - t0)
    sys.exit(0 if outcome.success else 1)
