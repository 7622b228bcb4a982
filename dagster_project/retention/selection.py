"""Who goes on tonight's lists: eligibility, ranking, routing, control group, capacity, agents.

Pure functions over plain data (the warehouse reading is in store.py), in the order applied:

1. Routing. Each scored customer goes to the first team in retention_teams.yml whose regions,
   value tiers and customer types all match (a criterion left out matches everyone). A customer
   who would be eligible but matches no team is *unrouted*: counted and reported, never dropped
   silently.
2. Eligibility, per team: risk band at or above the team's `min_risk_band`; account active; not on
   the do-not-contact list; not contacted in the last `not_contacted_within_days`; not in an open
   retention case. Every exclusion is counted by reason.
3. Ranking: value at risk = churn_probability x clv_365d (a customer without a CLV counts 0),
   highest first; ties by churn probability, then customer id. `pool_rank` is the position among
   the team's eligible customers.
4. Control group: exactly round(control_share x eligible) of the team's eligible customers are held
   out: those with the smallest control draw, a uniform number in [0, 1) from
   sha256("<customer_id>|<period start>"). The period is `control_period_days` long (1 = a fresh
   draw for every list date); within a period the same customers are drawn, so a control customer
   is not called a few days later and the comparison stays clean.
5. Capacity: the first `capacity` non-control customers by rank are listed (`rank` 1..n).
6. Agents: listed customers are dealt in rank order to the least-loaded agent (ties in file order:
   a plain round robin while loads are equal). VIP customers go to the team's senior agents when
   it has any and `vip_to_senior` is on.

`in_list_range` marks the control customers who would have been listed had they not been held
out (pool rank within the listed range, or every control customer when the list is not full):
the fair comparison group for the listed customers (docs/retention.md).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from dagster_project.retention.actions import ActionFacts, recommend
from dagster_project.retention.config import RISK_BANDS, ActionsConfig, Team, TeamsConfig

PERIOD_EPOCH = date(1970, 1, 1)

# Exclusion reasons, in the order they are tested (a customer counts under the first that applies).
BELOW_RISK_BAND = "below_risk_band"
NOT_ACTIVE = "not_active"
DO_NOT_CONTACT = "do_not_contact"
CONTACTED_RECENTLY = "contacted_recently"
OPEN_CASE = "open_case"
EXCLUSION_REASONS = (BELOW_RISK_BAND, NOT_ACTIVE, DO_NOT_CONTACT, CONTACTED_RECENTLY, OPEN_CASE)


@dataclass(frozen=True)
class Candidate:
    """A scored customer as of the as-of date."""

    customer_id: str
    churn_probability: float
    risk_band: str
    clv_365d: float | None = None
    status: str | None = "active"
    region: str | None = None
    value_tier: str | None = None
    customer_type: str | None = None
    rfm_segment: str | None = None
    lifecycle_stage: str | None = None
    reasons: tuple[str, ...] = ()

    @property
    def value_at_risk(self) -> float:
        return self.churn_probability * (self.clv_365d or 0.0)


@dataclass(frozen=True)
class Exclusions:
    """Customers that must not be listed tonight, by reason (see store.read_exclusions)."""

    do_not_contact: frozenset[str] = frozenset()
    contacted_recently: frozenset[str] = frozenset()
    open_case: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Member:
    """A customer on a team's list tonight (`is_control` False) or held out as control."""

    team: str
    candidate: Candidate
    pool_rank: int
    is_control: bool
    control_draw: float
    in_list_range: bool
    rank: int | None = None  # position in the list file; None for control customers
    agent: str | None = None
    recommended_action: str = ""
    action_rule: str = ""

    @property
    def customer_id(self) -> str:
        return self.candidate.customer_id


@dataclass
class TeamSelection:
    team: Team
    eligible: int = 0
    members: list[Member] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)

    @property
    def listed(self) -> list[Member]:
        return sorted((m for m in self.members if not m.is_control), key=lambda m: m.rank or 0)

    @property
    def control(self) -> list[Member]:
        return [m for m in self.members if m.is_control]

    @property
    def control_share(self) -> float | None:
        return len(self.control) / self.eligible if self.eligible else None

    def agent_load(self) -> dict[str, int]:
        counts = Counter(m.agent for m in self.members if m.agent)
        return {a.name: counts.get(a.name, 0) for a in self.team.agents}


@dataclass
class Selection:
    list_date: date
    teams: dict[str, TeamSelection]
    unrouted: list[Candidate] = field(default_factory=list)
    scored: int = 0

    @property
    def members(self) -> list[Member]:
        return [m for t in self.teams.values() for m in t.members]


def risk_at_least(band: str, minimum: str) -> bool:
    """True when `band` is `minimum` or riskier (low < medium < high); unknown bands never qualify."""
    if band not in RISK_BANDS:
        return False
    return RISK_BANDS.index(band) >= RISK_BANDS.index(minimum)


def route(teams: Sequence[Team], candidate: Candidate) -> Team | None:
    """The first team in file order that matches the customer, or None."""
    for team in teams:
        if team.matches(candidate.region, candidate.value_tier, candidate.customer_type):
            return team
    return None


def control_period_start(list_date: date, period_days: int) -> date:
    """Start of the control period holding `list_date` (periods of `period_days` from 1970-01-01)."""
    offset = (list_date - PERIOD_EPOCH).days
    return PERIOD_EPOCH + timedelta(days=offset - offset % period_days)


