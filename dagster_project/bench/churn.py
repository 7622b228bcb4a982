"""Churn benchmark: train on ~2M synthetic feature rows, score 1M customers in bounded memory.

`churn_benchmark()` draws `marts.churn_features`-shaped rows (`ml.churn.synthetic`, fixed seed)
with enough customers that the temporal split hands `train_rows` rows to training, then times:

- `train_from_snapshots`: both candidates, calibration, validation, factor table (target: under
  5 minutes for 2M training rows). The scorecard fits on every fitting row; the boosting
  challenger on a random `TrainConfig.challenger_max_rows` (500k) of them, which is the
  documented subsample; calibration uses the 20% calibration hold-out;
- `register` + `promote` into a temporary registry, and `load_champion`;
- `score_batches` over `score_rows` as-of rows generated chunk by chunk, as a DuckDB
  `to_arrow_reader` loop would feed it, with the peak memory growth above the RSS before
  scoring: it stays bounded by the chunk size rather than the customer count (time includes
  generating the rows);
- `score` of `score_rows` rows held in memory (target: under 60 s for 1M); its memory growth
  includes the 1M-row result frame.

Run it with `uv run python -m dagster_project.bench.churn` (JSON on stdout).
"""

from __future__ import annotations

import gc
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ml.churn.models import TrainConfig
from ml.churn.registry import load_champion, promote, register
from ml.churn.scoring import DEFAULT_CHUNK_SIZE, score, score_batches
from ml.churn.synthetic import snapshot_dates, synthetic_churn_features
from ml.churn.training import LabelDefinition, train_from_snapshots

logger = logging.getLogger(__name__)

TRAIN_TARGET_SECONDS = 300.0
SCORE_TARGET_SECONDS = 60.0
ELIGIBLE_SHARE = 0.97  # what the synthetic generator marks eligible


def _rss_mb(field: str = "VmRSS") -> float | None:
    """Resident memory of this process from /proc (Linux); None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _training_snapshots(n_snapshots: int, as_of: str, horizon_days: int) -> int:
    dates = snapshot_dates(as_of, n_snapshots)
    horizon = pd.Timedelta(days=horizon_days)
    validation = max(d for d in dates if d + horizon <= dates[-1])
    return sum(1 for d in dates if d + horizon <= validation)


def churn_benchmark(
    train_rows: int = 2_000_000,
    score_rows: int = 1_000_000,
    *,
    snapshots: int = 18,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    seed: int = 20_250_101,
    as_of: str = "2025-12-31",
    config: TrainConfig | None = None,
) -> dict[str, Any]:
    """Generate, train, register, score; return timings (seconds), sizes and metrics."""
    label = LabelDefinition(horizon_days=90)
    n_train_snapshots = _training_snapshots(snapshots, as_of, label.horizon_days)
    customers = math.ceil(train_rows / (n_train_snapshots * ELIGIBLE_SHARE))
    out: dict[str, Any] = {"targets": {"train_seconds": TRAIN_TARGET_SECONDS,
                                       "score_seconds": SCORE_TARGET_SECONDS}}  # fmt: skip

    started = time.perf_counter()
    features = synthetic_churn_features(customers, snapshots, as_of=as_of, seed=seed)
    out["generate"] = {
        "customers": customers,
        "snapshots": snapshots,
        "rows": len(features),
        "seconds": round(time.perf_counter() - started, 2),
    }
    logger.info("generated %d feature rows for %d customers", len(features), customers)

    started = time.perf_counter()
    result = train_from_snapshots(features, label=label, config=config)
    train_seconds = time.perf_counter() - started
    assert result.model is not None
    report = result.report
    out["train"] = {
        "seconds": round(train_seconds, 2),
        "input_rows": report["rows"]["input"],
        "train_rows": report["rows"]["train"],
        "fit_rows": report["rows"]["fit"],
        "calibration_rows": report["rows"]["calibration"],
        "validation_rows": report["rows"]["validation"],
        "challenger_rows": result.model.info["challenger_rows"],
        "challenger_iterations": result.model.info["challenger_iterations"],
        "fit_seconds": result.model.info["fit_seconds"],
        "champion": report["model"],
        "auc": {name: round(m["auc"], 4) for name, m in report["candidates"].items()},
        "lift_top20": round(report["lift_top20"], 3),
        "peak_rss_mb": _rss_mb("VmHWM"),
    }
    del features
    gc.collect()

    with tempfile.TemporaryDirectory(prefix="churn-bench-") as models_dir:
        started = time.perf_counter()
        version_dir = register(result, Path(models_dir))
        promotion = promote(Path(models_dir), version_dir.name)
        model = load_champion(Path(models_dir))
        out["register"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "promoted": promotion.promoted,
            "model_file_mb": round(
                (version_dir / "model.joblib").stat().st_size / 2**20, 2
            ),
        }
    del result
    gc.collect()

    def batches() -> Iterator[pd.DataFrame]:
        for number, start in enumerate(range(0, score_rows, chunk_size)):
            size = min(chunk_size, score_rows - start)
            yield synthetic_churn_features(
                size, 1, as_of=as_of, seed=seed + 100 + number, id_offset=start
            )

    baseline = _rss_mb()
    can_reset = _reset_peak_rss()
    started = time.perf_counter()
    streamed = 0
    for part in score_batches(batches(), model):
        streamed += len(part)
    out["score_streamed"] = {
        "rows": streamed,
        "seconds_including_generation": round(time.perf_counter() - started, 2),
        "peak_rss_growth_mb": round(_rss_mb("VmHWM") - baseline, 1)
        if can_reset
        else None,
    }
    gc.collect()

    current = synthetic_churn_features(score_rows, 1, as_of=as_of, seed=seed + 1)
    baseline = _rss_mb()
    can_reset = _reset_peak_rss()
    started = time.perf_counter()
    scored = score(current, model, chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    out["score"] = {
        "rows": len(scored),
        "seconds": round(seconds, 2),
        "rows_per_second": round(len(scored) / seconds),
        "chunk_size": chunk_size,
        "risk_bands": scored["risk_band"].value_counts().to_dict(),
        "rows_with_a_reason": int(scored["reason_1"].notna().sum()),
        "peak_rss_growth_mb": round(_rss_mb("VmHWM") - baseline, 1)
        if can_reset
        else None,
        "example": scored.iloc[0].to_dict(),
    }
    del current, scored
    gc.collect()

    out["passed"] = {
        "train_under_target": train_seconds < TRAIN_TARGET_SECONDS,
        "score_under_target": seconds < SCORE_TARGET_SECONDS,
    }
    return out


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=2_000_000)
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--threads", type=int, default=1, help="native threads (0: all cores)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    numbers = churn_benchmark(
        args.train_rows,
        args.score_rows,
        config=TrainConfig(threads=args.threads or None),
    )
    print(json.dumps(numbers, indent=2, default=str))
