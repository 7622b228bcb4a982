"""Recommended actions: the committed rules, first match wins, reasons matched as plain language."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.retention.actions import ActionFacts, recommend
from dagster_project.retention.config import load_config

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference"


@pytest.fixture(scope="module")
def actions():
    return load_config(REFERENCE)[1]


@pytest.mark.parametrize(
    ("reasons", "tier", "rule"),
    [
        (
            ["2 complaints unresolved beyond SLA", "spend down 64% vs the prior 90 days"],
            "ordinary",
            "complaint_recovery",
        ),
        (["1 complaint still open"], "vip", "complaint_recovery"),  # the complaint first, even for a VIP
        (["a complaint open for 12 days"], "major", "complaint_recovery"),
        (["spend down 64% vs the prior 90 days"], "vip", "vip_personal_manager"),
        (["no purchase for 64 days", "asked to cancel 1 time in 90 days"], "major", "cancel_intent"),
        (["spend down 64% vs the prior 90 days", "no purchase for 50 days"], "ordinary", "spend_drop_offer"),
        (["90-day spend down 30% vs the 90 days before"], "major", "spend_drop_offer"),
        (["spent only 120 in the last 90 days"], "ordinary", "spend_drop_offer"),
        (["only 1 purchase in 90 days"], "ordinary", "spend_drop_offer"),
        (["no purchase for 64 days", "called 4 times in 30 days"], "ordinary", "default"),
        ([], "major", "default"),
        # sentences that name the topic but say the opposite do not trigger the rule
        (["no complaints still open", "never asked to cancel"], "ordinary", "default"),
    ],
)
def test_the_first_matching_rule_gives_the_action(actions, reasons, tier, rule):
    action, matched = recommend(actions, ActionFacts(reasons=reasons, value_tier=tier))
    assert matched == rule
    if rule == "default":
        assert action == actions.default_action
    else:
        assert action == next(r.action for r in actions.rules if r.name == rule)


def test_reason_patterns_ignore_case(actions):
    assert recommend(actions, ActionFacts(reasons=["Spend DOWN 10% vs the prior 90 days"]))[1] == "spend_drop_offer"
