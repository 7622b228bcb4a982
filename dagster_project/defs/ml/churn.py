"""Churn model assets: weekly training behind a promotion gate, nightly scoring with reasons.

    marts/churn_features (dbt) --> ml/churn_model ------------> marts/customer_churn_scores
                                   train, register, promote     score the as-of rows with the champion
                                   job churn_training (weekly)  nightly job

Training runs weekly (`churn_training_schedule`: CRM_CHURN_TRAINING_CRON, default Sunday 03:00, in
CRM_SCHEDULE_TZ, default Asia/Shanghai) and on demand (launch the `churn_training` job, or
materialize ml/churn_model). The nightly job leaves ml/churn_model out (`nightly_selection()`), so
a night never replaces the model. Instead, `customer_churn_scores` trains once when the registry
has no champion yet (the first night): the same code path and promotion gate as the weekly job,
recorded as a materialization of ml/churn_model. If even that yields no champion (too little
labelled history, or the model fails the gate), the night writes an empty score table and the
completeness check warns; the next night tries again.

The learning lives in `ml.churn`; this module only reads the mart, calls it and writes the result.
"""

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa

from ml.churn import LabelDefinition, RiskBands, score_batches, train_register_promote, warehouse_spec
from ml.churn.features import ELIGIBLE_COLUMN, ID_COLUMN, LABEL_COLUMN, SNAPSHOT_COLUMN
from ml.churn.registry import (
    CARD_FILE,
    DEFAULT_AUC_FLOOR,
    DEFAULT_MAX_AUC_DROP,
    HISTORY_FILE,
    champion_pointer,
    load_version,
    read_card,
    registry_dir,
)
from ml.churn.workflow import TrainingOutcome

from ... import settings
from ..ops.schedules import env_schedule
from ..resources import WAREHOUSE_POOL, Warehouse

CHURN_FEATURES_KEY = dg.AssetKey(["marts", "churn_features"])
CHURN_MODEL_KEY = dg.AssetKey(["ml", "churn_model"])
CHURN_SCORES_KEY = dg.AssetKey(["marts", "customer_churn_scores"])
FEATURES_TABLE = "marts.churn_features"
SCORES_TABLE = "marts.customer_churn_scores"
TRAINING_JOB = "churn_training"
DEFAULT_TRAINING_CRON = "0 3 * * 0"  # Sunday 03:00, an hour after the nightly run
RISK_BANDS = ("high", "medium", "low")
SCORE_COLUMNS = (
    "customer_id",
    "as_of_date",
    "churn_probability",
    "risk_band",
    "reason_1",
    "reason_2",
    "reason_3",
    "model_version",
)


# --------------------------------------------------------------------------------------------
# Reading the mart, writing the scores (plain functions: tested against a real DuckDB file)
# --------------------------------------------------------------------------------------------


def _feature_columns() -> list[str]:
    return [ID_COLUMN, SNAPSHOT_COLUMN, ELIGIBLE_COLUMN, LABEL_COLUMN, *warehouse_spec().features]


def read_label_definition(con: duckdb.DuckDBPyConnection) -> LabelDefinition:
    """The label the mart was built with (window and rule from the dbt vars of that build)."""
    rows = con.execute(f"select distinct label_window_days, label_definition from {FEATURES_TABLE}").fetchall()
    if not rows:
        raise ValueError(f"{FEATURES_TABLE} is empty: build it (dbt) before training")
    if len(rows) > 1:
        raise ValueError(f"{FEATURES_TABLE} mixes label definitions {rows}; rebuild it with one set of churn vars")
    window, text = rows[0]
    return LabelDefinition(column=LABEL_COLUMN, horizon_days=int(window), description=str(text))


DEFAULT_MAX_TRAINING_ROWS = 2_000_000
"""At most this many labelled rows are read for training (memory: about 1 GB per million rows in
pandas and the model fits); above it, a deterministic sample of customers is read."""


