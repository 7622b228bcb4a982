"""The target-list asset and its checks on a small hand-built warehouse: real DuckDB file, real Dagster.

The warehouse holds what the nightly run would: ODS customers and outcomes (through the real ODS
DDL), marts.dim_customers, marts.customer_clv and marts.customer_churn_scores for one as-of date.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project import settings
from dagster_project.defs.exports.assets import (
    TARGET_LISTS_KEY,
    control_share_findings,
    export_assets,
    export_checks,
)
from dagster_project.defs.resources import RunSettings, Warehouse
from dagster_project.exports.lists import LIST_COLUMNS, make_list_id, read_manifest

AS_OF = date(2026, 11, 21)
LIST_DATE = date(2026, 11, 22)
HOSTILE = '=HYPERLINK("http://x")'

TEAMS_YML = """\
defaults:
  control_share: 0.2
  control_period_days: 1
  not_contacted_within_days: 30
  case_open_days: 14
teams:
  - name: vip
    value_tiers: [vip]
    capacity: 2
    agents:
      - {name: chen.jing, senior: true}
      - sun.li
  - name: north
    regions: [north, northeast, northwest]
    capacity: 6
    agents: [li.na, wang.fang]
  - name: south
    regions: [south, southwest]
    capacity: 40
    agents: [wu.hao]
