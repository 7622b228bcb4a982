"""`crm-warehouse churn`: churn model tools that work outside the nightly pipeline."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import click

log = logging.getLogger(__name__)

_ROWS = (
    ("AUC", "auc", "{:.4f}"),
    ("Accuracy", "accuracy", "{:.1%}"),
    ("Sensitivity", "sensitivity", "{:.1%}"),
    ("Specificity", "specificity", "{:.1%}"),
    ("Precision", "precision", "{:.1%}"),
    ("Threshold", "threshold", "{:.3f}"),
    ("Brier score", "brier", "{:.4f}"),
    ("Capture top 10%", "capture_top10", "{:.1%}"),
    ("Lift top 10%", "lift_top10", "{:.2f}"),
    ("Capture top 20%", "capture_top20", "{:.1%}"),
    ("Lift top 20%", "lift_top20", "{:.2f}"),
)


def _fmt(template: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return template.format(value)


def format_report(
    report: dict[str, Any], calibration: dict[str, Any], source: str
) -> str:
    """The evaluation report as aligned plain text."""
    balance = report["class_balance"]["all"]
    validation = report["validation"]
    features = report["features"]
    lines = [
        f"Churn evaluation of {source}",
        (
            f"  rows: {report['rows']['evaluated']:,} labelled ({balance['churned']:,} "
            f"churned, {balance['churn_rate']:.1%}); {report['rows']['unlabelled']:,} "
            "without a label left out"
        ),
        f"  validation: {validation['method']}, {validation['folds']} folds"
        + (" (grouped by id)" if validation.get("grouped_by_id") else ""),
        (
            f"  features: {len(features['numeric'])} numeric, "
            f"{len(features['categorical'])} categorical; "
            f"log1p on {', '.join(features['log1p']) or 'none'}"
        ),
    ]
    for column, reason in features.get("dropped", {}).items():
        lines.append(f"  left out {column}: {reason}")
    lines.append(f"  threshold: {report['threshold_rule']}")
    lines.append("")
    candidates = report["candidates"]
    names = list(candidates)
    lines.append(f"{'':18}" + "".join(f"{name:>14}" for name in names))
    for title, key, template in _ROWS:
        cells = "".join(f"{_fmt(template, candidates[n].get(key)):>14}" for n in names)
        lines.append(f"{title:18}{cells}")
    stds = "".join(
        f"{'±' + _fmt('{:.4f}', candidates[n].get('auc_std')):>14}" for n in names
    )
    lines.append(f"{'AUC fold std':18}{stds}")
    lines.append("")
    lines.append(f"Champion: {report['model']} ({report['champion_reason']})")
    lines.append("")
    lines.append(f"Calibration of the {report['model']} (out-of-fold deciles):")
    lines.append(f"  {'bin':>3} {'rows':>7} {'predicted':>10} {'observed':>9}")
    for row in calibration[report["model"]]:
        lines.append(
            f"  {row['bin']:>3} {row['rows']:>7,} {row['mean_predicted']:>10.3f} "
            f"{row['observed_rate']:>9.3f}"
        )
    lines.append("")
    lines.append(
        "Key factors (univariate; information gain in bits, chi-square p-value):"
    )
    lines.append(
        f"  {'rank':>4}  {'feature':30} {'kind':12} {'gain':>8} {'p-value':>10}"
    )
    for row in report["top_factors"]:
        lines.append(
            f"  {row['rank']:>4}  {row['feature']:30} {row['kind']:12} "
            f"{row['information_gain_bits']:>8.4f} {row['p_value']:>10.2g}"
        )
    return "\n".join(lines)


@click.group()
def churn() -> None:
    """Churn model tools."""


@churn.command()
@click.option(
    "--features",
    "features_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled customer table: CSV (optionally .gz) or Parquet, one row per customer.",
)
@click.option(
    "--label",
    "label_column",
    required=True,
    help="Label column (yes/no, 1/0, true/false, churned/retained ...).",
)
@click.option(
    "--id",
    "id_column",
    default=None,
    help="Customer id column (left out of the features).",
)
@click.option(
    "--folds",
    default=5,
    show_default=True,
    type=click.IntRange(2, 20),
    help="Stratified k-fold folds.",
)
@click.option(
    "--seed",
    default=42,
    show_default=True,
    type=int,
    help="Random seed for folds and splits.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print machine-readable metrics instead of the text report.",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write metrics.json, gains.png, calibration.csv and factors.csv here.",
)
def evaluate(
    features_path: Path,
    label_column: str,
    id_column: str | None,
    folds: int,
    seed: int,
    as_json: bool,
    out_dir: Path | None,
) -> None:
    """Train and k-fold-validate the churn scorecard and challenger on any labelled table.

    Numeric and categorical columns are detected; identifiers and dates are left out. Prints
    AUC, accuracy, sensitivity, specificity, Brier score, capture and lift of both candidates
    and names the champion (best AUC; the scorecard wins ties within 0.005).
    """
    from ml.churn.features import read_table
    from ml.churn.models import TrainConfig
    from ml.churn.training import evaluate_table, jsonable, write_report

    try:
        frame = read_table(features_path)
        result = evaluate_table(
            frame,
            label_column=label_column,
            id_column=id_column,
            folds=folds,
            config=TrainConfig(seed=seed),
        )
    except ValueError as exc:
        raise click.ClickException(f"{features_path}: {exc}") from exc
    calibration = {
        name: table.to_dict(orient="records")
        for name, table in result.calibration.items()
    }
    written: dict[str, str] = {}
    if out_dir is not None:
        written = {
            k: str(out_dir / v) for k, v in write_report(result, out_dir).items()
        }
    if as_json:
        payload = {
            **result.report,
            "calibration": calibration,
            "source": str(features_path),
        }
        if written:
            payload["files"] = written
        click.echo(json.dumps(jsonable(payload), indent=2))
        return
    click.echo(
        format_report(
            jsonable(result.report), jsonable(calibration), features_path.name
        )
    )
    if written:
        click.echo("")
        click.echo(
            f"Report files in {out_dir}: "
            + ", ".join(Path(p).name for p in written.values())
        )