def training_sample_fraction(labelled_rows: int, max_rows: int) -> float:
    """The share of customers to read so that about `max_rows` labelled rows remain (1.0: all)."""
    if max_rows <= 0:
        raise ValueError(f"max_training_rows must be positive, got {max_rows}")
    return 1.0 if labelled_rows <= max_rows else max_rows / labelled_rows


def read_training_rows(con: duckdb.DuckDBPyConnection, sample_fraction: float = 1.0) -> pd.DataFrame:
    """The labelled, eligible rows of the mart, in a stable order (the data fingerprint depends on it).

    With `sample_fraction` < 1, only customers whose md5(customer_id) falls in that share are read,
    with all their snapshots: the same customers every time for the same data, and every snapshot
    (the temporal validation's latest one included) sampled alike.
    """
    columns = ", ".join(_feature_columns())
    sample = ""
    if sample_fraction < 1.0:
        threshold = int(sample_fraction * 2**32)
        sample = f"and ('0x' || substr(md5({ID_COLUMN}), 1, 8))::ubigint < {threshold}"
    return con.execute(
        f"""select {columns} from {FEATURES_TABLE}
            where is_eligible and churned is not null and not is_scoring_snapshot {sample}
            order by snapshot_date, customer_id"""
    ).fetch_df()


def feature_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row counts of the mart by role, for the training metadata."""
    [(total, snapshots, eligible, labelled, scoring)] = con.execute(
        f"""select count(*), count(distinct snapshot_date),
                   count(*) filter (where is_eligible),
                   count(*) filter (where is_eligible and churned is not null),
                   count(*) filter (where is_eligible and is_scoring_snapshot)
            from {FEATURES_TABLE}"""
    ).fetchall()
    return {
        "feature_rows": total,
        "snapshots": snapshots,
        "eligible_rows": eligible,
        "labelled_rows": labelled,
        "scoring_rows": scoring,
    }


def scoring_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    return con.execute(f"select max(snapshot_date) from {FEATURES_TABLE} where is_scoring_snapshot").fetchall()[0][0]


def scoring_reader(con: duckdb.DuckDBPyConnection, chunk_size: int) -> pa.RecordBatchReader:
    """The eligible rows of the scoring snapshot as Arrow batches of `chunk_size` rows."""
    columns = ", ".join([ID_COLUMN, *warehouse_spec().features])
    query = f"""select {columns} from {FEATURES_TABLE}
                where is_scoring_snapshot and is_eligible order by customer_id"""
    return con.sql(query).to_arrow_reader(chunk_size)


def write_scores(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame, as_of: date | None) -> int:
    """Replace marts.customer_churn_scores with `scores` (one statement); returns the row count."""
    frame = scores.reindex(columns=list(SCORE_COLUMNS)).assign(as_of_date=as_of)
    con.execute("create schema if not exists marts")
    con.register("churn_scores_frame", frame)
    try:
        con.execute(
            f"""create or replace table {SCORES_TABLE} as
                select customer_id::varchar as customer_id,
                       as_of_date::date as as_of_date,
                       churn_probability::double as churn_probability,
                       risk_band::varchar as risk_band,
                       reason_1::varchar as reason_1,
                       reason_2::varchar as reason_2,
                       reason_3::varchar as reason_3,
                       model_version::varchar as model_version
                from churn_scores_frame
                order by customer_id"""
        )
    finally:
        con.unregister("churn_scores_frame")
    return int(con.execute(f"select count(*) from {SCORES_TABLE}").fetchall()[0][0])


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


class ChurnTrainingConfig(dg.Config):
    auc_floor: float = DEFAULT_AUC_FLOOR
    """A new model becomes champion only if its validation AUC is at least this..."""
    max_auc_drop: float = DEFAULT_MAX_AUC_DROP
    """...and at most this much below the current champion's."""
    max_training_rows: int = DEFAULT_MAX_TRAINING_ROWS
    """Above this many labelled rows, train on a deterministic sample of customers (bounded memory)."""


def _float(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(value)) if value is not None else dg.MetadataValue.null()


