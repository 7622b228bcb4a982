"""Label reading, column-type detection and the design matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.churn.features import (
    FeatureSpec,
    infer_spec,
    normalise_label,
    prepare_frame,
    read_table,
    scorecard_design,
    warehouse_spec,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["Yes", "no", " YES ", "No"], [1, 0, 1, 0]),
        (["true", "False", "t", "f"], [1, 0, 1, 0]),
        (
            ["churned", "retained", "Attrited Customer", "Existing Customer"],
            [1, 0, 1, 0],
        ),
        ([1, 0, 1, 0], [1, 0, 1, 0]),
        ([True, False, False, True], [1, 0, 0, 1]),
        (["1", "0", "1.0", "0.0"], [1, 0, 1, 0]),
    ],
)
def test_labels_in_common_spellings(raw: list, expected: list[int]) -> None:
    assert normalise_label(pd.Series(raw, name="churn")).tolist() == expected


def test_missing_labels_stay_missing() -> None:
    labels = normalise_label(pd.Series(["yes", None, "no", ""], name="churn"))
    assert labels.isna().tolist() == [False, True, False, True]


def test_unreadable_labels_are_an_error_naming_them() -> None:
    with pytest.raises(ValueError, match="maybe"):
        normalise_label(pd.Series(["yes", "no", "maybe"], name="churn"))
    with pytest.raises(ValueError, match="other than 0/1"):
        normalise_label(pd.Series([0, 1, 2], name="churn"))


def test_infer_spec_detects_types_identifiers_and_heavy_tails() -> None:
    rng = np.random.default_rng(0)
    n = 500
    frame = pd.DataFrame(
        {
            "account": [f"A{i:05d}" for i in range(n)],
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "charges_text": [f"{v:.2f}" for v in rng.normal(50, 10, n)],
            "spend": rng.lognormal(3, 1.5, n),
            "age": rng.normal(40, 10, n),
            "constant": 1,
            "signup": pd.date_range("2020-01-01", periods=n, freq="D"),
            "label": rng.integers(0, 2, n),
        }
    )
    spec, dropped = infer_spec(frame, exclude=["label"])
    assert set(spec.numeric) == {"charges_text", "spend", "age"}
    assert spec.categorical == ("plan",)
    assert spec.log1p == ("spend",)
    assert set(dropped) == {"account", "constant", "signup"}
    assert "identifier" in dropped["account"]


def test_prepare_frame_types_and_names_missing_columns() -> None:
    frame = pd.DataFrame(
        {"a": ["1", "x", None], "b": pd.array(["u", None, "v"], dtype="string")}
    )
    prepared = prepare_frame(frame, FeatureSpec(numeric=("a",), categorical=("b",)))
    assert prepared["a"].dtype == np.float64
    assert np.isnan(prepared["a"].iloc[1]) and np.isnan(prepared["a"].iloc[2])
    assert prepared["b"].dtype == object
    assert prepared["b"].iloc[0] == "u" and pd.isna(prepared["b"].iloc[1])
    with pytest.raises(ValueError, match=r"\['spend_30d'"):
        prepare_frame(frame, FeatureSpec(numeric=("spend_30d", "a")))


def test_scorecard_design_is_standardized_with_a_missing_indicator() -> None:
    frame = pd.DataFrame(
        {
            "calls": [0.0, 1.0, 3.0, np.nan, 10.0, 2.0],
            "tier": ["vip", "ordinary", None, "ordinary", "major", "vip"],
        }
    )
    spec = FeatureSpec(numeric=("calls",), categorical=("tier",), log1p=("calls",))
    design = scorecard_design(spec).fit(prepare_frame(frame, spec))
    Z = design.transform(prepare_frame(frame, spec))
    # calls value + its missing indicator; tier: vip, ordinary, major, missing
    assert Z.shape == (6, 2 + 4)
    assert np.allclose(Z.mean(axis=0), 0.0) and np.allclose(Z.std(axis=0), 1.0)
    assert design.output_indices_["calls"] == slice(0, 2)


def test_warehouse_spec_lists_the_mart_columns() -> None:
    spec = warehouse_spec()
    assert len(spec.numeric) == 28 and spec.categorical == (
        "value_tier",
        "region",
        "customer_type",
    )
    assert "last_satisfaction" in spec.numeric and "last_satisfaction" not in spec.log1p


def test_read_table_reads_csv_and_parquet_and_rejects_others(tmp_path) -> None:
    frame = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.csv")["x"].tolist() == [1, 2]
    assert read_table(tmp_path / "t.parquet")["y"].tolist() == ["a", "b"]
    (tmp_path / "t.xlsx").write_text("")
    with pytest.raises(ValueError, match="t.xlsx"):
        read_table(tmp_path / "t.xlsx")
