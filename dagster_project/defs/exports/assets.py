"""Tonight's retention target lists: select, record in the warehouse, publish the files for the portal.

    marts/customer_churn_scores ─┐
    marts/customer_clv ──────────┤
    marts/dim_customers ─────────┼─▶ retention/target_list_members ─▶ marts/retention_effectiveness (dbt)
    ods/outcomes, ods/customers ─┘        │
                                          └─▶ <exports>/target_lists/<list date>/<team>.csv + manifest.json

The rules (eligibility, ranking, routing, control group, capacity, agents, actions) live in
`dagster_project.retention` and are described in docs/retention.md; this module only wires them.
The list date is the day after the run's as-of date: the extracts of day D are loaded overnight
and the teams call from the lists of D + 1.
"""

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from ... import settings
from ...exports.csv_safe import unneutralise
from ...exports.lists import (
    ListIntegrityError,
    Manifest,
    day_dir,
    make_list_id,
    read_list_file,
    read_list_rows,
    read_manifest,
    write_target_lists,
)
from ...retention import store
from ...retention.config import TEAMS_FILE, RetentionConfigError, load_config, load_teams
from ...retention.selection import EXCLUSION_REASONS, Selection, control_quota, select_targets
from ..resources import WAREHOUSE_POOL, RunSettings, Warehouse

TARGET_LISTS_KEY = dg.AssetKey(["retention", "target_list_members"])
UPSTREAM = [
    dg.AssetKey(["marts", "customer_churn_scores"]),
    dg.AssetKey(["marts", "customer_clv"]),
    dg.AssetKey(["marts", "dim_customers"]),
    dg.AssetKey(["ods", "outcomes"]),
    dg.AssetKey(["ods", "customers"]),
]
CONTROL_TOLERANCE = 0.01  # one percentage point
SAMPLE_SIZE = 20


def list_date_for(as_of: date) -> date:
    """The lists built from the data of `as_of` are called on the next day."""
    return as_of + timedelta(days=1)


