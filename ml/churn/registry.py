"""The churn model registry: one folder per trained version plus a champion pointer.

    <models_dir>/churn/
      champion.json                  {"version": ..., "promoted_at": ..., "auc": ..., ...}
      promotions.jsonl               one line per promotion decision (audit trail)
      <version>/                     version = <UTC yyyymmddThhmmssZ>-<8 hex of data fingerprint>
        model.joblib                 the fitted ChurnModel (both calibrated sklearn pipelines)
        model_card.json              window, label definition, features, metrics, champion, ...
        metrics.json  gains.png  calibration.csv  factors.csv  coefficients.csv

Versions sort by time as plain strings. A version folder is written under a temporary name
and renamed into place, and champion.json is replaced atomically, so a reader never sees a
half-written model. model.joblib is a pickle: load only registries you wrote yourself.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib

from ml.churn.models import ChurnModel
from ml.churn.training import TrainingResult, jsonable, write_report

log = logging.getLogger(__name__)

REGISTRY_NAME = "churn"
MODEL_FILE = "model.joblib"
CARD_FILE = "model_card.json"
CHAMPION_FILE = "champion.json"
HISTORY_FILE = "promotions.jsonl"
DEFAULT_AUC_FLOOR = 0.65
DEFAULT_MAX_AUC_DROP = 0.02


def registry_dir(models_dir: Path) -> Path:
    return Path(models_dir) / REGISTRY_NAME


def make_version(created_at: datetime, fingerprint: str) -> str:
    return f"{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{fingerprint[:8]}"


def code_version() -> str:
    """The git commit of this checkout ("+dirty" when it has local changes), else the package version."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if commit.returncode == 0 and commit.stdout.strip():
            status = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            dirty = "+dirty" if status.returncode == 0 and status.stdout.strip() else ""
            return f"git:{commit.stdout.strip()}{dirty}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"crm-warehouse {importlib.metadata.version('crm-warehouse')}"
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(jsonable(data), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def model_card(
    result: TrainingResult, version: str, created_at: datetime, files: dict[str, str]
) -> dict[str, Any]:
    report = result.report
    assert result.model is not None
    return {
        "model": "churn",
        "version": version,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "data_fingerprint": result.fingerprint,
        "training_window": result.extra.get("training_window", report["validation"]),
        "label_definition": result.label.to_dict() if result.label else None,
        "features": report["features"],
        "champion": {
            "name": report["model"],
            "reason": report["champion_reason"],
            "auc": report["auc"],
            "threshold": result.model.threshold,
            "threshold_rule": report["threshold_rule"],
        },
        "metrics": report["candidates"],
        "rows": report["rows"],
        "class_balance": report["class_balance"],
        "training": result.model.info,
        "config": report["config"],
        "files": {"model": MODEL_FILE, **files},
    }


def register(
    result: TrainingResult, models_dir: Path, *, created_at: datetime | None = None
) -> Path:
    """Write a trained result as a new version folder; returns that folder.

    Registering does not make the version champion: call `promote`.
    """
    if result.model is None:
        raise ValueError(
            "this result has no single fitted model (k-fold evaluation); "
            "register the result of train_from_snapshots"
        )
    created_at = created_at or datetime.now(UTC)
    version = make_version(created_at, result.fingerprint)
    root = registry_dir(models_dir)
    final = root / version
    if final.exists():
        raise FileExistsError(
            f"{final} already exists: same data registered in the same second"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        result.model.version = version
        joblib.dump(result.model, staging / MODEL_FILE)
        files = write_report(result, staging)
        card = model_card(result, version, created_at, files)
        (staging / CARD_FILE).write_text(json.dumps(jsonable(card), indent=2) + "\n")
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info(
        "registered churn model %s (%s, AUC %.4f)",
        version,
        card["champion"]["name"],
        card["champion"]["auc"],
    )
    return final


def list_versions(models_dir: Path) -> list[str]:
    """Registered versions, oldest first."""
    root = registry_dir(models_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).exists()
    )


def read_card(models_dir: Path, version: str) -> dict[str, Any]:
    path = registry_dir(models_dir) / version / CARD_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no churn model version {version!r} under {registry_dir(models_dir)}"
        )
    return json.loads(path.read_text())