def _md_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_from_warehouse(
    warehouse: Warehouse,
    models_dir: Path,
    auc_floor: float,
    max_auc_drop: float,
    max_training_rows: int = DEFAULT_MAX_TRAINING_ROWS,
) -> tuple[TrainingOutcome, dict[str, Any]]:
    """Train on the mart, register the version, apply the promotion gate; returns the outcome and metadata."""
    with warehouse.connect(read_only=True) as con:
        label = read_label_definition(con)
        counts = feature_counts(con)
        fraction = training_sample_fraction(counts["labelled_rows"], max_training_rows)
        frame = read_training_rows(con, fraction)
    before = champion_pointer(models_dir)
    outcome = train_register_promote(frame, models_dir, label=label, floor=auc_floor, max_drop=max_auc_drop)
    meta = training_metadata(outcome, counts, before, auc_floor, max_auc_drop, models_dir)
    meta["max_training_rows"] = max_training_rows
    meta["customer_sample_fraction"] = _float(fraction)
    meta["training_rows_read"] = dg.MetadataValue.int(len(frame))
    return outcome, meta


def training_metadata(
    outcome: TrainingOutcome,
    counts: dict[str, int],
    before: dict[str, Any] | None,
    auc_floor: float,
    max_auc_drop: float,
    models_dir: Path,
) -> dict[str, Any]:
    report = outcome.result.report
    after = champion_pointer(models_dir)
    window = report["validation"]
    files = read_card(models_dir, outcome.version)["files"]
    meta: dict[str, Any] = {
        **{key: value for key, value in outcome.metadata().items() if key != "model_dir"},
        "previous_champion": before["version"] if before else "none",
        "previous_champion_auc": _float(before["auc"] if before else None),
        "champion_version": after["version"] if after else "none",
        "auc_floor": auc_floor,
        "max_auc_drop": max_auc_drop,
        "first_training_snapshot": window["first_training_snapshot"],
        "last_training_snapshot": window["last_training_snapshot"],
        "label_horizon_days": window["label_horizon_days"],
        "label_definition": outcome.result.label.description if outcome.result.label else "",
        "churn_rate_validation": report["class_balance"]["validation"]["churn_rate"],
        "labelled_unused_rows": report["rows"]["labelled_unused"],
        **{key: dg.MetadataValue.int(int(value)) for key, value in counts.items()},
        "model_dir": dg.MetadataValue.path(str(outcome.version_dir)),
        "model_card": dg.MetadataValue.path(str(outcome.version_dir / CARD_FILE)),
        **{f"report_{name}": dg.MetadataValue.path(str(outcome.version_dir / file)) for name, file in files.items()},
        "candidates": dg.MetadataValue.md(
            _md_table(
                [{"candidate": name, **values} for name, values in report["candidates"].items()],
                ["candidate", "auc", "accuracy", "sensitivity", "specificity", "brier", "lift_top20"],
            )
        ),
        "top_factors": dg.MetadataValue.md(
            _md_table(report["top_factors"], ["rank", "feature", "information_gain_bits", "p_value"])
        ),
    }
    return meta


@dg.asset(
    key=CHURN_MODEL_KEY,
    deps=[CHURN_FEATURES_KEY],
    group_name="ml",
    kinds={"python", "scikitlearn"},
    description=(
        "Trains the churn scorecard and challenger on the labelled, eligible rows of marts.churn_features "
        "(temporal validation on the latest labelled snapshot), registers the version under "
        "CRM_MODELS_DIR/churn and promotes it if the gate allows (check churn_model_promotion_gate). "
        "Weekly (job churn_training) and on demand; not part of the nightly job."
    ),
)
def churn_model(
    context: dg.AssetExecutionContext, warehouse: Warehouse, config: ChurnTrainingConfig
) -> dg.MaterializeResult:
    outcome, meta = train_from_warehouse(
        warehouse, settings.models_dir(), config.auc_floor, config.max_auc_drop, config.max_training_rows
    )
    context.log.info(
        f"churn model {outcome.version}: {outcome.result.champion} AUC {outcome.result.report['auc']:.4f}; "
        f"promotion {'accepted' if outcome.promotion.promoted else 'refused'} ({outcome.promotion.reason})"
    )
    return dg.MaterializeResult(metadata=meta)


