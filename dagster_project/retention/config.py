"""The retention configuration files: who calls whom, how many, and what to offer.

`retention_teams.yml` (teams, capacity, agents, control group, eligibility windows) and
`retention_actions.yml` (recommended-action rules) live in the reference folder
(`settings.reference_dir()`). Both are validated completely when loaded: an error names the file,
the line and the key (`retention_teams.yml:14: teams[1].capacity: ...`) and says how to fix it.
Unknown keys are errors too, so a typo such as `capcity` never silently falls back to a default.
docs/retention.md is the reference of every key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dagster_project.exports.lists import TEAM_RE
from dagster_project.extracts.spec import CUSTOMER_TYPES, REGIONS

TEAMS_FILE = "retention_teams.yml"
ACTIONS_FILE = "retention_actions.yml"

RISK_BANDS = ("low", "medium", "high")  # ascending risk
VALUE_TIERS = ("vip", "major", "ordinary")
RFM_SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)
LIFECYCLE_STAGES = ("new", "active", "at_risk", "dormant", "churned")
# The portal's user-name rule (dagster_project/portal/users.py): agents sign in with these names.
AGENT_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")

DEFAULT_MIN_RISK_BAND = "medium"
DEFAULT_CONTROL_SHARE = 0.10
DEFAULT_CONTROL_PERIOD_DAYS = 90
DEFAULT_NOT_CONTACTED_WITHIN_DAYS = 30
DEFAULT_CASE_OPEN_DAYS = 14
MAX_CONTROL_SHARE = 0.5


class RetentionConfigError(ValueError):
    """A retention configuration file is missing, unreadable or invalid; the message says where and how to fix it."""


# --------------------------------------------------------------------------------------------
# configuration objects


@dataclass(frozen=True)
class Agent:
    name: str
    senior: bool = False


@dataclass(frozen=True)
class Team:
    """One retention team. A criterion that is None matches every customer."""

    name: str
    capacity: int
    agents: tuple[Agent, ...]
    regions: frozenset[str] | None = None
    value_tiers: frozenset[str] | None = None
    customer_types: frozenset[str] | None = None
    min_risk_band: str = DEFAULT_MIN_RISK_BAND
    control_share: float = DEFAULT_CONTROL_SHARE
    vip_to_senior: bool = True
    description: str = ""

    def matches(self, region: str | None, value_tier: str | None, customer_type: str | None) -> bool:
        return (
            (self.regions is None or region in self.regions)
            and (self.value_tiers is None or value_tier in self.value_tiers)
            and (self.customer_types is None or customer_type in self.customer_types)
        )

    @property
    def seniors(self) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if a.senior)


@dataclass(frozen=True)
class TeamsConfig:
    teams: tuple[Team, ...]
    min_risk_band: str = DEFAULT_MIN_RISK_BAND
    control_share: float = DEFAULT_CONTROL_SHARE
    control_period_days: int = DEFAULT_CONTROL_PERIOD_DAYS
    not_contacted_within_days: int = DEFAULT_NOT_CONTACTED_WITHIN_DAYS
    case_open_days: int = DEFAULT_CASE_OPEN_DAYS
    source: str = TEAMS_FILE

    def team(self, name: str) -> Team:
        for t in self.teams:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def team_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.teams)


@dataclass(frozen=True)
class ActionRule:
    """A rule matches when every condition given matches (a list matches any of its values)."""

    name: str
    action: str
    reason_patterns: tuple[re.Pattern[str], ...] = ()
    value_tiers: frozenset[str] | None = None
    rfm_segments: frozenset[str] | None = None
    lifecycle_stages: frozenset[str] | None = None
    risk_bands: frozenset[str] | None = None
    customer_types: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    teams: frozenset[str] | None = None


@dataclass(frozen=True)
class ActionsConfig:
    rules: tuple[ActionRule, ...]
    default_action: str
    source: str = ACTIONS_FILE


# --------------------------------------------------------------------------------------------
# YAML with line numbers


class _Doc:
    """A parsed YAML document plus the line of every key path, for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RetentionConfigError(
                f"{path}: file not found; copy it from the repository's data/reference/ (see docs/retention.md)"
            ) from None
        except UnicodeDecodeError as exc:
            raise RetentionConfigError(f"{path}: not UTF-8 text ({exc}); save it as UTF-8") from exc
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            self.data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            problem = getattr(exc, "problem", None) or str(exc)
            raise RetentionConfigError(
                f"{where}: not valid YAML ({problem}); check the indentation and quoting"
            ) from exc
        finally:
            loader.dispose()
        self.lines: dict[str, int] = {}
        if node is not None:
            self._index(node, "")

    def _index(self, node: yaml.Node, key: str) -> None:
        self.lines[key] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = f"{key}.{key_node.value}" if key else str(key_node.value)
                self._index(value_node, child)
                self.lines[child] = key_node.start_mark.line + 1  # the key's line, where people look
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, f"{key}[{i}]")

    def error(self, key: str, problem: str) -> RetentionConfigError:
        probe = key
        while probe not in self.lines:  # a missing key: point at the nearest enclosing one
            parent = re.sub(r"(\.[^.\[]*|\[\d+\]|^[^.\[]+)$", "", probe)
            if parent == probe:
                break
            probe = parent
        line = self.lines.get(probe)
        where = f"{self.path}:{line}" if line else str(self.path)
        return RetentionConfigError(f"{where}: {key or '(top level)'}: {problem}")