def _team_table(selection: Selection) -> str:
    reasons = list(EXCLUSION_REASONS)
    head = ["team", "capacity", "eligible", "control", "control share", "listed", *reasons]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, t in selection.teams.items():
        share = t.control_share
        cells = [
            name,
            str(t.team.capacity),
            str(t.eligible),
            str(len(t.control)),
            f"{share:.2%}" if share is not None else "-",
            str(len(t.listed)),
            *(str(t.excluded.get(r, 0)) for r in reasons),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _agent_table(selection: Selection) -> str:
    lines = ["| team | agent | senior | customers |", "|---|---|---|---|"]
    for name, t in selection.teams.items():
        load = t.agent_load()
        for agent in t.team.agents:
            lines.append(f"| {name} | {agent.name} | {'yes' if agent.senior else ''} | {load[agent.name]} |")
    return "\n".join(lines)


def _unrouted_table(selection: Selection) -> str:
    lines = ["| customer_id | region | value_tier | customer_type | risk_band |", "|---|---|---|---|---|"]
    for c in selection.unrouted[:SAMPLE_SIZE]:
        lines.append(f"| {c.customer_id} | {c.region} | {c.value_tier} | {c.customer_type} | {c.risk_band} |")
    return "\n".join(lines)


@dg.asset(
    key=TARGET_LISTS_KEY,
    group_name="retention",
    deps=UPSTREAM,
    pool=WAREHOUSE_POOL,
    kinds={"python", "duckdb", "csv"},
    description=(
        "Tonight's retention target lists. Eligible: active customers at or above the team's risk band, not on the "
        "do-not-contact list, not contacted recently, not in an open case; ranked by value at risk "
        "(churn_probability x clv_365d), routed to the first matching team, control group held out, filled to "
        "capacity, dealt to agents. Records retention.target_list_members (listed and control customers) and "
        "publishes <exports>/target_lists/<list date>/<team>.csv + manifest.json (docs/retention.md)."
    ),
)
def target_lists(
    context: dg.AssetExecutionContext, warehouse: Warehouse, run_settings: RunSettings
) -> dg.MaterializeResult:
    as_of = run_settings.resolve_as_of(warehouse)
    if as_of is None:
        raise dg.Failure("No extract has been loaded yet, so there is no night to build target lists for.")
    list_date = list_date_for(as_of)
    try:
        teams_config, actions_config = load_config(settings.reference_dir())
    except RetentionConfigError as exc:
        raise dg.Failure(str(exc)) from exc

    dnc_path = store.do_not_contact_path(settings.reference_dir())
    with warehouse.connect() as con:
        try:
            inputs = store.read_inputs(con, as_of, list_date, teams_config, dnc_path)
        except store.RetentionInputError as exc:
            raise dg.Failure(str(exc)) from exc
        selection = select_targets(inputs.candidates, inputs.exclusions, teams_config, actions_config, list_date)
        written = store.write_members(con, selection, as_of, inputs.model_versions)
        listed_ids = [m.customer_id for m in selection.members if not m.is_control]
        contacts = store.read_contact_details(con, listed_ids)

    if not inputs.candidates:
        context.log.warning(
            f"no customer is scored as of {as_of} (marts.customer_churn_scores is empty): every list is empty tonight"
        )
    missing_contacts = sorted(set(listed_ids) - set(contacts))
    if missing_contacts:
        context.log.warning(
            f"{len(missing_contacts)} listed customer(s) have no current record in ods.customers (no name or phone), "
            f"e.g. {', '.join(missing_contacts[:5])}"
        )
    if selection.unrouted:
        context.log.warning(
            f"{len(selection.unrouted)} eligible customer(s) match no team in {teams_config.source} and are not "
            f"listed, e.g. {', '.join(c.customer_id for c in selection.unrouted[:5])}: add a team for them"
        )

    rows = store.export_rows(selection, contacts)
    control_counts = {name: len(t.control) for name, t in selection.teams.items()}
    eligible_counts = {name: t.eligible for name, t in selection.teams.items()}
    manifest = write_target_lists(
        list_date=list_date,
        as_of_date=as_of,
        teams=rows,
        control_counts=control_counts,
        eligible_counts=eligible_counts,
        model_versions=inputs.model_versions,
        exports_dir=settings.exports_dir(),
        run_id=context.run.run_id,
    )
    context.log.info(
        f"target lists for {list_date}: "
        + ", ".join(f"{e.team}={e.rows} (+{e.control} control of {e.eligible} eligible)" for e in manifest.teams)
    )
    return dg.MaterializeResult(
        metadata={
            "list_date": dg.MetadataValue.text(list_date.isoformat()),
            "as_of_date": dg.MetadataValue.text(as_of.isoformat()),
            "scored_customers": dg.MetadataValue.int(selection.scored),
            "eligible": dg.MetadataValue.int(sum(eligible_counts.values())),
            "listed": dg.MetadataValue.int(sum(len(r) for r in rows.values())),
            "control": dg.MetadataValue.int(sum(control_counts.values())),
            "unrouted": dg.MetadataValue.int(len(selection.unrouted)),
            "rows_per_team": dg.MetadataValue.json({e.team: e.rows for e in manifest.teams}),
            "control_per_team": dg.MetadataValue.json(control_counts),
            "eligible_per_team": dg.MetadataValue.json(eligible_counts),
            "teams": dg.MetadataValue.md(_team_table(selection)),
            "agents": dg.MetadataValue.md(_agent_table(selection)),
            "unrouted_sample": dg.MetadataValue.md(_unrouted_table(selection)),
            "do_not_contact_file": dg.MetadataValue.int(inputs.dnc_from_file),
            "do_not_contact_outcomes": dg.MetadataValue.int(inputs.dnc_from_outcomes),
            "contacted_recently": dg.MetadataValue.int(len(inputs.exclusions.contacted_recently)),
            "open_cases": dg.MetadataValue.int(len(inputs.exclusions.open_case)),
            "members_rows": dg.MetadataValue.int(written),
            "model_versions": dg.MetadataValue.json(inputs.model_versions),
            "missing_contact_details": dg.MetadataValue.int(len(missing_contacts)),
            "directory": dg.MetadataValue.path(str(manifest.directory)),
            "manifest": dg.MetadataValue.path(str(manifest.directory / "manifest.json")),
            "files": dg.MetadataValue.json({e.team: str(manifest.directory / e.file) for e in manifest.teams}),
        }
    )


# --------------------------------------------------------------------------------------------
# checks


def _checked_list_date(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> date | None:
    """The list date of the latest materialization (its metadata), else the newest in the table."""
    event = context.instance.get_latest_materialization_event(TARGET_LISTS_KEY)
    if event is not None and event.asset_materialization is not None:
        value = event.asset_materialization.metadata.get("list_date")
        if value is not None:
            return date.fromisoformat(str(value.value))
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(f"select max(list_date) from {store.MEMBERS_TABLE}").fetchall()
    return rows[0][0] if rows else None


def _members(warehouse: Warehouse, list_date: date) -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.execute(
            f"""select team, customer_id, is_control, as_of_date, churn_model_version, clv_model_version
                from {store.MEMBERS_TABLE} where list_date = ? order by team, customer_id""",
            [list_date],
        ).fetchall()


def _manifest(list_date: date) -> Manifest | None:
    try:
        return read_manifest(day_dir(settings.exports_dir(), list_date))
    except (OSError, ValueError):
        return None


def _no_night() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, metadata={"problem": "no target lists have been built yet"})


@dg.asset_check(
    asset=TARGET_LISTS_KEY,
    name="no_do_not_contact_customer_listed",
    description=(
        "No customer on the do-not-contact list (do_not_contact.csv or a do_not_contact outcome in ods.outcomes) "
        "appears in any of the night's list files."
    ),
)
def no_do_not_contact_customer_listed(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse
) -> dg.AssetCheckResult:
    list_date = _checked_list_date(context, warehouse)
    manifest = _manifest(list_date) if list_date else None
    if list_date is None or manifest is None:
        return _no_night()
    blocked = store.read_do_not_contact_file(store.do_not_contact_path(settings.reference_dir()))
    with warehouse.connect(read_only=True) as con:
        blocked |= {
            str(r[0])
            for r in con.execute(
                f"select distinct customer_id from {store.OUTCOMES_VIEW} where outcome = 'do_not_contact'"
            ).fetchall()
        }
    offenders: list[str] = []
    unreadable: list[str] = []
    checked = 0
    for entry in manifest.teams:
        try:
            found = read_list_file(settings.exports_dir(), entry.list_id)
        except ListIntegrityError:
            found = None
        if found is None:
            unreadable.append(entry.file)  # cannot vouch for it; manifest_matches_files says why
            continue
        for row in read_list_rows(found[2]):
            checked += 1
            customer_id = unneutralise(row.get("customer_id", ""))
            if customer_id in blocked:
                offenders.append(f"{entry.team}:{customer_id}")
    return dg.AssetCheckResult(
        passed=not offenders and not unreadable,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "list_date": list_date.isoformat(),
            "rows_checked": dg.MetadataValue.int(checked),
            "unreadable_files": dg.MetadataValue.json(unreadable),
            "do_not_contact_customers": dg.MetadataValue.int(len(blocked)),
            "offenders": dg.MetadataValue.int(len(offenders)),
            "offender_sample": dg.MetadataValue.json(offenders[:SAMPLE_SIZE]),
        },
    )