def promotion_record(models_dir: Path, version: str) -> dict[str, Any] | None:
    """The latest line of promotions.jsonl about `version` (the gate's decision), if any."""
    path = registry_dir(models_dir) / HISTORY_FILE
    if not path.exists():
        return None
    found = None
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry.get("version") == version:
                found = entry
    return found


def gate_result(models_dir: Path, version: str | None) -> dg.AssetCheckResult:
    """Passed when the registry's decision about `version` was to promote it and it is the champion."""
    if version is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no churn_model materialization to check"})
    record = promotion_record(models_dir, version)
    pointer = champion_pointer(models_dir)
    champion = pointer["version"] if pointer else None
    card = read_card(models_dir, version)
    promoted = bool(record and record["promoted"]) and champion == version
    previous_auc = (
        read_card(models_dir, record["previous"])["champion"]["auc"] if record and record["previous"] else None
    )
    return dg.AssetCheckResult(
        passed=promoted,
        description=(record or {}).get("reason", f"no promotion decision recorded for {version}"),
        metadata={
            "candidate_version": version,
            "candidate_auc": _float(card["champion"]["auc"]),
            "previous_champion": (record or {}).get("previous") or "none",
            "previous_champion_auc": _float(previous_auc),
            "champion_now": champion or "none",
            "decision": (record or {}).get("reason", "none"),
        },
    )


@dg.asset_check(
    asset=CHURN_MODEL_KEY,
    name="churn_model_promotion_gate",
    blocking=True,
    description=(
        "The new version became champion: its validation AUC clears the floor (auc_floor, default 0.65) and "
        "is at most max_auc_drop (0.02) below the previous champion's. Fails when the registry refused it "
        "(the previous champion stays)."
    ),
)
def churn_model_promotion_gate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(CHURN_MODEL_KEY)
    version = None
    if event is not None and event.asset_materialization is not None:
        value = event.asset_materialization.metadata.get("version")
        version = str(value.value) if value is not None else None
    return gate_result(settings.models_dir(), version)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


class ChurnScoringConfig(dg.Config):
    high_risk: float = 0.5
    """churn_probability at or above this is risk band high..."""
    medium_risk: float = 0.2
    """...at or above this medium, else low."""
    chunk_size: int = 100_000
    """Rows scored per batch (memory is bounded by it)."""
    train_if_no_champion: bool = True
    """With no champion in the registry (the first night), train one first."""


def _bootstrap(context: dg.AssetExecutionContext, warehouse: Warehouse, models_dir: Path) -> str:
    """Train the first model (no champion yet); returns what happened, in words."""
    context.log.info("no churn champion yet: training the first model (the nightly job trains only this once)")
    try:
        outcome, meta = train_from_warehouse(warehouse, models_dir, DEFAULT_AUC_FLOOR, DEFAULT_MAX_AUC_DROP)
    except ValueError as exc:  # e.g. no snapshot with a complete label window yet
        context.log.warning(f"cannot train a churn model yet: {exc}")
        return f"cannot train yet: {exc}"
    context.log_event(
        dg.AssetMaterialization(
            asset_key=CHURN_MODEL_KEY,
            description="First model, trained by the nightly scoring because no champion existed.",
            metadata={**meta, "trained_by": "customer_churn_scores (no champion yet)"},
        )
    )
    verdict = "promoted" if outcome.promotion.promoted else "refused"
    return f"trained {outcome.version}: {verdict} ({outcome.promotion.reason})"


