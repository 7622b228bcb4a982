"""Model registry: promotion gate, register -> promote -> load round trip, refusals."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from ml.churn.registry import (
    CHAMPION_FILE,
    list_versions,
    load_champion,
    load_version,
    promote,
    promotion_decision,
    read_card,
    register,
    registry_dir,
)
from ml.churn.scoring import score
from ml.churn.synthetic import synthetic_churn_features
from ml.churn.training import TrainingResult, train_from_snapshots
from ml.churn.workflow import train_register_promote


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return synthetic_churn_features(700, 10, seed=11)


@pytest.fixture(scope="module")
def trained(features: pd.DataFrame) -> TrainingResult:
    return train_from_snapshots(features)


def _as_of_rows(features: pd.DataFrame) -> pd.DataFrame:
    return features[features["snapshot_date"] == features["snapshot_date"].max()]


@pytest.mark.parametrize(
    ("candidate", "champion", "ok", "phrase"),
    [
        (0.80, None, True, "no champion yet"),
        (0.64, None, False, "below the floor"),
        (0.70, 0.71, True, "within"),
        (0.75, 0.70, True, "within"),
        (0.685, 0.71, False, "more than 0.02 below"),
        (0.60, 0.55, False, "below the floor"),
        (float("nan"), 0.70, False, "no validation AUC"),
    ],
)
def test_promotion_decision(
    candidate: float, champion: float | None, ok: bool, phrase: str
) -> None:
    decision, reason = promotion_decision(candidate, champion)
    assert decision is ok
    assert phrase in reason


def test_promotion_floor_and_drop_are_configurable() -> None:
    assert promotion_decision(0.62, None, floor=0.6)[0] is True
    assert promotion_decision(0.66, 0.70, max_drop=0.05)[0] is True
    assert promotion_decision(0.66, 0.70)[0] is False


def test_register_promote_load_gives_identical_scores(
    tmp_path, trained, features
) -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    version_dir = register(trained, tmp_path, created_at=created)
    version = version_dir.name
    assert re.fullmatch(r"20260102T030405Z-[0-9a-f]{8}", version)
    assert version == f"20260102T030405Z-{trained.fingerprint[:8]}"
    for name in (
        "model.joblib",
        "model_card.json",
        "metrics.json",
        "gains.png",
        "calibration.csv",
        "factors.csv",
        "coefficients.csv",
    ):
        assert (version_dir / name).stat().st_size > 0, name

    card = read_card(tmp_path, version)
    assert card["data_fingerprint"] == trained.fingerprint
    assert card["champion"]["name"] == trained.report["model"]
    assert set(card["metrics"]) == {"scorecard", "challenger"}
    assert card["label_definition"]["horizon_days"] == 90
    assert (
        card["training_window"]["validation_snapshot"]
        == trained.report["validation"]["validation_snapshot"]
    )
    assert card["rows"]["train"] == trained.report["rows"]["train"]
    assert card["code_version"]
    assert card["created_at"].startswith("2026-01-02T03:04:05")

    outcome = promote(tmp_path, version)
    assert outcome.promoted and outcome.previous is None
    pointer = json.loads((registry_dir(tmp_path) / CHAMPION_FILE).read_text())
    assert pointer["version"] == version
    assert not [p for p in registry_dir(tmp_path).iterdir() if p.name.startswith(".")]

    rows = _as_of_rows(features)
    loaded = load_champion(tmp_path)
    assert loaded.version == version
    before = score(rows, trained.model)
    after = score(rows, loaded)
    pd.testing.assert_frame_equal(before, after)
    assert (after["model_version"] == version).all()


def test_a_weak_model_is_refused_and_the_champion_stays(
    tmp_path, trained, features
) -> None:
    first = register(
        trained, tmp_path, created_at=datetime(2026, 1, 1, tzinfo=UTC)
    ).name
    assert promote(tmp_path, first).promoted

    noise = features.copy()
    labelled = noise["churned"].notna()
    shuffled = np.random.default_rng(0).permutation(
        noise.loc[labelled, "churned"].to_numpy()
    )
    noise.loc[labelled, "churned"] = shuffled
    weak = train_from_snapshots(noise)
    assert weak.report["auc"] < 0.6
    second = register(weak, tmp_path, created_at=datetime(2026, 2, 1, tzinfo=UTC)).name

    outcome = promote(tmp_path, second)
    assert not outcome.promoted
    assert "below the floor" in outcome.reason
    assert load_champion(tmp_path).version == first
    assert list_versions(tmp_path) == [first, second]
    history = (registry_dir(tmp_path) / "promotions.jsonl").read_text().splitlines()
    assert [json.loads(line)["promoted"] for line in history] == [True, False]

    forced = promote(tmp_path, second, force=True)
    assert forced.promoted and forced.reason.startswith("forced")
    assert load_champion(tmp_path).version == second


def test_no_champion_and_unknown_versions_are_clear_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no champion churn model"):
        load_champion(tmp_path)
    with pytest.raises(FileNotFoundError, match="no churn model version"):
        load_version(tmp_path, "20990101T000000Z-deadbeef")


def test_registering_the_same_data_twice_in_one_second_is_refused(
    tmp_path, trained
) -> None:
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    register(trained, tmp_path, created_at=moment)
    with pytest.raises(FileExistsError):
        register(trained, tmp_path, created_at=moment)


def test_train_register_promote_in_one_call(tmp_path, features) -> None:
    outcome = train_register_promote(features, tmp_path)
    assert outcome.promotion.promoted
    assert load_champion(tmp_path).version == outcome.version
    metadata = outcome.metadata()
    assert metadata["auc"] == outcome.result.report["auc"] > 0.65
    assert metadata["model_dir"] == str(outcome.version_dir)
