"""retention_teams.yml and retention_actions.yml: the committed files load, mistakes are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.retention.config import (
    ACTIONS_FILE,
    TEAMS_FILE,
    RetentionConfigError,
    load_actions,
    load_config,
    load_teams,
)

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference"

TEAMS = """\
defaults:
  control_share: 0.2
teams:
  - name: vip
    value_tiers: [vip]
    capacity: 5
    agents:
      - name: chen.jing
        senior: true
      - sun.li
  - name: rest
    capacity: 10
    min_risk_band: high
    agents: [li.na]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_committed_files_load_and_route_every_region():
    teams, actions = load_config(REFERENCE)
    assert teams.team_names[0] == "vip"  # the specialised team comes first, or it would never get a customer
    regions = set().union(*(t.regions or set() for t in teams.teams))
    assert regions == {"north", "northeast", "east", "central", "south", "southwest", "northwest"}
    assert all(t.agents and t.capacity > 0 for t in teams.teams)
    assert all(t.seniors for t in teams.teams)
    assert teams.control_share == 0.10 and teams.min_risk_band == "medium"
    assert teams.not_contacted_within_days == 30
    assert [r.name for r in actions.rules][:2] == ["complaint_recovery", "vip_personal_manager"]
    assert actions.default_action.startswith("Check-in call")


def test_defaults_apply_and_teams_override_them(tmp_path):
    config = load_teams(write(tmp_path, TEAMS_FILE, TEAMS))
    vip, rest = config.teams
    assert vip.control_share == rest.control_share == 0.2
    assert vip.min_risk_band == "medium" and rest.min_risk_band == "high"
    assert [a.name for a in vip.seniors] == ["chen.jing"]
    assert [a.name for a in vip.agents] == ["chen.jing", "sun.li"]  # a plain string is a non-senior agent
    assert rest.regions is None and rest.matches("south", "ordinary", "business")
    assert not vip.matches("south", "major", "individual") and vip.matches("south", "vip", "individual")
    assert config.case_open_days == 14 and config.control_period_days == 90


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("capacity: 10", "capcity: 10"), ":12: teams[1].capcity:", "unknown key 'capcity'"),
        (("capacity: 5", "capacity: five"), ":6: teams[0].capacity:", "must be a whole number"),
        (("value_tiers: [vip]", "value_tiers: [gold]"), ":5: teams[0].value_tiers[0]:", "'gold' is not one of vip"),
        (("name: rest", "name: vip"), ":11: teams[1].name:", "team vip is defined twice"),
        (("name: rest", "name: Rest Team"), ":11: teams[1].name:", "not a team code"),
        (("control_share: 0.2", "control_share: 10"), ":2: defaults.control_share:", "between 0 and 0.5"),
        (("    agents: [li.na]\n", ""), ":11: teams[1].agents:", "needs at least one agent"),
        (("      - sun.li", "      - Sun Li"), ":10: teams[0].agents[1]", "not a portal user name"),
        (("min_risk_band: high", "min_risk_band: severe"), ":13: teams[1].min_risk_band:", "one of low, medium, high"),
    ],
)
def test_team_file_mistakes_name_the_file_line_and_key(tmp_path, change, where, message):
    old, new = change
    assert old in TEAMS
    path = write(tmp_path, TEAMS_FILE, TEAMS.replace(old, new, 1))
    with pytest.raises(RetentionConfigError) as caught:
        load_teams(path)
    text = str(caught.value)
    assert text.startswith(str(path)), text
    assert where in text and message in text, text


def test_broken_yaml_and_missing_files_are_reported_with_their_path(tmp_path):
    path = write(tmp_path, TEAMS_FILE, "teams:\n  - name: vip\n   capacity: 3\n")
    with pytest.raises(RetentionConfigError, match=r"retention_teams\.yml:3:\d+: not valid YAML"):
        load_teams(path)
    with pytest.raises(RetentionConfigError, match="file not found"):
        load_teams(tmp_path / "nope.yml")
    with pytest.raises(RetentionConfigError, match="teams: must be a non-empty list"):
        load_teams(write(tmp_path, TEAMS_FILE, "defaults: {}\n"))


ACTIONS = """\
rules:
  - name: complaint
    action: Complaint call
    when:
      reason_matches: ["complaints? still open"]
  - name: vip
    action: VIP call
    when:
      value_tiers: [vip]
      teams: [vip]
default_action: Check-in
"""


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (
            ('["complaints? still open"]', '["complaints (still open"]'),
            ":5: rules[0].when.reason_matches[0]:",
            "not a valid regular expression",
        ),
        (("teams: [vip]", "teams: [north]"), ":10: rules[1].when.teams[0]:", "'north' is not one of vip, rest"),
        (("    when:\n      value_tiers: [vip]\n      teams: [vip]\n", ""), ":6: rules[1]:", "needs 'when'"),
        (("default_action: Check-in\n", ""), "default_action:", "is required"),
        (("value_tiers: [vip]", "value_tier: [vip]"), ":9: rules[1].when.value_tier:", "unknown key"),
    ],
)
def test_action_file_mistakes_name_the_file_line_and_key(tmp_path, change, where, message):
    old, new = change
    assert old in ACTIONS
    path = write(tmp_path, ACTIONS_FILE, ACTIONS.replace(old, new, 1))
    with pytest.raises(RetentionConfigError) as caught:
        load_actions(path, ("vip", "rest"))
    assert where in str(caught.value) and message in str(caught.value), str(caught.value)