def _mapping(doc: _Doc, value: Any, key: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise doc.error(key, f"must be a mapping of keys ({', '.join(allowed)}), got {type(value).__name__}")
    unknown = [str(k) for k in value if k not in allowed]
    if unknown:
        child = f"{key}.{unknown[0]}" if key else unknown[0]
        raise doc.error(child, f"unknown key {unknown[0]!r}; allowed here: {', '.join(allowed)}")
    return value


def _int(doc: _Doc, value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise doc.error(key, f"must be a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise doc.error(key, f"must be {bounds}, got {value}")
    return value


def _share(doc: _Doc, value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise doc.error(key, f"must be a number between 0 and {MAX_CONTROL_SHARE} (e.g. 0.10 for 10%), got {value!r}")
    if not 0 <= value <= MAX_CONTROL_SHARE:
        raise doc.error(key, f"must be between 0 and {MAX_CONTROL_SHARE} (a share, 0.10 = 10%), got {value}")
    return float(value)


def _bool(doc: _Doc, value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise doc.error(key, f"must be true or false, got {value!r}")
    return value


def _text(doc: _Doc, value: Any, key: str, max_length: int = 500) -> str:
    if not isinstance(value, str) or not value.strip():
        raise doc.error(key, f"must be non-empty text, got {value!r}")
    if len(value) > max_length:
        raise doc.error(key, f"is longer than {max_length} characters")
    return value.strip()


def _choice(doc: _Doc, value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise doc.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _choices(doc: _Doc, value: Any, key: str, choices: tuple[str, ...]) -> frozenset[str] | None:
    """A non-empty list of codes (a single code is accepted too); None when the key is absent."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise doc.error(key, "must list at least one value (leave the key out to match everything)")
    for i, item in enumerate(items):
        if item not in choices:
            raise doc.error(
                f"{key}[{i}]" if isinstance(value, list) else key, f"{item!r} is not one of {', '.join(choices)}"
            )
    return frozenset(str(i) for i in items)


# --------------------------------------------------------------------------------------------
# retention_teams.yml

_TOP_KEYS = ("defaults", "teams")
_DEFAULT_KEYS = (
    "min_risk_band",
    "control_share",
    "control_period_days",
    "not_contacted_within_days",
    "case_open_days",
    "vip_to_senior",
)
_TEAM_KEYS = (
    "name",
    "description",
    "regions",
    "value_tiers",
    "customer_types",
    "capacity",
    "agents",
    "min_risk_band",
    "control_share",
    "vip_to_senior",
)
_AGENT_KEYS = ("name", "senior")


def _agents(doc: _Doc, value: Any, key: str, capacity: int) -> tuple[Agent, ...]:
    if value is None:
        value = []
    if not isinstance(value, list):
        raise doc.error(key, "must be a list of agents: `- name: li.na` (add `senior: true` for senior agents)")
    agents: list[Agent] = []
    for i, item in enumerate(value):
        item_key = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        entry = _mapping(doc, item, item_key, _AGENT_KEYS)
        if "name" not in entry:
            raise doc.error(item_key, "needs a name (the agent's portal user name)")
        name = entry["name"]
        if not isinstance(name, str) or not AGENT_RE.fullmatch(name):
            raise doc.error(
                f"{item_key}.name",
                f"{name!r} is not a portal user name: 2-64 lower-case letters, digits, '.', '-' or '_'",
            )
        if any(a.name == name for a in agents):
            raise doc.error(f"{item_key}.name", f"agent {name} is listed twice in this team")
        agents.append(Agent(name=name, senior=_bool(doc, entry.get("senior", False), f"{item_key}.senior")))
    if capacity > 0 and not agents:
        raise doc.error(key, "a team with capacity above 0 needs at least one agent")
    return tuple(agents)


def parse_teams(doc: _Doc) -> TeamsConfig:
    top = _mapping(doc, doc.data, "", _TOP_KEYS)
    defaults = _mapping(doc, top.get("defaults") or {}, "defaults", _DEFAULT_KEYS)
    min_band = _choice(doc, defaults.get("min_risk_band", DEFAULT_MIN_RISK_BAND), "defaults.min_risk_band", RISK_BANDS)
    share = _share(doc, defaults.get("control_share", DEFAULT_CONTROL_SHARE), "defaults.control_share")
    period = _int(
        doc, defaults.get("control_period_days", DEFAULT_CONTROL_PERIOD_DAYS), "defaults.control_period_days", 1, 366
    )
    not_contacted = _int(
        doc,
        defaults.get("not_contacted_within_days", DEFAULT_NOT_CONTACTED_WITHIN_DAYS),
        "defaults.not_contacted_within_days",
        0,
        3650,
    )
    case_open = _int(doc, defaults.get("case_open_days", DEFAULT_CASE_OPEN_DAYS), "defaults.case_open_days", 0, 3650)
    vip_to_senior = _bool(doc, defaults.get("vip_to_senior", True), "defaults.vip_to_senior")

    raw_teams = top.get("teams")
    if not isinstance(raw_teams, list) or not raw_teams:
        raise doc.error("teams", "must be a non-empty list of teams (`- name: north`, capacity, agents, ...)")
    teams: list[Team] = []
    for i, raw in enumerate(raw_teams):
        key = f"teams[{i}]"
        entry = _mapping(doc, raw, key, _TEAM_KEYS)
        name = entry.get("name")
        if not isinstance(name, str) or not TEAM_RE.fullmatch(name):
            raise doc.error(
                f"{key}.name",
                f"{name!r} is not a team code: 1-40 lower-case letters, digits, '-' or '_' (it becomes a file name)",
            )
        if any(t.name == name for t in teams):
            raise doc.error(f"{key}.name", f"team {name} is defined twice")
        if "capacity" not in entry:
            raise doc.error(key, "needs a capacity (customers the team can call per day)")
        capacity = _int(doc, entry["capacity"], f"{key}.capacity", 0, 100_000)
        teams.append(
            Team(
                name=name,
                description=_text(doc, entry["description"], f"{key}.description") if "description" in entry else "",
                capacity=capacity,
                agents=_agents(doc, entry.get("agents"), f"{key}.agents", capacity),
                regions=_choices(doc, entry.get("regions"), f"{key}.regions", REGIONS),
                value_tiers=_choices(doc, entry.get("value_tiers"), f"{key}.value_tiers", VALUE_TIERS),
                customer_types=_choices(doc, entry.get("customer_types"), f"{key}.customer_types", CUSTOMER_TYPES),
                min_risk_band=_choice(doc, entry.get("min_risk_band", min_band), f"{key}.min_risk_band", RISK_BANDS),
                control_share=_share(doc, entry.get("control_share", share), f"{key}.control_share"),
                vip_to_senior=_bool(doc, entry.get("vip_to_senior", vip_to_senior), f"{key}.vip_to_senior"),
            )
        )
    return TeamsConfig(
        teams=tuple(teams),
        min_risk_band=min_band,
        control_share=share,
        control_period_days=period,
        not_contacted_within_days=not_contacted,
        case_open_days=case_open,
        source=str(doc.path),
    )


def load_teams(path: Path) -> TeamsConfig:
    """Read and validate retention_teams.yml; RetentionConfigError names the file, line and key."""
    return parse_teams(_Doc(Path(path)))


# --------------------------------------------------------------------------------------------
# retention_actions.yml

_ACTION_TOP_KEYS = ("rules", "default_action")
_RULE_KEYS = ("name", "action", "when")
_WHEN_KEYS = (
    "reason_matches",
    "value_tiers",
    "rfm_segments",
    "lifecycle_stages",
    "risk_bands",
    "customer_types",
    "regions",
    "teams",
)


def _patterns(doc: _Doc, value: Any, key: str) -> tuple[re.Pattern[str], ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not items:
        raise doc.error(key, "must list at least one pattern")
    patterns: list[re.Pattern[str]] = []
    for i, item in enumerate(items):
        item_key = f"{key}[{i}]" if isinstance(value, list) else key
        if not isinstance(item, str) or not item.strip():
            raise doc.error(item_key, f"must be a text pattern, got {item!r}")
        try:
            patterns.append(re.compile(item, re.IGNORECASE))
        except re.error as exc:
            raise doc.error(
                item_key, f"{item!r} is not a valid regular expression ({exc}); escape ( ) [ ] . + with \\"
            ) from exc
    return tuple(patterns)


def parse_actions(doc: _Doc, team_names: tuple[str, ...] | None = None) -> ActionsConfig:
    top = _mapping(doc, doc.data, "", _ACTION_TOP_KEYS)
    if "default_action" not in top:
        raise doc.error("default_action", "is required: the action for customers no rule matches")
    default_action = _text(doc, top["default_action"], "default_action")
    raw_rules = top.get("rules") or []
    if not isinstance(raw_rules, list):
        raise doc.error("rules", "must be a list of rules (`- name: ..., action: ..., when: {...}`)")
    rules: list[ActionRule] = []
    for i, raw in enumerate(raw_rules):
        key = f"rules[{i}]"
        entry = _mapping(doc, raw, key, _RULE_KEYS)
        for required in ("name", "action", "when"):
            if required not in entry:
                hint = " (a rule without conditions belongs in default_action)" if required == "when" else ""
                raise doc.error(key, f"needs {required!r}{hint}")
        name = _text(doc, entry["name"], f"{key}.name", 80)
        if any(r.name == name for r in rules):
            raise doc.error(f"{key}.name", f"rule {name!r} is defined twice")
        when = _mapping(doc, entry["when"], f"{key}.when", _WHEN_KEYS)
        if not when:
            raise doc.error(f"{key}.when", "needs at least one condition")
        teams = None
        if "teams" in when:
            if team_names is None:
                raise doc.error(f"{key}.when.teams", "team conditions need the teams file")
            teams = _choices(doc, when["teams"], f"{key}.when.teams", team_names)
        rules.append(
            ActionRule(
                name=name,
                action=_text(doc, entry["action"], f"{key}.action"),
                reason_patterns=_patterns(doc, when.get("reason_matches"), f"{key}.when.reason_matches"),
                value_tiers=_choices(doc, when.get("value_tiers"), f"{key}.when.value_tiers", VALUE_TIERS),
                rfm_segments=_choices(doc, when.get("rfm_segments"), f"{key}.when.rfm_segments", RFM_SEGMENTS),
                lifecycle_stages=_choices(
                    doc, when.get("lifecycle_stages"), f"{key}.when.lifecycle_stages", LIFECYCLE_STAGES
                ),
                risk_bands=_choices(doc, when.get("risk_bands"), f"{key}.when.risk_bands", RISK_BANDS),
                customer_types=_choices(doc, when.get("customer_types"), f"{key}.when.customer_types", CUSTOMER_TYPES),
                regions=_choices(doc, when.get("regions"), f"{key}.when.regions", REGIONS),
                teams=teams,
            )
        )
    return ActionsConfig(rules=tuple(rules), default_action=default_action, source=str(doc.path))


def load_actions(path: Path, team_names: tuple[str, ...] | None = None) -> ActionsConfig:
    """Read and validate retention_actions.yml; `team_names` checks `when.teams` conditions."""
    return parse_actions(_Doc(Path(path)), team_names)


def load_config(reference_dir: Path) -> tuple[TeamsConfig, ActionsConfig]:
    """Both files from the reference folder, validated against each other."""
    teams = load_teams(Path(reference_dir) / TEAMS_FILE)
    actions = load_actions(Path(reference_dir) / ACTIONS_FILE, teams.team_names)
    return teams, actions
