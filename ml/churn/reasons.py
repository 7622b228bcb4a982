"""Plain-language reasons: why this customer's churn risk is above the average customer's.

A reason is a feature whose scorecard contribution (coefficient x standardized value, summed
over the feature's design columns, see `ChurnModel.contributions`) raises this customer's
log-odds by at least `min_contribution` relative to the training population. Design columns
whose coefficient contradicts their own association with churn (suppressor effects of
correlated features) count zero here, so a reason never says "more purchases" raise risk. The largest such
features are rendered through the template table below, keyed by feature name, using the
customer's raw value ("called 4 times in 30 days"). Features without a template get a readable
generic sentence ("contract: Month-to-month", "tenure is low (2)").

A template is a function of (raw value, above_average) so a sentence can read "only 2
purchases" when a low value is what raises the risk. Missing values have their own sentences.

Convention for the spend-trend features: the value is the relative change of spend in the
recent window against the prior window scaled to the same length, as a fraction: -0.64 reads
"spend down 64%". Shares are fractions in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from ml.churn.features import FeatureSpec

Template = Callable[[object, bool], str]

DEFAULT_MIN_CONTRIBUTION = 0.05  # log-odds, about a 5% rise in the odds of churning
DEFAULT_REASONS = 3


def format_number(value: float) -> str:
    """12 -> "12", 1234.0 -> "1,234", 0.456 -> "0.46", 104.5 -> "104.5", 12345.6 -> "12,346"."""
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    digits = 1 if abs(value) >= 100 else 2
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return singular if n == 1 else (plural or f"{singular}s")


def _count(noun: str, window: str, plural: str | None = None) -> Template:
    """Counts: '2 complaints in 90 days', 'only 1 purchase ...', 'no purchases ...'."""

    def render(value: object, above: bool) -> str:
        n = round(float(value))
        if n == 0:
            return f"no {_plural(0, noun, plural)} {window}"
        prefix = "" if above else "only "
        return f"{prefix}{n:,} {_plural(n, noun, plural)} {window}"

    return render


def _times(verb: str, window: str, none: str) -> Template:
    """Repeated actions: 'called 4 times in 30 days', 'asked to cancel 1 time in 90 days'."""

    def render(value: object, above: bool) -> str:
        n = round(float(value))
        if n == 0:
            return none
        prefix = "" if above else "only "
        return f"{verb} {prefix}{n:,} {_plural(n, 'time')} {window}"

    return render


def _days(above_text: str, below_text: str) -> Template:
    """Durations: "{days}" in the text becomes "1 day" / "75 days" / "1,234 days"."""

    def render(value: object, above: bool) -> str:
        n = round(float(value))
        days = f"{n:,} {_plural(n, 'day')}"
        return (above_text if above else below_text).format(days=days)

    return render


def _money(window: str) -> Template:
    def render(value: object, above: bool) -> str:
        amount = float(value)
        if amount <= 0:
            return f"no spend {window}"
        prefix = "" if above else "only "
        return f"spent {prefix}{amount:,.0f} {window}"

    return render


def _trend(what: str, versus: str) -> Template:
    """ "spend down 64% vs the prior 90 days" from -0.64."""

    def render(value: object, above: bool) -> str:
        change = float(value)
        pct = round(abs(change) * 100)
        if pct == 0:
            return f"{what} flat {versus}"
        return f"{what} {'down' if change < 0 else 'up'} {pct:,}% {versus}"

    return render


def _share(what: str) -> Template:
    """ "only 10% of transactions through digital channels in 90 days" from 0.1."""

    def render(value: object, above: bool) -> str:
        pct = round(float(value) * 100)
        if pct == 0:
            return f"no {what}"
        return f"{'' if above else 'only '}{pct}% of {what}"

    return render


def _score(name: str) -> Template:
    def render(value: object, above: bool) -> str:
        return f"{'high' if above else 'low'} {name} ({format_number(float(value))})"

    return render


def _category(text: str) -> Template:
    def render(value: object, above: bool) -> str:
        return text.format(value=value)

    return render


# Feature name -> template. Keep sentences short, concrete, and free of model jargon.
REASON_TEMPLATES: dict[str, Template] = {
    "tenure_days": _days("customer for {days}", "customer for only {days}"),
    "days_since_last_consumption": _days(
        "no purchase for {days}", "last purchase {days} ago"
    ),
    "days_since_last_txn": _days(
        "no transaction of any kind for {days}", "last transaction {days} ago"
    ),
    "consumption_txn_count_90d": _count("purchase", "in 90 days"),
    "non_consumption_txn_count_90d": _count(
        "payment, transfer or withdrawal",
        "in 90 days",
        "payments, transfers or withdrawals",
    ),
    "spend_30d": _money("in the last 30 days"),
    "spend_90d": _money("in the last 90 days"),
    "spend_365d": _money("in the last year"),
    "spend_trend_30d_vs_prior_90d": _trend("spend", "vs the prior 90 days"),
    "spend_trend_90d_vs_prior_90d": _trend("90-day spend", "vs the 90 days before"),
    "recency_score": _score("recency score"),
    "frequency_score": _score("purchase frequency score"),
    "monetary_score": _score("spend score"),
    "complaints_90d": _count("complaint", "in 90 days"),
    "complaints_365d": _count("complaint", "in the last year"),
    "open_complaints": _count("complaint", "still open"),
    "open_complaints_beyond_sla": _count("complaint", "unresolved beyond SLA"),
    "longest_open_complaint_days": _days(
        "a complaint open for {days}", "oldest open complaint only {days} old"
    ),
    "share_resolved_within_sla": _share("complaints resolved within SLA"),
    "last_satisfaction": _score("satisfaction at the last complaint"),
    "calls_30d": _times("called", "in 30 days", "no calls in 30 days"),
    "calls_90d": _times("called", "in 90 days", "no calls in 90 days"),
    "cancel_intent_calls_90d": _times(
        "asked to cancel", "in 90 days", "never asked to cancel"
    ),
    "transfers_90d": _times(
        "transferred between agents", "in 90 days", "no call transfers"
    ),
    "abandoned_calls_90d": _count("abandoned call", "in 90 days"),
    "repeat_contacts_30d": _count("repeat contact", "about the same issue in 30 days"),
    "digital_share_90d": _share("transactions through digital channels in 90 days"),
    "branch_share_90d": _share("transactions at a branch in 90 days"),
    "value_tier": _category("{value} value tier"),
    "region": _category("{value} region"),
    "customer_type": _category("{value} customer"),
}

# What a missing value means, where the generic "no <feature> on record" would mislead.
MISSING_TEXTS: dict[str, str] = {
    "last_satisfaction": "no satisfaction score on record",
    "share_resolved_within_sla": "no complaint history",
    "longest_open_complaint_days": "no open complaint",
    "days_since_last_consumption": "no purchase on record",
    "days_since_last_txn": "no transaction on record",
    "digital_share_90d": "no transactions in 90 days",
    "branch_share_90d": "no transactions in 90 days",
    "spend_trend_30d_vs_prior_90d": "no spend in the 90 days before the last month to compare with",
    "spend_trend_90d_vs_prior_90d": "no spend in the 90 days before the last quarter to compare with",
    "recency_score": "no purchase in the last year",
    "frequency_score": "no purchase in the last year",
    "monetary_score": "no purchase in the last year",
}

# The direction in which a feature plainly means risk to a caller ("high": more is worse, "low":
# less is worse). A reason pointing the other way ("100% of complaints resolved within SLA") is
# never shown, even where the model found such a pattern; features not listed can go either way.
RISK_DIRECTION: dict[str, str] = {
    "days_since_last_consumption": "high",
    "days_since_last_txn": "high",
    "consumption_txn_count_90d": "low",
    "non_consumption_txn_count_90d": "low",
    "spend_30d": "low",
    "spend_90d": "low",
    "spend_365d": "low",
    "spend_trend_30d_vs_prior_90d": "low",
    "spend_trend_90d_vs_prior_90d": "low",
    "recency_score": "low",
    "frequency_score": "low",
    "monetary_score": "low",
    "complaints_90d": "high",
    "complaints_365d": "high",
    "open_complaints": "high",
    "open_complaints_beyond_sla": "high",
    "longest_open_complaint_days": "high",
    "share_resolved_within_sla": "low",
    "last_satisfaction": "low",
    "calls_30d": "high",
    "calls_90d": "high",
    "cancel_intent_calls_90d": "high",
    "transfers_90d": "high",
    "abandoned_calls_90d": "high",
    "repeat_contacts_30d": "high",
}


def _words(feature: str) -> str:
    return feature.replace("_", " ").strip()


def render_reason(feature: str, value: object, above: bool, categorical: bool) -> str:
    """One reason sentence for `feature` with this customer's raw `value`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_TEXTS.get(feature, f"no {_words(feature)} on record")
    template = REASON_TEMPLATES.get(feature)
    if template is not None:
        return template(value, above)
    if categorical:
        return f"{_words(feature)}: {value}"
    return f"{_words(feature)} is {'high' if above else 'low'} ({format_number(float(value))})"


