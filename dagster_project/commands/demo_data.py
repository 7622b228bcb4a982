"""`crm-warehouse demo-data`: write realistic, deterministic demo extracts and their ground truth."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from dagster_project import settings
from dagster_project.demo import DEFAULT_END_DATE, GeneratorConfig, generate
from dagster_project.demo.config import ENCODINGS
from dagster_project.demo.generator import existing_extracts, is_up_to_date


def _parse_date(ctx: click.Context, param: click.Parameter, value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-21") from exc


def default_truth_dir(out: Path) -> Path:
    """The settings' ground-truth folder for the default inbox, otherwise `<out>/../ground_truth`."""
    if out.resolve() == settings.inbox_dir().resolve():
        return settings.ground_truth_dir()
    return out.resolve().parent / "ground_truth"


@click.command("demo-data")
@click.option(
    "--customers",
    type=click.IntRange(min=10),
    default=20_000,
    show_default=True,
    help="Customers over the whole period (about 70% exist on the first day).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=540,
    show_default=True,
    help="Number of daily files per kind, ending at --end-date.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=42,
    show_default=True,
    help="Same seed and arguments give byte-identical files.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Extract folder (default: the inbox from settings).",
)
@click.option(
    "--dirty-rate",
    type=click.FloatRange(0.0, 0.5),
    default=0.0,
    show_default=True,
    help="Probability that a data row carries a defect (recorded in <truth>/defects.csv).",
)
@click.option("--encoding", type=click.Choice(ENCODINGS), default="utf-8", show_default=True)
@click.option(
    "--end-date",
    callback=_parse_date,
    default=DEFAULT_END_DATE.isoformat(),
    show_default=True,
    help="Last day of the period (fixed default so output is reproducible).",
)
@click.option(
    "--truth-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Ground-truth folder (default: settings' ground truth for the default inbox, "
    "else <out>/../ground_truth).",
)
@click.option("--gzip", "compress", is_flag=True, help="Write .csv.gz files.")
@click.option(
    "--replace",
    is_flag=True,
    help="Delete extract files of another run in --out first (without it, such files stop the command).",
)
def demo_data(
    customers: int,
    days: int,
    seed: int,
    out: Path | None,
    dirty_rate: float,
    encoding: str,
    end_date: date,
    truth_dir: Path | None,
    compress: bool,
    replace: bool,
) -> None:
    """Generate realistic demo extracts (customers, transactions, calls, complaints) and ground truth."""
    out_dir = out if out is not None else settings.inbox_dir()
    truth = truth_dir if truth_dir is not None else default_truth_dir(out_dir)
    try:
        config = GeneratorConfig(
            out_dir=out_dir,
            truth_dir=truth,
            customers=customers,
            days=days,
            seed=seed,
            end_date=end_date,
            dirty_rate=dirty_rate,
            encoding=encoding,
            gzip=compress,
            replace_existing=replace,
        )
        if is_up_to_date(config):
            click.echo(f"{out_dir} already holds these demo extracts (same arguments); nothing to do.")
            return
        present = existing_extracts(out_dir)
        if present and not replace:
            raise click.UsageError(
                f"{out_dir} already holds {len(present):,} extract files from another run or source; "
                "pass --replace to delete them and generate anew, or choose another --out"
            )
        summary = generate(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"Wrote {summary.files:,} files ({summary.bytes_written / 1e6:,.1f} MB) to {summary.out_dir}")
    click.echo(f"Period {summary.start_date} .. {summary.end_date} ({days} days), seed {seed}")
    for kind, n in summary.rows.items():
        click.echo(f"  {kind:<13} {n:>12,} rows")
    click.echo(
        f"Customers: {summary.customers_initial:,} initial + {summary.customers_new:,} new; churned "
        f"{summary.churned_closed:,} closed + {summary.churned_silent:,} silent "
        f"(annual churn rate {summary.annual_churn_rate:.1%})"
    )
    if summary.defects:
        total = sum(summary.defects.values())
        kinds = ", ".join(f"{k} {v:,}" for k, v in summary.defects.items())
        click.echo(f"Defects: {total:,} ({kinds})")
    if summary.removed_stale_files:
        click.echo(f"Replaced {summary.removed_stale_files:,} extract files of an earlier run")
    click.echo(f"Ground truth: {summary.truth_dir}")
    click.echo(f"Done in {summary.elapsed_seconds:.1f} s")