def control_share_findings(
    shares: Mapping[str, float], controls: Mapping[str, int], eligible: Mapping[str, int]
) -> dict[str, dict[str, object]]:
    """Per team: configured share, actual share, and whether it is within one point of the setting.

    A team so small that no whole number of customers lands within one point (e.g. 3 eligible at
    10%) passes when it holds out the nearest achievable count, round(share x eligible).
    """
    out: dict[str, dict[str, object]] = {}
    for team, share in shares.items():
        n, k = int(eligible.get(team, 0)), int(controls.get(team, 0))
        actual = k / n if n else None
        achievable = n == 0 or any(abs(j / n - share) <= CONTROL_TOLERANCE + 1e-12 for j in range(n + 1))
        within = actual is None or abs(actual - share) <= CONTROL_TOLERANCE + 1e-12
        ok = within or (not achievable and k == control_quota(n, share))
        out[team] = {"setting": share, "eligible": n, "control": k, "actual": actual, "ok": ok}
    return out


@dg.asset_check(
    asset=TARGET_LISTS_KEY,
    name="control_share_within_one_point",
    description=(
        "For every team, control customers / eligible customers is within one percentage point of the "
        "configured control_share (warns; very small teams pass with the nearest achievable count)."
    ),
)
def control_share_within_one_point(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    list_date = _checked_list_date(context, warehouse)
    manifest = _manifest(list_date) if list_date else None
    if list_date is None or manifest is None:
        return _no_night()
    config = load_teams(settings.reference_dir() / TEAMS_FILE)
    members = _members(warehouse, list_date)
    controls = {t.team: sum(1 for m in members if m[0] == t.team and m[2]) for t in manifest.teams}
    eligible = {t.team: t.eligible for t in manifest.teams}
    shares = {t.name: t.control_share for t in config.teams if manifest.team(t.name) is not None}
    findings = control_share_findings(shares, controls, eligible)
    mismatched = [t.team for t in manifest.teams if t.control != controls[t.team]]
    failing = sorted(team for team, f in findings.items() if not f["ok"])
    return dg.AssetCheckResult(
        passed=not failing and not mismatched,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "list_date": list_date.isoformat(),
            "teams": dg.MetadataValue.json(findings),
            "outside_one_point": dg.MetadataValue.json(failing),
            "manifest_control_differs_from_table": dg.MetadataValue.json(mismatched),
        },
    )