"""
# east and central match no team: their customers are reported as unrouted


def region_of(i: int) -> str:
    return ("north", "south", "east", "northeast", "southwest", "central", "northwest")[i % 7]


def build_warehouse(as_of: date = AS_OF, customers: int = 70) -> None:
    """ODS + marts for `customers` customers; customer i has churn probability falling with i."""
    with Warehouse().connect() as con:
        rows = []
        for i in range(1, customers + 1):
            cid = f"C{i:08d}"
            name = HOSTILE if i % 7 == 3 else f"客户 {i}"  # every northeast customer
            rows.append(
                (
                    cid,
                    name,
                    f"+86 138 {i:04d} 8000",
                    f"c{i}@example.cn",
                    region_of(i),
                    "individual",
                    date(2020, 1, 1),
                    "closed" if i == 9 else "active",
                    None,
                    datetime(2026, 1, 1),
                    f"customers/customers_{i}.csv",
                    2,
                    1,
                    datetime(2026, 1, 1),
                    True,
                )
            )
        if con.execute("select count(*) from ods.customers").fetchall()[0][0]:
            rows = []  # a later night: the same customers, new marts
        if rows:
            con.executemany(
                "insert into ods.customers (customer_id, full_name, phone, email, region, customer_type, signup_date, "
                "status, closed_at, updated_at, _source_file, _source_line, _load_id, _loaded_at, _is_current) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        con.execute("create schema if not exists marts")
        con.execute(
            """create or replace table marts.dim_customers as
               select customer_id, status, region, customer_type,
                      case when right(customer_id, 2) in ('01', '02', '10', '11') then 'vip' else 'ordinary' end
                          as value_tier,
                      'At Risk' as rfm_segment, 'at_risk' as lifecycle_stage, ?::date as as_of_date
               from ods.customers_current""",
            [as_of],
        )
        con.execute(
            """create or replace table marts.customer_clv as
               select customer_id, ?::date as as_of_date, 3 as frequency, 100.0 as recency, 400.0 as "T",
                      0.8 as p_alive, 2.0 as expected_purchases_365d, 500.0 as expected_avg_order_value,
                      (1000 + 10 * (100 - cast(right(customer_id, 3) as integer)))::double as clv_365d,
                      'clv-test-1' as model_version
               from ods.customers_current where customer_id <> 'C00000005'""",
            [as_of],
        )
        con.execute(
            """create or replace table marts.customer_churn_scores as
               select customer_id, ?::date as as_of_date,
                      (0.95 - cast(right(customer_id, 3) as integer) / 100.0)::double as churn_probability,
                      case when 0.95 - cast(right(customer_id, 3) as integer) / 100.0 >= 0.5 then 'high'
                           when 0.95 - cast(right(customer_id, 3) as integer) / 100.0 >= 0.2 then 'medium'
                           else 'low' end as risk_band,
                      case when cast(right(customer_id, 3) as integer) % 4 = 0 then '1 complaint still open'
                           else 'no purchase for 50 days' end as reason_1,
                      case when cast(right(customer_id, 3) as integer) % 3 = 0
                           then 'spend down 40% vs the prior 90 days' end as reason_2,
                      null::varchar as reason_3, 'churn-test-1' as model_version
               from ods.customers_current""",
            [as_of],
        )


def add_outcomes(rows: list[tuple[str, str, str, datetime, str]]) -> None:
    """(list_id, team, customer_id, contacted_at, outcome) rows, as the nightly ingestion loads them."""
    with Warehouse().connect() as con:
        con.executemany(
            "insert into ods.outcomes (list_id, team, agent, customer_id, contacted_at, outcome, note, _is_orphan, "
            "_source_file, _source_line, _load_id, _loaded_at, _is_current) "
            "values (?, ?, 'tester', ?, ?, ?, '', false, 'outcomes/outcomes_x.csv', 2, 9, now(), true)",
            rows,
        )


@pytest.fixture
def night(crm_env):
    (crm_env.reference / "retention_teams.yml").write_text(TEAMS_YML, encoding="utf-8")
    build_warehouse()
    return crm_env


def materialize(instance: dg.DagsterInstance, as_of: date = AS_OF, raise_on_error: bool = True):
    return dg.materialize(
        [*export_assets, *export_checks],
        resources={"warehouse": Warehouse(), "run_settings": RunSettings(as_of_date=as_of.isoformat())},
        instance=instance,
        raise_on_error=raise_on_error,
    )


def files(list_date: date = LIST_DATE) -> dict[str, bytes]:
    folder = settings.exports_dir() / "target_lists" / list_date.isoformat()
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".csv" or p.name == "manifest.json"}


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def members(list_date: date = LIST_DATE) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    try:
        return con.execute(
            "select team, customer_id, is_control, rank, pool_rank, agent, in_list_range, recommended_action "
            "from retention.target_list_members where list_date = ? order by team, is_control, pool_rank",
            [list_date],
        ).fetchall()
    finally:
        con.close()


def check_results(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_lists_are_written_recorded_and_checked(night):
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(instance)
    assert result.success
    out = files()
    assert set(out) == {"vip.csv", "north.csv", "south.csv", "manifest.json"}
    manifest = json.loads(out["manifest.json"])
    assert manifest["list_date"] == "2026-11-22" and manifest["as_of_date"] == "2026-11-21"
    assert manifest["model_versions"] == {"churn": "churn-test-1", "clv": "clv-test-1"}
    entries = {t["team"]: t for t in manifest["teams"]}
    for team, data in out.items():
        if team.endswith(".csv"):
            entry = entries[team[:-4]]
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
            assert entry["rows"] == len(rows_of(data))
            assert entry["list_id"] == make_list_id(LIST_DATE, entry["team"])

    vip, north = rows_of(out["vip.csv"]), rows_of(out["north.csv"])
    assert list(vip[0]) == list(LIST_COLUMNS)
    assert len(vip) == 2 and len(north) == 6  # capacities
    assert [r["rank"] for r in north] == ["1", "2", "3", "4", "5", "6"]
    # ranked by value at risk: falling churn probability and CLV with the id, so ids ascend within a team
    assert [r["customer_id"] for r in north] == sorted(r["customer_id"] for r in north)
    assert {r["agent"] for r in vip} <= {"chen.jing"}  # VIPs go to the senior agent
    assert [r["agent"] for r in north] == ["li.na", "wang.fang"] * 3
    assert all(r["list_id"] == entries["north"]["list_id"] for r in north)
    all_rows = [*vip, *north, *rows_of(out["south.csv"])]
    by_id = {r["customer_id"]: r for r in all_rows}
    assert "C00000009" not in by_id  # closed account
    assert by_id["C00000001"]["phone"] == "0086 138 0001 8000"
    hostile = [r for r in all_rows if int(r["customer_id"][1:]) % 7 == 3]
    assert hostile and all(r["full_name"] == "'" + HOSTILE for r in hostile)  # a formula name stays inert text
    for r in all_rows:
        number = int(r["customer_id"][1:])
        expected = "no purchase for 50 days" if number % 4 else "1 complaint still open"
        if number % 3 == 0:
            expected += "; spend down 40% vs the prior 90 days"
        assert r["reasons"] == expected
        if number % 4 == 0:
            assert r["recommended_action"].startswith("Complaint-recovery call")
        elif r["value_tier"] == "vip":
            assert r["recommended_action"].startswith("Personal manager call")
        elif number % 3 == 0:
            assert r["recommended_action"].startswith("Offer call")
        else:
            assert r["recommended_action"].startswith("Check-in call")
    if "C00000005" in by_id:  # no CLV row: value at risk 0, CLV cell empty
        assert by_id["C00000005"]["clv_365d"] == "" and by_id["C00000005"]["value_at_risk"] == "0.00"

    recorded = members()
    listed = {(t, c) for t, c, is_control, *_ in recorded if not is_control}
    assert listed == {
        (t.removesuffix(".csv"), r["customer_id"]) for t, d in out.items() if t.endswith(".csv") for r in rows_of(d)
    }
    control = [m for m in recorded if m[2]]
    assert all(m[3] is None and m[5] is None for m in control)
    assert {m[1] for m in control}.isdisjoint({c for _, c in listed})
    for team in ("vip", "north", "south"):
        assert entries[team]["control"] == sum(1 for m in control if m[0] == team)

    meta = result.asset_materializations_for_node("retention__target_list_members")[0].metadata
    assert meta["list_date"].value == "2026-11-22"
    assert meta["rows_per_team"].value == {"vip": 2, "north": 6, "south": entries["south"]["rows"]}
    assert meta["unrouted"].value > 0  # east and central customers
    assert meta["eligible_per_team"].value == {t: entries[t]["eligible"] for t in entries}
    assert Path(meta["manifest"].value).exists()
    checks = check_results(result)
    assert set(checks) == {
        "no_do_not_contact_customer_listed",
        "control_share_within_one_point",
        "manifest_matches_files",
    }
    assert checks["no_do_not_contact_customer_listed"].passed
    assert checks["manifest_matches_files"].passed, checks["manifest_matches_files"].metadata


def test_rerunning_the_night_gives_byte_identical_files_and_one_copy_of_the_members(night):
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(instance)
        first, first_members = files(), members()
        publish = (settings.exports_dir() / "target_lists" / "2026-11-22" / "publish.json").read_text()
        materialize(instance)
    assert files() == first
    assert members() == first_members
    assert json.loads(publish)["run_id"]  # publish.json is the one file that changes per run


def test_do_not_contact_contacted_and_open_cases_are_left_out(night):
    dnc = night.reference / "do_not_contact.csv"
    dnc.write_text(
        "customer_id,added_at,source,added_by,note\nC00000001,2026-11-01 10:00:00,manual,ops,asked by letter\n"
        "C00000002,2026-11-01 10:00:00,manual,ops,\n",
        encoding="utf-8",
    )
    old_list = make_list_id(date(2026, 11, 1), "north")
    add_outcomes(
        [
            (old_list, "north", "C00000004", datetime(2026, 10, 20, 10), "do_not_contact"),  # long ago, still blocks
            (old_list, "north", "C00000008", datetime(2026, 11, 10, 10), "unreachable"),  # an attempt counts
            (old_list, "north", "C00000011", datetime(2026, 10, 15, 10), "declined"),  # 38 days ago: may be listed
            (old_list, "north", "C00000015", datetime(2026, 11, 22, 9), "retained"),  # on the list date: not before it
        ]
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(instance)
        listed = {m[1] for m in members() if not m[2]}
        assert not listed & {"C00000001", "C00000002", "C00000004", "C00000008"}
        assert {"C00000011", "C00000015"} <= {m[1] for m in members()}
        assert check_results(result)["no_do_not_contact_customer_listed"].passed
        meta = result.asset_materializations_for_node("retention__target_list_members")[0].metadata
        assert meta["do_not_contact_file"].value == 2 and meta["do_not_contact_outcomes"].value == 1

        # the next night: yesterday's listed customers without an outcome are in an open case
        build_warehouse(AS_OF + timedelta(days=1))
        materialize(instance, AS_OF + timedelta(days=1))
        yesterday = {m[1] for m in members() if not m[2]}
        today = {m[1] for m in members(LIST_DATE + timedelta(days=1)) if not m[2]}
        assert yesterday and not (yesterday & today)
        # 15 days later the case has expired (case_open_days 14) and they may be listed again
        build_warehouse(AS_OF + timedelta(days=15))
        materialize(instance, AS_OF + timedelta(days=15))
        later = {m[1] for m in members(LIST_DATE + timedelta(days=15)) if not m[2]}
        assert yesterday & later


def test_the_manifest_check_notices_a_file_edited_after_publishing(night):
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(instance)
        north = settings.exports_dir() / "target_lists" / "2026-11-22" / "north.csv"
        north.write_bytes(north.read_bytes().replace(b"\r\n", b"\n"))  # "saved" by an editor
        result = dg.materialize(
            export_checks,
            resources={"warehouse": Warehouse(), "run_settings": RunSettings()},
            instance=instance,
            selection=dg.AssetSelection.checks_for_assets(TARGET_LISTS_KEY),
        )
    check = check_results(result)["manifest_matches_files"]
    assert not check.passed
    assert any("north.csv: contents do not match the sha256" in p for p in check.metadata["problems"].value)


def test_a_late_do_not_contact_fails_the_check(night):
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(instance)
        first = rows_of(files()["north.csv"])[0]["customer_id"]
        with (night.reference / "do_not_contact.csv").open("a", encoding="utf-8") as fh:
            fh.write(f"{first},2026-11-22 08:00:00,manual,ops,called in this morning\n")
        result = dg.materialize(
            export_checks,
            resources={"warehouse": Warehouse(), "run_settings": RunSettings()},
            instance=instance,
            selection=dg.AssetSelection.checks_for_assets(TARGET_LISTS_KEY),
        )
    check = check_results(result)["no_do_not_contact_customer_listed"]
    assert not check.passed and check.metadata["offender_sample"].value == [f"north:{first}"]


def test_stale_scores_and_a_broken_config_stop_the_night_with_a_clear_error(night):
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(instance, AS_OF + timedelta(days=1), raise_on_error=False)
        assert not result.success
        error = result.get_step_failure_events()[0].event_specific_data.error.message
        assert "marts.customer_churn_scores holds rows as of 2026-11-21, not the night's as-of date 2026-11-22" in error

        (night.reference / "retention_teams.yml").write_text(TEAMS_YML.replace("capacity: 6", "capacity: six"))
        result = materialize(instance, raise_on_error=False)
        error = result.get_step_failure_events()[0].event_specific_data.error.message
        assert "retention_teams.yml:15: teams[1].capacity: must be a whole number" in error
    assert not (settings.exports_dir() / "target_lists" / "2026-11-22").exists()


def test_no_scores_yet_gives_header_only_lists(night):
    with Warehouse().connect() as con:
        con.execute("delete from marts.customer_churn_scores")
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(instance)
    manifest = read_manifest(settings.exports_dir() / "target_lists" / "2026-11-22")
    assert sorted((t.team, t.rows, t.eligible) for t in manifest.teams) == [
        ("north", 0, 0),
        ("south", 0, 0),
        ("vip", 0, 0),
    ]
    assert all(check.passed for check in check_results(result).values())


def test_control_share_findings_allow_the_nearest_count_for_tiny_teams():
    findings = control_share_findings(
        {"big": 0.1, "tiny": 0.1, "off": 0.1, "empty": 0.1},
        {"big": 100, "tiny": 0, "off": 80, "empty": 0},
        {"big": 1000, "tiny": 3, "off": 1000, "empty": 0},
    )
    assert {team: f["ok"] for team, f in findings.items()} == {"big": True, "tiny": True, "off": False, "empty": True}