def control_draw(customer_id: str, period_start: date) -> float:
    """A uniform number in [0, 1) from sha256("<customer_id>|<YYYY-MM-DD>"): stable, unpredictable, fair."""
    digest = hashlib.sha256(f"{customer_id}|{period_start.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def control_quota(eligible: int, share: float) -> int:
    """round(share x eligible), halves rounded up: within half a customer of the configured share."""
    return int((Decimal(repr(share)) * eligible).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rank_key(candidate: Candidate) -> tuple[float, float, str]:
    return (-candidate.value_at_risk, -candidate.churn_probability, candidate.customer_id)


def exclusion_reason(team: Team, candidate: Candidate, exclusions: Exclusions) -> str | None:
    if not risk_at_least(candidate.risk_band, team.min_risk_band):
        return BELOW_RISK_BAND
    return _contact_exclusion(candidate, exclusions)


def _contact_exclusion(candidate: Candidate, exclusions: Exclusions) -> str | None:
    if candidate.status != "active":
        return NOT_ACTIVE
    if candidate.customer_id in exclusions.do_not_contact:
        return DO_NOT_CONTACT
    if candidate.customer_id in exclusions.contacted_recently:
        return CONTACTED_RECENTLY
    if candidate.customer_id in exclusions.open_case:
        return OPEN_CASE
    return None


def assign_agents(team: Team, listed: Sequence[Candidate]) -> list[str | None]:
    """The agent of each listed customer (in rank order): least-loaded first, ties in file order."""
    if not team.agents:
        return [None] * len(listed)
    load = {a.name: 0 for a in team.agents}
    order = {a.name: i for i, a in enumerate(team.agents)}
    seniors = [a.name for a in team.seniors]
    everyone = [a.name for a in team.agents]
    out: list[str | None] = []
    for candidate in listed:
        pool = seniors if (candidate.value_tier == "vip" and team.vip_to_senior and seniors) else everyone
        agent = min(pool, key=lambda name: (load[name], order[name]))
        load[agent] += 1
        out.append(agent)
    return out


def select_team(
    team: Team,
    pool: Sequence[Candidate],
    list_date: date,
    control_period_days: int,
    actions: ActionsConfig,
) -> list[Member]:
    """Rank, hold out the control group, fill capacity and assign agents for one team's eligible pool."""
    ranked = sorted(pool, key=rank_key)
    period = control_period_start(list_date, control_period_days)
    draws = {c.customer_id: control_draw(c.customer_id, period) for c in ranked}
    quota = control_quota(len(ranked), team.control_share)
    control_ids = {c.customer_id for c in sorted(ranked, key=lambda c: (draws[c.customer_id], c.customer_id))[:quota]}

    listed: list[tuple[int, Candidate]] = []
    for pool_rank, candidate in enumerate(ranked, start=1):
        if len(listed) >= team.capacity:
            break
        if candidate.customer_id not in control_ids:
            listed.append((pool_rank, candidate))
    full = len(listed) >= team.capacity
    last_listed_rank = listed[-1][0] if listed else 0
    agents = assign_agents(team, [c for _, c in listed])

    members: list[Member] = []
    for position, ((pool_rank, candidate), agent) in enumerate(zip(listed, agents, strict=True), start=1):
        action, rule = _action(actions, team, candidate)
        members.append(
            Member(
                team=team.name,
                candidate=candidate,
                pool_rank=pool_rank,
                is_control=False,
                control_draw=draws[candidate.customer_id],
                in_list_range=True,
                rank=position,
                agent=agent,
                recommended_action=action,
                action_rule=rule,
            )
        )
    for pool_rank, candidate in enumerate(ranked, start=1):
        if candidate.customer_id not in control_ids:
            continue
        action, rule = _action(actions, team, candidate)
        members.append(
            Member(
                team=team.name,
                candidate=candidate,
                pool_rank=pool_rank,
                is_control=True,
                control_draw=draws[candidate.customer_id],
                in_list_range=team.capacity > 0 and (not full or pool_rank < last_listed_rank),
                recommended_action=action,
                action_rule=rule,
            )
        )
    return members


def _action(actions: ActionsConfig, team: Team, candidate: Candidate) -> tuple[str, str]:
    return recommend(
        actions,
        ActionFacts(
            reasons=candidate.reasons,
            value_tier=candidate.value_tier,
            rfm_segment=candidate.rfm_segment,
            lifecycle_stage=candidate.lifecycle_stage,
            risk_band=candidate.risk_band,
            customer_type=candidate.customer_type,
            region=candidate.region,
            team=team.name,
        ),
    )


def select_targets(
    candidates: Iterable[Candidate],
    exclusions: Exclusions,
    config: TeamsConfig,
    actions: ActionsConfig,
    list_date: date,
) -> Selection:
    """Tonight's list membership for every configured team (see the module docstring)."""
    selection = Selection(list_date=list_date, teams={t.name: TeamSelection(team=t) for t in config.teams})
    pools: dict[str, list[Candidate]] = {t.name: [] for t in config.teams}
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.customer_id in seen:
            raise ValueError(
                f"customer {candidate.customer_id} is scored twice; the scores must hold one row per customer"
            )
        seen.add(candidate.customer_id)
        selection.scored += 1
        team = route(config.teams, candidate)
        if team is None:
            if (
                risk_at_least(candidate.risk_band, config.min_risk_band)
                and _contact_exclusion(candidate, exclusions) is None
            ):
                selection.unrouted.append(candidate)
            continue
        reason = exclusion_reason(team, candidate, exclusions)
        if reason is not None:
            selection.teams[team.name].excluded[reason] += 1
            continue
        pools[team.name].append(candidate)
    selection.unrouted.sort(key=rank_key)
    for team in config.teams:
        result = selection.teams[team.name]
        result.eligible = len(pools[team.name])
        result.members = select_team(team, pools[team.name], list_date, config.control_period_days, actions)
    return selection
