"""Reasons read the way a caller would say them, and never point the wrong way."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.churn.features import FeatureSpec
from ml.churn.reasons import render_reason, top_reasons


def test_zero_shares_and_missing_values_read_naturally():
    assert render_reason("share_resolved_within_sla", 0.0, False, False) == "no complaints resolved within SLA"
    assert render_reason("share_resolved_within_sla", 0.4, False, False) == "only 40% of complaints resolved within SLA"
    assert render_reason("digital_share_90d", float("nan"), False, False) == "no transactions in 90 days"
    assert render_reason("recency_score", None, False, False) == "no purchase in the last year"
    assert render_reason("spend_trend_30d_vs_prior_90d", -0.64, False, False) == "spend down 64% vs the prior 90 days"


def test_a_reason_pointing_away_from_risk_is_not_shown():
    features = ["share_resolved_within_sla", "calls_30d", "digital_share_90d"]
    spec = FeatureSpec(numeric=features, categorical=[])
    X = pd.DataFrame({"share_resolved_within_sla": [1.0, 0.2], "calls_30d": [4.0, 4.0], "digital_share_90d": [0.9, 0.9]})
    contributions = np.array([[0.9, 0.5, 0.3], [0.9, 0.5, 0.3]])
    above = np.array([[True, True, True], [False, True, True]])  # customer 0: 100% resolved is "above"
    first, second, third = top_reasons(contributions, above, X, spec, n=3, min_contribution=0.05)
    assert first[0] == "called 4 times in 30 days"  # "100% of complaints resolved within SLA" is dropped
    assert second[0] == "90% of transactions through digital channels in 90 days"  # either direction allowed
    assert third[0] is None
    assert first[1] == "only 20% of complaints resolved within SLA"
