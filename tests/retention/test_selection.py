"""Tonight's selection: routing, eligibility, ranking, control group, capacity and agents."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from dagster_project.retention.config import ActionsConfig, Agent, Team, TeamsConfig, load_config
from dagster_project.retention.selection import (
    BELOW_RISK_BAND,
    CONTACTED_RECENTLY,
    DO_NOT_CONTACT,
    NOT_ACTIVE,
    OPEN_CASE,
    Candidate,
    Exclusions,
    assign_agents,
    control_draw,
    control_period_start,
    control_quota,
    select_targets,
)

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference"
LIST_DATE = date(2026, 11, 22)
ACTIONS = ActionsConfig(rules=(), default_action="Check-in call")
REGIONS = ("north", "northeast", "east", "central", "south", "southwest", "northwest")


def team(name: str, capacity: int = 10, share: float = 0.1, **kwargs) -> Team:
    agents = kwargs.pop("agents", (Agent("a1"), Agent("a2")))
    return Team(name=name, capacity=capacity, agents=agents, control_share=share, **kwargs)


def config(*teams: Team, period: int = 1, **kwargs) -> TeamsConfig:
    return TeamsConfig(teams=teams, control_period_days=period, **kwargs)


def customer(i: int, p: float = 0.6, clv: float | None = 1000.0, **kwargs) -> Candidate:
    base = {"region": "north", "value_tier": "ordinary", "customer_type": "individual", "risk_band": "high"}
    base.update(kwargs)
    return Candidate(customer_id=f"C{i:08d}", churn_probability=p, clv_365d=clv, **base)  # type: ignore[arg-type]


def synthetic(n: int, seed: int = 7) -> list[Candidate]:
    """A realistic pool: regions, tiers, bands and CLVs drawn at random."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = rng.betavariate(2, 4)
        band = "high" if p >= 0.5 else "medium" if p >= 0.2 else "low"
        tier = rng.choices(["vip", "major", "ordinary"], [0.05, 0.2, 0.75])[0]
        out.append(
            customer(i, p=p, clv=rng.lognormvariate(7, 1), risk_band=band, value_tier=tier, region=rng.choice(REGIONS))
        )
    return out


def test_first_matching_team_wins_and_unmatched_customers_are_reported():
    vip = team("vip", value_tiers=frozenset({"vip"}))
    north = team("north", regions=frozenset({"north"}))
    people = [
        customer(1, value_tier="vip", region="north"),  # both match: vip comes first in the file
        customer(2, region="north"),
        customer(3, region="south"),  # no team
        customer(4, region="south", risk_band="low"),  # no team, but not eligible anyway: not reported
        customer(5, region="south", status="closed"),  # no team, not active: not reported
    ]
    selection = select_targets(people, Exclusions(), config(vip, north), ACTIONS, LIST_DATE)
    assert [m.customer_id for m in selection.teams["vip"].members] == ["C00000001"]
    assert [m.customer_id for m in selection.teams["north"].members] == ["C00000002"]
    assert [c.customer_id for c in selection.unrouted] == ["C00000003"]
    assert selection.scored == 5


def test_every_exclusion_is_applied_and_counted_by_reason():
    north = team("north", min_risk_band="high", share=0.0)
    people = [
        customer(1, risk_band="medium"),
        customer(2, status="closed"),
        customer(3),
        customer(4),
        customer(5),
        customer(6),
    ]
    exclusions = Exclusions(
        do_not_contact=frozenset({"C00000003"}),
        contacted_recently=frozenset({"C00000004", "C00000003"}),
        open_case=frozenset({"C00000005"}),
    )
    result = select_targets(people, exclusions, config(north), ACTIONS, LIST_DATE).teams["north"]
    assert [m.customer_id for m in result.listed] == ["C00000006"]
    assert result.eligible == 1
    assert dict(result.excluded) == {
        BELOW_RISK_BAND: 1,
        NOT_ACTIVE: 1,
        DO_NOT_CONTACT: 1,
        CONTACTED_RECENTLY: 1,
        OPEN_CASE: 1,
    }


def test_ranked_by_value_at_risk_then_probability_then_id():
    north = team("north", share=0.0)
    people = [
        customer(1, p=0.5, clv=1000),  # 500
        customer(2, p=0.9, clv=1000),  # 900
        customer(3, p=0.6, clv=500),  # 300
        customer(4, p=0.3, clv=1000),  # 300, lower probability than 3
        customer(5, p=0.9, clv=None),  # no CLV: value at risk 0, last
        customer(6, p=0.6, clv=500),  # ties 3 exactly: id decides
    ]
    random.Random(1).shuffle(people)
    listed = select_targets(people, Exclusions(), config(north), ACTIONS, LIST_DATE).teams["north"].listed
    assert [m.customer_id[-1] for m in listed] == ["2", "1", "3", "6", "4", "5"]
    assert [m.rank for m in listed] == [1, 2, 3, 4, 5, 6]
    assert listed[-1].candidate.value_at_risk == 0.0


def test_capacity_takes_the_top_non_control_customers():
    north = team("north", capacity=25, share=0.1)
    people = [customer(i, p=0.5 + i / 1000) for i in range(200)]
    result = select_targets(people, Exclusions(), config(north), ACTIONS, LIST_DATE).teams["north"]
    listed, control = result.listed, result.control
    assert len(listed) == 25 and [m.rank for m in listed] == list(range(1, 26))
    assert len(control) == 20  # 10% of the 200 eligible, not of the 25 listed
    control_ranks = {m.pool_rank for m in control}
    # the listed customers are exactly the best-ranked customers that are not in the control group
    expected = [r for r in range(1, 201) if r not in control_ranks][:25]
    assert [m.pool_rank for m in listed] == expected
    last = listed[-1].pool_rank
    assert {m.pool_rank for m in control if m.in_list_range} == {r for r in control_ranks if r < last}
    assert all(m.agent is None and m.rank is None for m in control)


