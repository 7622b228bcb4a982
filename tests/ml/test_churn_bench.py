"""The churn benchmark runs end to end at a small size and reports what it promises."""

from __future__ import annotations

import re

from dagster_project.bench.churn import churn_benchmark


def test_churn_benchmark_small_run() -> None:
    numbers = churn_benchmark(
        train_rows=20_000, score_rows=3_000, snapshots=10, chunk_size=1_000
    )
    train = numbers["train"]
    assert 19_000 <= train["train_rows"] <= 22_000
    assert train["validation_rows"] > 0 and train["auc"]["scorecard"] > 0.7
    assert numbers["register"]["promoted"] is True
    assert numbers["score"]["rows"] == 3_000 == numbers["score_streamed"]["rows"]
    assert sum(numbers["score"]["risk_bands"].values()) == 3_000
    assert re.fullmatch(
        r"\d{8}T\d{6}Z-[0-9a-f]{8}", numbers["score"]["example"]["model_version"]
    )
    assert set(numbers["passed"]) == {"train_under_target", "score_under_target"}