def top_reasons(
    contributions: np.ndarray,
    above: np.ndarray,
    X: pd.DataFrame,
    spec: FeatureSpec,
    n: int = DEFAULT_REASONS,
    min_contribution: float = DEFAULT_MIN_CONTRIBUTION,
) -> list[np.ndarray]:
    """`n` object arrays (reason_1 .. reason_n): the largest risk-raising reasons per row.

    `contributions`/`above` come from `ChurnModel.contributions(X)`; `X` is the prepared frame
    holding the raw values. Slots without a reason (too few risk-raising features) are None.
    """
    rows, n_features = contributions.shape
    eligible = np.where(contributions >= min_contribution, contributions, -np.inf)
    for position, feature in enumerate(spec.features):
        direction = RISK_DIRECTION.get(feature)
        if direction is None or feature not in X:
            continue
        raw = pd.to_numeric(X[feature], errors="coerce").to_numpy(dtype=float)
        wrong_way = ~above[:, position] if direction == "high" else above[:, position]
        eligible[wrong_way & ~np.isnan(raw), position] = -np.inf  # missing values keep their own text
    k = min(n, n_features)
    top = np.argsort(-eligible, axis=1, kind="stable")[:, :k]
    present = np.isfinite(np.take_along_axis(eligible, top, axis=1))
    out = [np.full(rows, None, dtype=object) for _ in range(n)]
    columns = {feature: X[feature].to_numpy() for feature in spec.features}
    categorical = set(spec.categorical)
    memo: dict[tuple[int, object, bool], str] = {}
    for slot in range(k):
        slot_features = top[:, slot]
        for position in np.unique(slot_features[present[:, slot]]):
            feature = spec.features[position]
            is_categorical = feature in categorical
            chosen = np.flatnonzero(present[:, slot] & (slot_features == position))
            values = columns[feature][chosen]
            highs = above[chosen, position]
            texts = []
            for value, high in zip(values.tolist(), highs.tolist(), strict=True):
                key = (position, value, high)
                text = memo.get(key)
                if text is None:
                    text = render_reason(feature, value, high, is_categorical)
                    memo[key] = text
                texts.append(text)
            out[slot][chosen] = texts
    return out