def test_control_share_is_within_one_point_for_every_team_on_many_customers():
    teams_config, actions = load_config(REFERENCE)
    people = synthetic(40_000)
    for list_date in (LIST_DATE, LIST_DATE + timedelta(days=200)):
        selection = select_targets(people, Exclusions(), teams_config, actions, list_date)
        for name, result in selection.teams.items():
            assert result.eligible > 500, name
            share = len(result.control) / result.eligible
            assert abs(share - result.team.control_share) <= 0.01, (name, share)
            assert len(result.listed) == result.team.capacity


def test_control_draw_is_uniform_and_independent_of_rank():
    draws = [control_draw(f"C{i:08d}", LIST_DATE) for i in range(20_000)]
    assert all(0 <= d < 1 for d in draws)
    assert abs(sum(d < 0.1 for d in draws) / len(draws) - 0.1) < 0.01  # the hash alone: ~10% below 0.1
    north = team("north", capacity=50, share=0.1)
    people = [customer(i, p=0.21 + 0.7 * i / 5000) for i in range(5000)]
    result = select_targets(people, Exclusions(), config(north), ACTIONS, LIST_DATE).teams["north"]
    mean_rank = sum(m.pool_rank for m in result.control) / len(result.control)
    assert abs(mean_rank - 2500) < 250  # drawn across the whole ranking, not from its top or bottom


def test_same_inputs_give_the_same_selection_whatever_the_input_order():
    teams_config, actions = load_config(REFERENCE)
    people = synthetic(3000)
    first = select_targets(people, Exclusions(), teams_config, actions, LIST_DATE)
    shuffled = list(people)
    random.Random(3).shuffle(shuffled)
    second = select_targets(shuffled, Exclusions(), teams_config, actions, LIST_DATE)
    assert first.members == second.members


def test_control_customers_stay_control_within_a_period_and_are_redrawn_after_it():
    north = team("north", capacity=30, share=0.1)
    people = [customer(i, p=0.5 + i / 10_000) for i in range(2000)]

    def control_ids(list_date: date, period: int) -> set[str]:
        selection = select_targets(people, Exclusions(), config(north, period=period), ACTIONS, list_date)
        return {m.customer_id for m in selection.teams["north"].control}

    start = control_period_start(LIST_DATE, 90)
    assert start <= LIST_DATE < start + timedelta(days=90) and (start - date(1970, 1, 1)).days % 90 == 0
    assert control_ids(start, 90) == control_ids(start + timedelta(days=89), 90)
    later = control_ids(start + timedelta(days=90), 90)
    assert len(later & control_ids(start, 90)) < 0.3 * len(later)  # a new period, a new draw
    # period 1: a fresh draw for every list date (hash of customer id and list date)
    assert control_ids(LIST_DATE, 1) != control_ids(LIST_DATE + timedelta(days=1), 1)


@pytest.mark.parametrize(
    ("eligible", "share", "expected"),
    [(0, 0.1, 0), (4, 0.1, 0), (5, 0.1, 1), (15, 0.1, 2), (25, 0.1, 3), (200, 0.1, 20), (7, 0.3, 2), (10, 0.0, 0)],
)
def test_control_quota_rounds_half_up(eligible, share, expected):
    assert control_quota(eligible, share) == expected


def test_a_list_that_is_not_full_puts_every_control_customer_in_range():
    north = team("north", capacity=100, share=0.1)
    people = [customer(i) for i in range(50)]
    result = select_targets(people, Exclusions(), config(north), ACTIONS, LIST_DATE).teams["north"]
    assert len(result.listed) == 45 and len(result.control) == 5
    assert all(m.in_list_range for m in result.control)


def test_agents_are_dealt_round_robin_in_rank_order_and_vips_go_to_seniors():
    agents = (Agent("senior.a", senior=True), Agent("b"), Agent("c"))
    north = team("north", agents=agents)
    plain = [customer(i) for i in range(6)]
    assert assign_agents(north, plain) == ["senior.a", "b", "c", "senior.a", "b", "c"]
    mixed = [customer(0, value_tier="vip"), customer(1), customer(2, value_tier="vip"), customer(3), customer(4)]
    assert assign_agents(north, mixed) == ["senior.a", "b", "senior.a", "c", "b"]
    assert assign_agents(replace(north, vip_to_senior=False), mixed) == ["senior.a", "b", "c", "senior.a", "b"]
    no_seniors = team("north", agents=(Agent("b"), Agent("c")))
    assert assign_agents(no_seniors, mixed) == ["b", "c", "b", "c", "b"]


def test_listed_rows_carry_the_recommended_action(tmp_path):
    teams_config, actions = load_config(REFERENCE)
    people = [
        customer(1, value_tier="vip", reasons=("1 complaint still open",)),
        customer(2, reasons=("asked to cancel 2 times in 90 days",)),
        customer(3, reasons=("called 4 times in 30 days",)),
    ]
    selection = select_targets(people, Exclusions(), replace(teams_config, control_period_days=1), actions, LIST_DATE)
    rules = {m.customer_id: m.action_rule for m in selection.members}
    assert rules == {"C00000001": "complaint_recovery", "C00000002": "cancel_intent", "C00000003": "default"}


def test_a_customer_scored_twice_is_an_error():
    with pytest.raises(ValueError, match="C00000001 is scored twice"):
        select_targets([customer(1), customer(1)], Exclusions(), config(team("north")), ACTIONS, LIST_DATE)
