"""The recommended action for a listed customer: the first rule of retention_actions.yml that matches.

A rule matches when every condition it gives matches: `reason_matches` (regular expressions,
case-insensitive, searched in each of the customer's churn reasons; any one matching is enough)
and the segment lists (value tier, RFM segment, lifecycle stage, risk band, customer type,
region, team; the customer's value must be in the list). Rules are tried in file order; no match
gives `default_action`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dagster_project.retention.config import ActionRule, ActionsConfig


@dataclass(frozen=True)
class ActionFacts:
    """What the rules can look at."""

    reasons: Sequence[str]
    value_tier: str | None = None
    rfm_segment: str | None = None
    lifecycle_stage: str | None = None
    risk_band: str | None = None
    customer_type: str | None = None
    region: str | None = None
    team: str | None = None


def rule_matches(rule: ActionRule, facts: ActionFacts) -> bool:
    if rule.reason_patterns and not any(p.search(r) for p in rule.reason_patterns for r in facts.reasons if r):
        return False
    checks = (
        (rule.value_tiers, facts.value_tier),
        (rule.rfm_segments, facts.rfm_segment),
        (rule.lifecycle_stages, facts.lifecycle_stage),
        (rule.risk_bands, facts.risk_band),
        (rule.customer_types, facts.customer_type),
        (rule.regions, facts.region),
        (rule.teams, facts.team),
    )
    return all(allowed is None or value in allowed for allowed, value in checks)


def recommend(config: ActionsConfig, facts: ActionFacts) -> tuple[str, str]:
    """(action text, rule name) of the first matching rule, or (default action, "default")."""
    for rule in config.rules:
        if rule_matches(rule, facts):
            return rule.action, rule.name
    return config.default_action, "default"