def manifest_findings(
    manifest: Manifest, team_names: tuple[str, ...], members: list[tuple], exports_dir: Path
) -> list[str]:
    """Every way the night's files, manifest and recorded membership disagree (empty = consistent)."""
    problems: list[str] = []
    entries = [t.team for t in manifest.teams]
    for team in team_names:
        if entries.count(team) != 1:
            problems.append(f"team {team}: {entries.count(team)} manifest entries (expected 1)")
    for team in sorted(set(entries) - set(team_names)):
        problems.append(f"team {team}: in the manifest but not in retention_teams.yml")
    listed: dict[str, set[str]] = {}
    for team, customer_id, is_control, *_ in members:
        if not is_control:
            listed.setdefault(team, set()).add(customer_id)
    as_of_dates = {m[3] for m in members}
    if as_of_dates and as_of_dates != {manifest.as_of_date}:
        problems.append(f"manifest as_of_date {manifest.as_of_date} but the table says {sorted(as_of_dates)}")
    churn_versions = {m[4] for m in members if not m[2]}
    clv_versions = {m[5] for m in members if not m[2]}
    if churn_versions and churn_versions != {manifest.model_versions.get("churn")}:
        problems.append(
            f"manifest churn model {manifest.model_versions.get('churn')} but the table says {churn_versions}"
        )
    if clv_versions and clv_versions != {manifest.model_versions.get("clv")}:
        problems.append(f"manifest clv model {manifest.model_versions.get('clv')} but the table says {clv_versions}")
    for entry in manifest.teams:
        if entry.list_id != make_list_id(manifest.list_date, entry.team):
            problems.append(f"team {entry.team}: list id {entry.list_id} is not the night's id")
        try:
            found = read_list_file(exports_dir, entry.list_id)
        except ListIntegrityError as exc:
            problems.append(f"team {entry.team}: {exc}")
            continue
        if found is None:
            problems.append(f"team {entry.team}: file {entry.file} is missing")
            continue
        rows = read_list_rows(found[2])
        if len(rows) != entry.rows:
            problems.append(f"team {entry.team}: manifest says {entry.rows} rows, the file has {len(rows)}")
        ids = {unneutralise(r["customer_id"]) for r in rows}
        expected = listed.get(entry.team, set())
        if ids != expected:
            problems.append(
                f"team {entry.team}: {len(ids - expected)} customer(s) in the file but not recorded as listed, "
                f"{len(expected - ids)} recorded but not in the file"
            )
        if any(r.get("list_id") != entry.list_id for r in rows):
            problems.append(f"team {entry.team}: rows with a list_id other than {entry.list_id}")
    return problems


@dg.asset_check(
    asset=TARGET_LISTS_KEY,
    name="manifest_matches_files",
    description=(
        "The night's manifest has one entry per configured team; each file exists, its sha256 and row count match "
        "the manifest, and its customers are exactly the listed customers recorded in retention.target_list_members."
    ),
)
def manifest_matches_files(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    list_date = _checked_list_date(context, warehouse)
    if list_date is None:
        return _no_night()
    manifest = _manifest(list_date)
    if manifest is None:
        return dg.AssetCheckResult(
            passed=False,
            metadata={"problem": f"no readable manifest in {day_dir(settings.exports_dir(), list_date)}"},
        )
    config = load_teams(settings.reference_dir() / TEAMS_FILE)
    problems = manifest_findings(manifest, config.team_names, _members(warehouse, list_date), settings.exports_dir())
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "list_date": list_date.isoformat(),
            "manifest": dg.MetadataValue.path(str(manifest.directory / "manifest.json")),
            "teams": dg.MetadataValue.json({t.team: {"rows": t.rows, "sha256": t.sha256} for t in manifest.teams}),
            "problems": dg.MetadataValue.json(problems),
        },
    )


export_assets = [target_lists]
export_checks = [no_do_not_contact_customer_listed, control_share_within_one_point, manifest_matches_files]
