"""`crm-warehouse bench`: the pipeline on generated data; a table per stage and the full JSON report.

The work is done by `dagster_project.bench.pipeline.run_benchmark`; this module parses options,
shows progress and prints. With `--json -` the JSON alone goes to stdout and everything else to
stderr, so the output can be piped.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from .. import settings
from ..bench.pipeline import STAGES, BenchConfig, run_benchmark
from ..bench.scratch import ScratchError


def _parse_stages(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown or not names:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing'} is not a stage; give a comma-separated list of {','.join(STAGES)}"
        )
    return tuple(s for s in STAGES if s in names)  # always in pipeline order


def _fmt(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def format_table(report: dict[str, Any]) -> list[str]:
    """The per-stage table: stage lines, then their measurements indented."""
    header = (
        f"{'stage / measurement':<50}{'seconds':>10}{'CPU s':>9}{'rows':>14}{'rows/s':>13}{'peak RSS MB':>13}  status"
    )
    lines = [header, "-" * len(header)]
    for stage in report["stages"]:
        lines.append(
            f"{stage['name']:<50}{_fmt(stage['seconds'], 1):>10}{_fmt(stage.get('cpu_s'), 1):>9}{_fmt(stage['rows']):>14}"
            f"{_fmt(stage['rows_per_s']):>13}{_fmt(stage.get('peak_rss_mb')):>13}  {stage['status']}"
        )
        for m in stage["measurements"]:
            label = f"  {m['label']}" + (f" ({m['note']})" if m.get("note") else "")
            lines.append(
                f"{label[:50]:<50}{_fmt(m['seconds'], 2):>10}{_fmt(m.get('cpu_s'), 1):>9}{_fmt(m['rows']):>14}"
                f"{_fmt(m['rows_per_s']):>13}{_fmt(m.get('peak_rss_mb')):>13}"
            )
        for load in stage["details"].get("loader", []) if stage["name"] == "ingest" else []:
            steps = load.get("batch_step_seconds") or {}
            if load["kind"] == "transactions" and steps:
                lines.append(
                    "  loader time by step, transactions: " + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
                )
        wall = stage["details"].get("ratios_ingest_over_bare") if stage["name"] == "ingest" else None
        if wall:
            lines.append("  ingest rows/s over bare rows/s: " + ", ".join(f"{k} {v:.3f}" for k, v in wall.items() if v))
        cpu = stage["details"].get("ratios_ingest_over_bare_cpu") if stage["name"] == "ingest" else None
        if cpu:
            lines.append("  same ratios on CPU seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in cpu.items() if v))
        if stage["error"]:
            lines.append(f"  error: {stage['error']}")
    if report["targets"]:
        lines += ["", f"{'target':<62}{'value':>10}  {'goal':<8}{'met':<5} measured at"]
        for t in report["targets"]:
            met = {True: "yes", False: "NO", None: "-"}[t["met"]]
            value = "-" if t["value"] is None else f"{t['value']:,.4g}"
            lines.append(f"{t['name'][:62]:<62}{value:>10}  {t['target']:<8}{met:<5} {t['measured_at']}")
    m = report["machine"]
    lines += [
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('nproc')} cores, {m.get('memory_gb')} GB; load average "
        f"{m.get('load_average_1m')} at start, {m.get('load_average_1m_at_end')} at end; "
        f"DuckDB memory_limit {m.get('duckdb_memory_limit')}",
        f"Scratch folder: {report['scratch']['path']} ({'kept' if report['scratch']['kept'] else 'removed'})",
    ]
    return lines


@click.command("bench")
@click.option("--customers", type=click.IntRange(min=10), required=True, help="Customers of the generated data.")
@click.option("--days", type=click.IntRange(min=1), required=True, help="Days of daily extracts.")
@click.option("--seed", type=click.IntRange(min=0), default=42, show_default=True, help="Generator seed.")
@click.option(
    "--stages",
    default=",".join(STAGES),
    show_default=True,
    callback=_parse_stages,
    help="Comma-separated stages to run (always in pipeline order).",
)
@click.option("--keep", is_flag=True, help="Keep the scratch folder (extracts, warehouse) afterwards.")
@click.option(
    "--json",
    "json_path",
    default=None,
    help="Where to write the JSON report: a file, or - for stdout (default: <data>/scratch/bench-<time>.json).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Scratch folder (default: a new temp folder under <data>/scratch). Re-use a kept one to skip generate.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Attempts of the ingest and of the bare DuckDB reads, taking turns (best time and highest memory count).",
)
@click.option("--clv-customers", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option(
    "--lifetimes-customers",
    type=click.IntRange(min=0),
    default=100_000,
    show_default=True,
    help="Customers for the lifetimes comparison (0: skip; needs `uv sync --group bench`).",
)
@click.option("--churn-train-rows", type=click.IntRange(min=10_000), default=2_000_000, show_default=True)
@click.option("--churn-score-rows", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
def bench(
    customers: int,
    days: int,
    seed: int,
    stages: tuple[str, ...],
    keep: bool,
    json_path: str | None,
    workdir: Path | None,
    repeat: int,
    clv_customers: int,
    lifetimes_customers: int,
    churn_train_rows: int,
    churn_score_rows: int,
) -> None:
    """Benchmark the pipeline on generated data: time, rows, rows/s and peak memory per stage."""
    to_stdout = json_path == "-"

    def progress(message: str) -> None:
        click.echo(f"[{datetime.now():%H:%M:%S}] {message}", err=True)

    try:
        config = BenchConfig(
            customers=customers,
            days=days,
            seed=seed,
            stages=stages,
            keep=keep,
            workdir=workdir,
            repeat=repeat,
            clv_customers=clv_customers,
            lifetimes_customers=lifetimes_customers,
            churn_train_rows=churn_train_rows,
            churn_score_rows=churn_score_rows,
        )
        report = run_benchmark(config, progress)
    except (ValueError, ScratchError) as exc:
        raise click.UsageError(str(exc)) from exc

    for line in format_table(report):
        click.echo(line, err=to_stdout)
    text = json.dumps(report, indent=2, default=str)
    if to_stdout:
        click.echo(text)
        click.echo("JSON report written to stdout", err=True)
    else:
        path = (
            Path(json_path)
            if json_path
            else settings.data_dir() / "scratch" / f"bench-{datetime.now():%Y%m%d-%H%M%S}.json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        click.echo(f"JSON report written to {path.resolve()}")
    if not report["success"]:
        failed = [s["name"] for s in report["stages"] if s["status"] == "failed"]
        click.echo(f"Benchmark FAILED at stage {', '.join(failed)}", err=True)
        sys.exit(1)