def _risk_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    bands = dict(con.execute(f"select risk_band, count(*) from {SCORES_TABLE} group by all").fetchall())
    [(mean_p, with_reason)] = con.execute(
        f"select avg(churn_probability), count(*) filter (where reason_1 is not null) from {SCORES_TABLE}"
    ).fetchall()
    top = con.execute(
        f"""select customer_id, round(churn_probability, 3) as churn_probability, risk_band, reason_1, reason_2, reason_3
            from {SCORES_TABLE} order by churn_probability desc, customer_id limit 5"""
    ).fetch_df()
    return {
        **{f"risk_{band}": dg.MetadataValue.int(int(bands.get(band, 0))) for band in RISK_BANDS},
        "mean_churn_probability": _float(mean_p),
        "rows_with_reasons": dg.MetadataValue.int(int(with_reason)),
        "riskiest": dg.MetadataValue.md(_md_table(top.to_dict(orient="records"), list(top.columns))),
    }


@dg.asset(
    key=CHURN_SCORES_KEY,
    deps=[CHURN_FEATURES_KEY, CHURN_MODEL_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    kinds={"python", "duckdb"},
    description=(
        "One row per eligible customer on the as-of date: churn probability from the champion churn model, "
        "risk band (high/medium/low), up to three plain-language reasons, model version. Nightly; trains the "
        "first model when the registry has no champion yet."
    ),
)
def customer_churn_scores(
    context: dg.AssetExecutionContext, warehouse: Warehouse, config: ChurnScoringConfig
) -> dg.MaterializeResult:
    models_dir = settings.models_dir()
    bootstrap = None
    if champion_pointer(models_dir) is None and config.train_if_no_champion:
        bootstrap = _bootstrap(context, warehouse, models_dir)
    pointer = champion_pointer(models_dir)
    bands = RiskBands(high=config.high_risk, medium=config.medium_risk)
    with warehouse.connect() as con:
        as_of = scoring_as_of(con)
        if pointer is None:
            context.log.warning(f"no churn champion under {registry_dir(models_dir)}: {SCORES_TABLE} left empty")
            parts: list[pd.DataFrame] = []
        else:
            model = load_version(models_dir, pointer["version"])
            parts = list(score_batches(scoring_reader(con, config.chunk_size), model, bands=bands))
        scores = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SCORE_COLUMNS))
        rows = write_scores(con, scores, as_of)
        summary = _risk_summary(con) if rows else {}
    meta: dict[str, Any] = {
        "rows": dg.MetadataValue.int(rows),
        "as_of_date": str(as_of) if as_of else "none",
        "model_version": pointer["version"] if pointer else "none",
        "champion_model": pointer["model"] if pointer else "none",
        "champion_auc": _float(pointer["auc"] if pointer else None),
        "risk_cutoffs": f"high >= {bands.high}, medium >= {bands.medium}",
        "table": SCORES_TABLE,
        **summary,
    }
    if bootstrap is not None:
        meta["first_model"] = bootstrap
    return dg.MaterializeResult(metadata=meta)


# --------------------------------------------------------------------------------------------
# Checks on the scores (one property each)
# --------------------------------------------------------------------------------------------


def _scores_check(name: str, description: str):
    return dg.asset_check(asset=CHURN_SCORES_KEY, name=name, blocking=True, description=description)