def load_version(models_dir: Path, version: str) -> ChurnModel:
    path = registry_dir(models_dir) / version / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no churn model version {version!r} under {registry_dir(models_dir)}"
        )
    model = joblib.load(path)
    if not isinstance(model, ChurnModel):
        raise TypeError(f"{path} does not hold a ChurnModel")
    model.version = version
    return model


def champion_pointer(models_dir: Path) -> dict[str, Any] | None:
    path = registry_dir(models_dir) / CHAMPION_FILE
    return json.loads(path.read_text()) if path.exists() else None


def load_champion(models_dir: Path) -> ChurnModel:
    """The champion model named by champion.json."""
    pointer = champion_pointer(models_dir)
    if pointer is None:
        raise FileNotFoundError(
            f"no champion churn model under {registry_dir(models_dir)}: train, register and "
            "promote a model first"
        )
    return load_version(models_dir, pointer["version"])


def promotion_decision(
    candidate_auc: float,
    champion_auc: float | None,
    floor: float = DEFAULT_AUC_FLOOR,
    max_drop: float = DEFAULT_MAX_AUC_DROP,
) -> tuple[bool, str]:
    """Whether a candidate may replace the champion: (ok, reason).

    Refused when its validation AUC is missing or below `floor`, or more than `max_drop`
    below the current champion's. Without a champion, clearing the floor is enough.
    """
    if candidate_auc is None or math.isnan(candidate_auc):
        return False, "candidate has no validation AUC"
    if candidate_auc < floor:
        return (
            False,
            f"candidate AUC {candidate_auc:.4f} is below the floor {floor:.2f}",
        )
    if champion_auc is None:
        return (
            True,
            f"no champion yet; candidate AUC {candidate_auc:.4f} clears the floor {floor:.2f}",
        )
    if candidate_auc < champion_auc - max_drop:
        return False, (
            f"candidate AUC {candidate_auc:.4f} is more than {max_drop:.2f} below the "
            f"champion's {champion_auc:.4f}"
        )
    return True, (
        f"candidate AUC {candidate_auc:.4f} clears the floor {floor:.2f} and is within "
        f"{max_drop:.2f} of (or above) the champion's {champion_auc:.4f}"
    )


@dataclass(frozen=True)
class PromotionResult:
    promoted: bool
    reason: str
    version: str
    previous: str | None


def promote(
    models_dir: Path,
    version: str,
    *,
    floor: float = DEFAULT_AUC_FLOOR,
    max_drop: float = DEFAULT_MAX_AUC_DROP,
    force: bool = False,
) -> PromotionResult:
    """Make `version` the champion if the promotion gate allows it (or `force`)."""
    card = read_card(models_dir, version)
    pointer = champion_pointer(models_dir)
    previous = pointer["version"] if pointer else None
    if previous == version:
        return PromotionResult(True, "already the champion", version, previous)
    champion_auc = (
        read_card(models_dir, previous)["champion"]["auc"] if previous else None
    )
    ok, reason = promotion_decision(
        card["champion"]["auc"], champion_auc, floor, max_drop
    )
    if force and not ok:
        ok, reason = True, f"forced: {reason}"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if ok:
        _write_json_atomic(
            registry_dir(models_dir) / CHAMPION_FILE,
            {
                "version": version,
                "promoted_at": now,
                "auc": card["champion"]["auc"],
                "model": card["champion"]["name"],
                "previous": previous,
                "reason": reason,
            },
        )
    entry = {
        "at": now,
        "version": version,
        "promoted": ok,
        "previous": previous,
        "reason": reason,
    }
    with open(registry_dir(models_dir) / HISTORY_FILE, "a") as handle:
        handle.write(json.dumps(jsonable(entry)) + "\n")
    log.info(
        "promotion of churn model %s: %s (%s)",
        version,
        "accepted" if ok else "refused",
        reason,
    )
    return PromotionResult(ok, reason, version, previous)
