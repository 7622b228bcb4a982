"""`crm-warehouse churn`: churn model tools that work outside the nightly pipeline."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
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


# --------------------------------------------------------------------------------------------
# `churn oracle`: the champion against the demo generator's ground truth
# --------------------------------------------------------------------------------------------

TRUTH_FILE = "churn_truth_snapshots.csv"
TRUTH_HORIZON_DAYS = 90
ORACLE_TARGET_RATIO = 0.90


def oracle_evaluation(truth_dir: Path, models_dir: Path) -> dict[str, Any]:
    """Compare the champion with the generator's p_label_90d on the champion's validation rows.

    The rows are the customers of the champion's validation snapshot that the truth file also
    lists (it lists customers active in the simulation, so customers who already churned silently
    are left out); the labels are the realized ones the champion was validated on. Returns the
    numbers and records them in the champion's model_card.json under evaluation.oracle.
    """
    import duckdb
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from ml.churn.registry import (
        CARD_FILE,
        _write_json_atomic,
        champion_pointer,
        read_card,
        registry_dir,
    )

    truth_file = truth_dir / TRUTH_FILE
    if not truth_file.exists():
        raise ValueError(f"{truth_file} not found; --truth must be the ground-truth folder of `crm-warehouse demo-data`")
    pointer = champion_pointer(models_dir)
    if pointer is None:
        raise ValueError(f"no champion churn model under {registry_dir(models_dir)}; train one first")
    version = pointer["version"]
    card = read_card(models_dir, version)
    label = card.get("label_definition") or {}
    horizon = int(label.get("horizon_days", 0))
    if horizon != TRUTH_HORIZON_DAYS or "no consumption" not in str(label.get("description", "")):
        raise ValueError(
            f"champion {version} was trained on another label ({label.get('description')!r}, {horizon} days); "
            f"the truth's p_label_90d is the probability of the standard label (closed, or no consumption "
            f"transaction, within {TRUTH_HORIZON_DAYS} days)"
        )
    file_name = card.get("files", {}).get("validation_predictions")
    if not file_name:
        raise ValueError(
            f"champion {version} has no validation predictions file (registered before they were saved); "
            "train a new model (job churn_training)"
        )
    version_dir = registry_dir(models_dir) / version
    predictions = pd.read_csv(version_dir / file_name, dtype={"customer_id": "string", "snapshot_date": "string"})
    snapshot = card["training_window"]["validation_snapshot"]
    label_column = label.get("column", "churned")
    champion_name = card["champion"]["name"]
    truth = duckdb.execute(
        """select customer_id::varchar as customer_id, p_label_90d::double as p_label_90d,
                  realized_label_90d::varchar as realized_label_90d
           from read_csv(?, header = true, all_varchar = true)
           where snapshot_date = ?""",
        [str(truth_file), snapshot],
    ).fetch_df()
    if truth.empty:
        raise ValueError(f"{truth_file} has no rows for the champion's validation snapshot {snapshot}")
    joined = predictions.merge(truth, on="customer_id", how="inner")
    realized = joined[label_column].astype(int).to_numpy()
    if len(joined) == 0 or realized.min() == realized.max():
        raise ValueError(f"too few matching customers ({len(joined)}) with both outcomes to compute an AUC")
    truth_realized = joined["realized_label_90d"].str.lower().map({"true": 1, "false": 0})
    known = truth_realized.notna().to_numpy()
    oracle_auc = float(roc_auc_score(realized, joined["p_label_90d"]))
    candidates = {name: float(roc_auc_score(realized, joined[name])) for name in ("scorecard", "challenger")}
    champion_auc = candidates[champion_name]
    ratio = champion_auc / oracle_auc
    result = {
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "truth_file": str(truth_file),
        "version": version,
        "champion": champion_name,
        "validation_snapshot": snapshot,
        "validation_rows": len(predictions),
        "customers": len(joined),
        "not_in_truth": len(predictions) - len(joined),
        "churn_rate": float(realized.mean()),
        "label_agreement": float((realized[known] == truth_realized[known].astype(int)).mean()) if known.any() else None,
        "oracle_auc": oracle_auc,
        "champion_auc": champion_auc,
        "candidate_auc": candidates,
        "ratio": ratio,
        "target_ratio": ORACLE_TARGET_RATIO,
        "meets_target": ratio >= ORACLE_TARGET_RATIO,
    }
    card.setdefault("evaluation", {})["oracle"] = result
    _write_json_atomic(version_dir / CARD_FILE, card)
    log.info("oracle evaluation of %s: champion AUC %.4f, oracle AUC %.4f", version, champion_auc, oracle_auc)
    return {**result, "model_card": str(version_dir / CARD_FILE)}


def format_oracle(result: dict[str, Any]) -> str:
    agreement = result["label_agreement"]
    lines = [
        "Churn champion vs the demo generator's ground truth",
        f"  champion: {result['version']} ({result['champion']}), validation snapshot {result['validation_snapshot']}",
        (
            f"  customers: {result['customers']:,} of the {result['validation_rows']:,} validation rows "
            f"({result['not_in_truth']:,} not in the truth file: already churned there)"
        ),
        f"  realized churn rate: {result['churn_rate']:.1%}"
        + (f"; warehouse labels agree with the truth's realized labels on {agreement:.1%}" if agreement is not None else ""),
        "",
        f"  {'oracle AUC (p_label_90d)':32}{result['oracle_auc']:.4f}",
        f"  {'champion AUC (same customers)':32}{result['champion_auc']:.4f}",
        f"  {'ratio':32}{result['ratio']:.1%}  (target >= {result['target_ratio']:.0%}: "
        f"{'met' if result['meets_target'] else 'NOT met'})",
        "",
        f"Recorded in {result['model_card']} under evaluation.oracle",
    ]
    return "\n".join(lines)


@churn.command()
@click.option(
    "--truth",
    "truth_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Ground-truth folder written by `crm-warehouse demo-data` (holds churn_truth_snapshots.csv).",
)
@click.option(
    "--models-dir",
    "models_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model registry root (default: CRM_MODELS_DIR).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def oracle(truth_dir: Path, models_dir: Path | None, as_json: bool) -> None:
    """Compare the champion churn model with the demo data's ground truth (the best possible model).

    On the champion's validation customers and realized labels: the AUC of the generator's own
    churn probability (p_label_90d, the oracle) and the champion's AUC on exactly the same
    customers, and their ratio (target: at least 90%). Recorded in the champion's model card.
    Only for demo data: the pipeline itself never reads the ground truth.
    """
    from dagster_project import settings

    try:
        result = oracle_evaluation(truth_dir, models_dir or settings.models_dir())
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(format_oracle(result))