@_scores_check("customer_id_unique_and_not_null", "One row per customer: customer_id present and unique.")
def customer_id_unique_and_not_null(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        [(nulls, duplicates)] = con.execute(
            f"""select count(*) filter (where customer_id is null),
                       count(customer_id) - count(distinct customer_id) from {SCORES_TABLE}"""
        ).fetchall()
    return dg.AssetCheckResult(
        passed=nulls == 0 and duplicates == 0,
        metadata={"null_ids": dg.MetadataValue.int(int(nulls)), "duplicate_ids": dg.MetadataValue.int(int(duplicates))},
    )


@_scores_check("churn_probability_between_0_and_1", "Every churn_probability is present and within [0, 1].")
def churn_probability_between_0_and_1(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        [(bad, low, high)] = con.execute(
            f"""select count(*) filter (where churn_probability is null or isnan(churn_probability)
                                        or churn_probability < 0 or churn_probability > 1),
                       min(churn_probability), max(churn_probability) from {SCORES_TABLE}"""
        ).fetchall()
    return dg.AssetCheckResult(
        passed=bad == 0,
        metadata={
            "rows_out_of_range": dg.MetadataValue.int(int(bad)),
            "min": _float(low),
            "max": _float(high),
        },
    )


@_scores_check("risk_band_accepted_values", "risk_band is one of high, medium, low.")
def risk_band_accepted_values(warehouse: Warehouse) -> dg.AssetCheckResult:
    accepted = ", ".join(f"'{band}'" for band in RISK_BANDS)
    with warehouse.connect(read_only=True) as con:
        bad = con.execute(
            f"""select coalesce(risk_band, '<null>'), count(*) from {SCORES_TABLE}
                where risk_band is null or risk_band not in ({accepted}) group by all"""
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={
            "rows_with_other_values": dg.MetadataValue.int(sum(n for _, n in bad)),
            "other_values": dg.MetadataValue.md(", ".join(f"{v} ({n})" for v, n in bad) or "none"),
        },
    )


@_scores_check(
    "every_scoring_customer_scored",
    "Every eligible customer of the scoring snapshot of marts.churn_features has a score, and no one else. "
    "Warns (does not block) while there is no champion model yet.",
)
def every_scoring_customer_scored(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        [(expected, missing, extra)] = con.execute(
            f"""with scoring as (
                    select customer_id from {FEATURES_TABLE} where is_scoring_snapshot and is_eligible
                )
                select (select count(*) from scoring),
                       (select count(*) from scoring anti join {SCORES_TABLE} using (customer_id)),
                       (select count(*) from {SCORES_TABLE} anti join scoring using (customer_id))"""
        ).fetchall()
        examples = con.execute(
            f"""select customer_id from {FEATURES_TABLE} where is_scoring_snapshot and is_eligible
                and customer_id not in (select customer_id from {SCORES_TABLE}) order by 1 limit 5"""
        ).fetchall()
    no_champion = champion_pointer(settings.models_dir()) is None
    passed = missing == 0 and extra == 0
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN if no_champion else dg.AssetCheckSeverity.ERROR,
        description=("no champion churn model yet, so nobody is scored" if no_champion and not passed else None),
        metadata={
            "scoring_customers": dg.MetadataValue.int(int(expected)),
            "missing": dg.MetadataValue.int(int(missing)),
            "unexpected": dg.MetadataValue.int(int(extra)),
            "missing_examples": dg.MetadataValue.md(", ".join(r[0] for r in examples) or "none"),
        },
    )


# --------------------------------------------------------------------------------------------
# Job, schedule, exports
# --------------------------------------------------------------------------------------------


churn_training_job = dg.define_asset_job(
    name=TRAINING_JOB,
    selection=dg.AssetSelection.assets(CHURN_MODEL_KEY),
    executor_def=dg.in_process_executor,
    description="Train, register and (if the gate allows) promote a churn model from marts.churn_features.",
)


def build_training_schedule() -> dg.ScheduleDefinition:
    return env_schedule(
        name="churn_training_schedule", job=churn_training_job, cron_var="CRM_CHURN_TRAINING_CRON",
        default_cron=DEFAULT_TRAINING_CRON, what="Weekly churn training",
    )


def nightly_selection() -> dg.AssetSelection:
    """Everything except the weekly training (the nightly scoring trains only when no champion exists)."""
    return dg.AssetSelection.all() - dg.AssetSelection.assets(CHURN_MODEL_KEY)


churn_training_schedule = build_training_schedule()

churn_assets = [churn_model, customer_churn_scores]
churn_checks = [
    churn_model_promotion_gate,
    customer_id_unique_and_not_null,
    churn_probability_between_0_and_1,
    risk_band_accepted_values,
    every_scoring_customer_scored,
]
churn_jobs = [churn_training_job]
churn_schedules = [churn_training_schedule]
