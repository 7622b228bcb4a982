"""Scoring output, risk bands, chunking, and the plain-language reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.churn.features import FeatureSpec, prepare_frame
from ml.churn.models import ChurnModel, fit_candidates
from ml.churn.reasons import RISK_DIRECTION, render_reason
from ml.churn.scoring import RiskBands, score, score_batches
from ml.churn.synthetic import synthetic_churn_features
from ml.churn.training import train_from_snapshots


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return synthetic_churn_features(800, 10, seed=21)


@pytest.fixture(scope="module")
def model(features: pd.DataFrame) -> ChurnModel:
    result = train_from_snapshots(features)
    assert result.model is not None
    result.model.version = "test-version"
    return result.model


@pytest.fixture(scope="module")
def current(features: pd.DataFrame) -> pd.DataFrame:
    return features[
        features["snapshot_date"] == features["snapshot_date"].max()
    ].reset_index(drop=True)


@pytest.mark.parametrize(
    ("feature", "value", "above", "categorical", "text"),
    [
        (
            "open_complaints_beyond_sla",
            2,
            True,
            False,
            "2 complaints unresolved beyond SLA",
        ),
        (
            "spend_trend_30d_vs_prior_90d",
            -0.64,
            False,
            False,
            "spend down 64% vs the prior 90 days",
        ),
        ("calls_30d", 4, True, False, "called 4 times in 30 days"),
        ("days_since_last_consumption", 75, True, False, "no purchase for 75 days"),
        (
            "cancel_intent_calls_90d",
            1,
            True,
            False,
            "asked to cancel 1 time in 90 days",
        ),
        ("consumption_txn_count_90d", 1, False, False, "only 1 purchase in 90 days"),
        ("consumption_txn_count_90d", 0, False, False, "no purchases in 90 days"),
        ("spend_30d", 12.4, False, False, "spent only 12 in the last 30 days"),
        (
            "digital_share_90d",
            0.1,
            False,
            False,
            "only 10% of transactions through digital channels in 90 days",
        ),
        ("value_tier", "ordinary", True, True, "ordinary value tier"),
        (
            "last_satisfaction",
            float("nan"),
            False,
            False,
            "no satisfaction score on record",
        ),
        ("tenure", 2, False, False, "tenure is low (2)"),
        ("monthly_charges", 104.5, True, False, "monthly charges is high (104.5)"),
        ("contract", "Month-to-month", True, True, "contract: Month-to-month"),
        ("signup_channel", float("nan"), False, True, "no signup channel on record"),
    ],
)
def test_reason_sentences(
    feature: str, value: object, above: bool, categorical: bool, text: str
) -> None:
    assert render_reason(feature, value, above, categorical) == text


def test_score_output_columns_and_bands(
    model: ChurnModel, current: pd.DataFrame
) -> None:
    scored = score(current, model)
    assert list(scored.columns) == [
        "customer_id",
        "churn_probability",
        "risk_band",
        "reason_1",
        "reason_2",
        "reason_3",
        "model_version",
    ]
    assert len(scored) == len(current)
    assert scored["customer_id"].tolist() == current["customer_id"].tolist()
    p = scored["churn_probability"]
    assert p.between(0, 1).all()
    assert np.allclose(p, model.predict_proba(current))
    expected = np.where(p >= 0.5, "high", np.where(p >= 0.2, "medium", "low"))
    assert (scored["risk_band"] == expected).all()
    assert set(scored["risk_band"]) == {"high", "medium", "low"}
    assert (scored["model_version"] == "test-version").all()

    custom = score(current, model, bands=RiskBands(high=0.3, medium=0.1))
    assert (custom["risk_band"] == "high").sum() > (scored["risk_band"] == "high").sum()
    with pytest.raises(ValueError):
        RiskBands(high=0.1, medium=0.3)


def test_chunked_and_streamed_scoring_match_one_pass(
    model: ChurnModel, current: pd.DataFrame
) -> None:
    whole = score(current, model, chunk_size=len(current))
    chunked = score(current, model, chunk_size=150)
    pd.testing.assert_frame_equal(whole, chunked)
    batches = pa.Table.from_pandas(current, preserve_index=False).to_batches(
        max_chunksize=100
    )
    streamed = pd.concat(list(score_batches(batches, model)), ignore_index=True)
    pd.testing.assert_frame_equal(whole, streamed)


def test_reasons_follow_the_scorecard_contributions(
    model: ChurnModel, current: pd.DataFrame
) -> None:
    scored = score(current, model, min_contribution=0.05)
    X = prepare_frame(current, model.spec)
    contributions, above = model.contributions(X, for_reasons=True)
    for row in range(len(current)):
        allowed = contributions[row].copy()
        for position, feature in enumerate(model.spec.features):  # reasons never point away from risk
            direction = RISK_DIRECTION.get(feature)
            value = pd.to_numeric(pd.Series([X[feature].iloc[row]]), errors="coerce").iloc[0]
            if direction and not pd.isna(value) and bool(above[row, position]) != (direction == "high"):
                allowed[position] = -np.inf
        order = np.argsort(-allowed, kind="stable")
        expected = []
        for position in order[:3]:
            if allowed[position] < 0.05:
                break
            feature = model.spec.features[position]
            expected.append(
                render_reason(
                    feature,
                    X[feature].iloc[row],
                    bool(above[row, position]),
                    feature in model.spec.categorical,
                )
            )
        expected += [None] * (3 - len(expected))
        got = scored.loc[row, ["reason_1", "reason_2", "reason_3"]].tolist()
        assert [None if pd.isna(text) else text for text in got] == expected
    # all contributions add up to the scorecard's log-odds relative to the average customer
    everything, _ = model.contributions(X)
    scorecard = model.scorecard
    logit = scorecard.decision_function(X)
    baseline = scorecard.named_steps["model"].intercept_[0]
    assert np.allclose(everything.sum(axis=1), logit - baseline)
    assert score(current, model, min_contribution=1e9)["reason_1"].isna().all()


def test_a_constructed_at_risk_customer_gets_the_expected_reasons(
    model: ChurnModel, current: pd.DataFrame
) -> None:
    typical = current.drop(columns=["churned"]).median(numeric_only=True)
    customer = {column: typical.get(column) for column in model.spec.numeric}
    customer.update(
        {
            "customer_id": 999_999,
            "open_complaints": 2,
            "open_complaints_beyond_sla": 2,
            "cancel_intent_calls_90d": 1,
            "repeat_contacts_30d": 3,
            "spend_trend_30d_vs_prior_90d": -0.64,
            "value_tier": "ordinary",
            "region": "north",
            "customer_type": "individual",
        }
    )
    calm = dict(
        customer,
        customer_id=1,
        open_complaints=0,
        open_complaints_beyond_sla=0,
        cancel_intent_calls_90d=0,
        repeat_contacts_30d=0,
        spend_trend_30d_vs_prior_90d=0.1,
    )
    scored = score(pd.DataFrame([customer, calm]), model).set_index("customer_id")
    risky = scored.loc[999_999]
    assert risky["churn_probability"] > 2 * scored.loc[1, "churn_probability"]
    reasons = {risky[f"reason_{i}"] for i in (1, 2, 3)}
    # the three strongest churn signals built into the synthetic data, in plain language
    assert reasons == {
        "2 complaints unresolved beyond SLA",
        "asked to cancel 1 time in 90 days",
        "3 repeat contacts about the same issue in 30 days",
    }
    # the calm twin has none of those reasons
    calm_reasons = {scored.loc[1, f"reason_{i}"] for i in (1, 2, 3)}
    assert not calm_reasons & reasons


def test_a_suppressor_column_never_becomes_a_reason() -> None:
    # churn rises with `usage_gap`; `contacts` tracks it closely and, given usage_gap, lowers
    # risk a little. Alone, contacts is a churn signal; in the model its coefficient is
    # negative. "contacts is low" would be a nonsense reason, so it must never appear.
    rng = np.random.default_rng(7)
    n = 6000
    usage_gap = rng.normal(0, 1, n)
    contacts = usage_gap + 0.4 * rng.normal(0, 1, n)
    logit = -1.0 + 2.0 * usage_gap - 0.8 * contacts
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"usage_gap": usage_gap, "contacts": contacts})
    spec = FeatureSpec(numeric=("usage_gap", "contacts"))
    model = fit_candidates(prepare_frame(frame, spec), churned, spec)
    assert np.corrcoef(contacts, churned)[0, 1] > 0.2
    coef = model.scorecard.named_steps["model"].coef_.ravel()
    columns = model.scorecard.named_steps["design"].output_indices_
    gap, contact = columns["usage_gap"].start, columns["contacts"].start
    assert coef[gap] > 0 > coef[contact]
    assert model.reason_columns is not None
    assert model.reason_columns[gap] and not model.reason_columns[contact]

    frame["customer_id"] = np.arange(n)
    reasons = score(frame, model)[["reason_1", "reason_2", "reason_3"]]
    texts = set(reasons.stack().dropna())
    assert any(text.startswith("usage gap is high") for text in texts)
    assert not any(text.startswith("contacts") for text in texts)
