"""Retention target lists end to end: generated extracts, two real nightly runs, the portal's upload
code, real Dagster, real dbt, real DuckDB.

Night 1 (as of 2026-10-31, lists for 2026-11-01): lists for every team, a byte-identical re-run.
An agent uploads outcomes through the portal's code path (validation, do-not-contact file, inbox
extract). Night 2 (the latest extracts, lists for 2026-11-22) loads them into ods.outcomes: nobody
marked do-not-contact or contacted in the last 30 days is listed again, and
marts.retention_effectiveness counts what was reported.

The churn scores come from a fixture (the scoring asset lands separately): a plausible score per
active customer from its own recency, complaints and calls, with plain-language reasons. CLV is
the real marts.customer_clv asset, run by the nightly job.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
from dagster_dbt import DbtCliResource
from e2e_home import project_home, query

from dagster_project import settings
from dagster_project.defs.dbt.project import DBT_DIR, dbt_executable, dbt_project, ensure_manifest
from dagster_project.defs.exports.assets import export_assets, export_checks
from dagster_project.defs.ops.publish import publish_marts
from dagster_project.defs.resources import RunSettings, Warehouse
from dagster_project.demo import GeneratorConfig, generate
from dagster_project.exports.lists import make_list_id
from dagster_project.portal.outcomes import ListCache, process_upload
from dagster_project.portal.report import load_report
from dagster_project.retention.config import load_teams
from dagster_project.runner import run_nightly

pytestmark = pytest.mark.slow

END = date(2026, 11, 21)
FIRST_NIGHT = date(2026, 10, 31)
FIRST_LIST = date(2026, 11, 1)
SECOND_LIST = date(2026, 11, 22)
HOSTILE = '=HYPERLINK("http://x")'


# --------------------------------------------------------------------------------------------
# fixture inputs


def inject_hostile_names(inbox: Path, through: date, every: int = 6) -> set[str]:
    """A later version of every `every`-th active customer, named like a spreadsheet formula."""
    latest: dict[str, dict[str, str]] = {}
    for path in sorted((inbox / "customers").glob("customers_*.csv")):
        if path.name[10:18] > through.strftime("%Y%m%d"):
            continue
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["customer_id"] not in latest or row["updated_at"] >= latest[row["customer_id"]]["updated_at"]:
                    latest[row["customer_id"]] = row
    chosen = [r for cid, r in sorted(latest.items()) if r["status"] == "active"][::every]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(chosen[0]), lineterminator="\n")
    writer.writeheader()
    for row in chosen:
        writer.writerow({**row, "full_name": HOSTILE, "updated_at": f"{through.isoformat()} 23:00:00"})
    (inbox / "customers" / f"customers_{through:%Y%m%d}_renamed.csv").write_text(out.getvalue(), encoding="utf-8")
    return {r["customer_id"] for r in chosen}


def write_fixture_scores(as_of: date) -> int:
    """marts.customer_churn_scores for every active customer as of `as_of` (the scoring asset's contract)."""
    con = duckdb.connect(str(settings.warehouse_path()))
    try:
        customers = con.execute(
            """select customer_id, open_complaints, calls_90d, ?::date - last_purchase_date
               from marts.dim_customers where status = 'active' and as_of_date = ? order by customer_id""",
            [as_of, as_of],
        ).fetchall()
        records = []
        for customer_id, open_complaints, calls, days in customers:
            noise = int(hashlib.sha256(customer_id.encode()).hexdigest()[:8], 16) / 2**32
            idle = 365 if days is None else days
            p = min(
                0.97,
                0.05
                + 0.45 * min(idle, 180) / 180
                + 0.12 * min(open_complaints, 2)
                + 0.04 * min(calls, 3)
                + 0.3 * noise,
            )
            reasons = []
            if open_complaints:
                reasons.append(f"{open_complaints} complaint{'s' if open_complaints > 1 else ''} still open")
            if idle > 30:
                reasons.append(f"no purchase for {idle:,} days" if days is not None else "no purchase on record")
            if noise > 0.85:
                reasons.append("asked to cancel 1 time in 90 days")
            elif noise < 0.15:
                reasons.append("spend down 40% vs the prior 90 days")
            if calls >= 3:
                reasons.append(f"called {calls} times in 90 days")
            reasons = (reasons + [None, None, None])[:3]
            band = "high" if p >= 0.5 else "medium" if p >= 0.2 else "low"
            records.append(
                {
                    "customer_id": customer_id,
                    "as_of_date": as_of,
                    "churn_probability": p,
                    "risk_band": band,
                    "reason_1": reasons[0],
                    "reason_2": reasons[1],
                    "reason_3": reasons[2],
                    "model_version": f"fixture-churn-{as_of:%Y%m%d}",
                }
            )
        con.register("scores", pa.Table.from_pylist(records))
        con.execute("create or replace table marts.customer_churn_scores as select * from scores")
        con.unregister("scores")
        return len(records)
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# running things


def build_lists(instance: dg.DagsterInstance, as_of: date | None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*export_assets, *export_checks],
        resources={
            "warehouse": Warehouse(),
            "run_settings": RunSettings(as_of_date=as_of.isoformat() if as_of else None),
        },
        instance=instance,
    )


def build_effectiveness(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from dagster_project.defs.dbt.assets import dbt_layers

    layer = next(a for a in dbt_layers if a.op.name == "dbt_retention_marts")
    return dg.materialize(
        [layer],
        resources={
            "warehouse": Warehouse(),
            "run_settings": RunSettings(),
            "dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()),
        },
        instance=instance,
    )



def day_files(list_date: date) -> dict[str, bytes]:
    folder = settings.exports_dir() / "target_lists" / list_date.isoformat()
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".csv" or p.name == "manifest.json"}


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def listed_ids(list_date: date) -> set[str]:
    return {
        r["customer_id"] for name, data in day_files(list_date).items() if name.endswith(".csv") for r in rows_of(data)
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    with project_home(tmp_path_factory.mktemp("retention")) as root:
        generate(
            GeneratorConfig(
                out_dir=settings.inbox_dir(),
                truth_dir=settings.ground_truth_dir(),
                customers=600,
                days=150,
                seed=5,
                end_date=END,
            )
        )
        hostile = inject_hostile_names(settings.inbox_dir(), FIRST_NIGHT)
        state: dict = {"root": root, "hostile": hostile}

        # night 1
        state["night1"] = run_nightly(as_of_date=FIRST_NIGHT)
        assert {"ods/outcomes", "marts/dim_customers", "marts/customer_clv"} <= set(state["night1"].materialized)
        ensure_manifest()
        with dg.DagsterInstance.ephemeral() as instance:
            state["scored1"] = write_fixture_scores(FIRST_NIGHT)
            state["clv_version1"] = query("select distinct model_version from marts.customer_clv")[0][0]
            state["lists1"] = build_lists(instance, FIRST_NIGHT)
            state["files1"] = day_files(FIRST_LIST)
            state["rerun1"] = build_lists(instance, FIRST_NIGHT)
            state["files1_again"] = day_files(FIRST_LIST)

        # the teams report back through the portal's upload code
        state["uploads"] = upload_outcomes()

        # night 2
        state["night2"] = run_nightly()
        assert "ods/outcomes" in state["night2"].materialized
        with dg.DagsterInstance.ephemeral() as instance:
            state["scored2"] = write_fixture_scores(END)
            state["lists2"] = build_lists(instance, None)
            state["effectiveness"] = build_effectiveness(instance)
        publish_marts(run_id="retention-e2e")  # what analysts and the portal read
        yield state


def upload_outcomes() -> dict:
    """Per team with at least 4 rows: do_not_contact, retained, declined, unreachable for its first four."""
    cache = ListCache()
    outcomes = ("do_not_contact", "retained", "declined", "unreachable")
    uploaded: dict = {"rows": [], "results": [], "manual_dnc": None}
    for team in load_teams(settings.reference_dir() / "retention_teams.yml").team_names:
        lists = cache.team_lists(settings.exports_dir(), team, today=date(2026, 11, 2))
        list_id = make_list_id(FIRST_LIST, team)
        assert list_id in lists.list_dates
        data = day_files(FIRST_LIST)[f"{team}.csv"]
        rows = rows_of(data)
        if len(rows) < 5:
            continue
        lines = ["customer_id,contacted_at,outcome,note,list_id"]
        for row, outcome in zip(rows, outcomes, strict=False):
            lines.append(f"{row['customer_id']},2026-11-02 10:30,{outcome},called from the list,{list_id}")
            uploaded["rows"].append((team, row["agent"], row["customer_id"], outcome))
        agent = rows[0]["agent"]
        result = process_upload(
            ("\n".join(lines) + "\n").encode("utf-8"),
            team_lists=lists,
            agent=agent,
            inbox_dir=settings.inbox_dir(),
            reference_dir=settings.reference_dir(),
            now=datetime(2026, 11, 2, 18, 0),
        )
        uploaded["results"].append(result)
        if uploaded["manual_dnc"] is None:
            uploaded["manual_dnc"] = rows[4]["customer_id"]  # listed, not called: blocked by hand below
    # Somebody tidies do_not_contact.csv in Excel and drops the portal's rows, but adds one by hand:
    # the portal's do-not-contact customers must still be blocked, through ods.outcomes.
    dnc = settings.reference_dir() / "do_not_contact.csv"
    dnc.write_text(
        f"customer_id,added_at,source,added_by,note\n{uploaded['manual_dnc']},2026-11-03 09:00:00,letter,ops,\n",
        encoding="utf-8",
    )
    return uploaded


# --------------------------------------------------------------------------------------------
# night 1


def test_night_one_writes_a_list_for_every_team_with_a_correct_manifest(pipeline):
    assert pipeline["lists1"].success
    teams = load_teams(settings.reference_dir() / "retention_teams.yml")
    files = pipeline["files1"]
    assert set(files) == {f"{t}.csv" for t in teams.team_names} | {"manifest.json"}
    manifest = json.loads(files["manifest.json"])
    assert manifest["list_date"] == FIRST_LIST.isoformat() and manifest["as_of_date"] == FIRST_NIGHT.isoformat()
    assert manifest["model_versions"] == {"churn": "fixture-churn-20261031", "clv": pipeline["clv_version1"]}
    total = 0
    for entry in manifest["teams"]:
        data = files[entry["file"]]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        rows = rows_of(data)
        assert len(rows) == entry["rows"] <= teams.team(entry["team"]).capacity
        assert entry["eligible"] >= entry["rows"] + entry["control"]
        total += len(rows)
        value_at_risk = [float(r["value_at_risk"]) for r in rows]
        assert value_at_risk == sorted(value_at_risk, reverse=True)  # best first
        agents = {a.name for a in teams.team(entry["team"]).agents}
        assert {r["agent"] for r in rows} <= agents
    assert total > 20
    members = query(
        "select count(*) filter (where not is_control), count(*) filter (where is_control) "
        "from retention.target_list_members where list_date = ?",
        [FIRST_LIST],
    )[0]
    assert members == (total, sum(e["control"] for e in manifest["teams"]))
    checks = {e.check_name: e.passed for e in pipeline["lists1"].get_asset_check_evaluations()}
    assert checks["no_do_not_contact_customer_listed"] and checks["manifest_matches_files"]


def test_rerunning_night_one_reproduces_byte_identical_files(pipeline):
    assert pipeline["rerun1"].success
    assert pipeline["files1_again"] == pipeline["files1"]


def test_customer_names_that_look_like_formulas_stay_inert_text(pipeline):
    rows = [r for name, data in pipeline["files1"].items() if name.endswith(".csv") for r in rows_of(data)]
    hostile_rows = [r for r in rows if r["customer_id"] in pipeline["hostile"]]
    assert hostile_rows, "no renamed customer made it onto a list; inject more"
    assert all(r["full_name"] == "'" + HOSTILE for r in hostile_rows)
    raw = b"".join(data for name, data in pipeline["files1"].items() if name.endswith(".csv"))
    assert b',"\'=HYPERLINK(""http://x"")",' in raw  # prefixed, then quoted with doubled quotes: text in Excel
    assert b",=HYPERLINK" not in raw and b',"=HYPERLINK' not in raw
    # every renamed version was loaded (a later genuine update may have renamed a customer back since)
    assert query("select count(distinct customer_id) from ods.customers where full_name = ?", [HOSTILE]) == [
        (len(pipeline["hostile"]),)
    ]


# --------------------------------------------------------------------------------------------
# outcomes back in, night 2


def test_uploads_are_accepted_and_loaded_by_the_next_night(pipeline):
    uploads = pipeline["uploads"]
    assert uploads["results"] and all(r.status == "accepted" for r in uploads["results"])
    assert sum(r.do_not_contact_added for r in uploads["results"]) == len(uploads["results"])
    loaded = query("select customer_id, outcome from ods.outcomes_current")
    assert sorted(loaded) == sorted((c, o) for _, _, c, o in uploads["rows"])


def test_do_not_contact_and_recently_contacted_customers_are_not_listed_again(pipeline):
    assert pipeline["lists2"].success
    uploads = pipeline["uploads"]
    second = listed_ids(SECOND_LIST)
    assert second, "night 2 listed nobody"
    blocked = {c for _, _, c, o in uploads["rows"] if o == "do_not_contact"}
    contacted = {c for _, _, c, o in uploads["rows"] if o != "do_not_contact"}
    assert blocked and not (blocked & second)  # only ods.outcomes remembers them now
    assert uploads["manual_dnc"] not in second  # the hand-kept do_not_contact.csv row
    assert contacted and not (contacted & second)  # contacted on 2026-11-02, 20 days before the list
    recorded = {
        r[0]
        for r in query(
            "select customer_id from retention.target_list_members where list_date = ? and not is_control",
            [SECOND_LIST],
        )
    }
    assert recorded == second
    meta = pipeline["lists2"].asset_materializations_for_node("retention__target_list_members")[0].metadata
    assert meta["do_not_contact_outcomes"].value == len(blocked)
    assert meta["contacted_recently"].value == len(uploads["rows"])
    checks = {e.check_name: e.passed for e in pipeline["lists2"].get_asset_check_evaluations()}
    assert checks["no_do_not_contact_customer_listed"] and checks["manifest_matches_files"]


def test_retention_effectiveness_counts_what_the_teams_reported(pipeline):
    assert pipeline["effectiveness"].success
    uploads = pipeline["uploads"]
    rows = query(
        """select team, agent, listed, contacted, reached, self_reported_retained, is_window_complete,
                  churn_rate_contacted, churn_rate_control, uplift, uplift_ci_low
           from marts.retention_effectiveness where list_date = ? order by team, agent nulls first""",
        [FIRST_LIST],
    )
    listed = dict(
        query(
            "select team, count(*) from retention.target_list_members "
            "where list_date = ? and not is_control group by team",
            [FIRST_LIST],
        )
    )
    by_key = {(r[0], r[1]): r for r in rows}
    for team, count in listed.items():
        team_row = by_key[(team, None)]
        reported = [u for u in uploads["rows"] if u[0] == team]
        assert team_row[2] == count
        assert team_row[3:6] == (
            len(reported),
            sum(1 for u in reported if u[3] in ("retained", "declined", "do_not_contact")),
            sum(1 for u in reported if u[3] == "retained"),
        )
        # one row per agent of the team who had customers, adding up to the team row
        agent_rows = [r for (t, a), r in by_key.items() if t == team and a is not None]
        assert sum(r[2] for r in agent_rows) == count and sum(r[3] for r in agent_rows) == len(reported)
        for agent in {u[1] for u in reported}:  # contacted counts go to the agent the customer was assigned to
            assert by_key[(team, agent)][3] == sum(1 for u in reported if u[1] == agent)
    # the 90-day churn window after 2026-10-31 has not ended by 2026-11-21: no churn figures yet
    assert all(r[6] is False and r[7] is None and r[8] is None and r[9] is None and r[10] is None for r in rows)
    assert query("select count(distinct list_date) from marts.retention_effectiveness")[0][0] == 2


def test_the_portal_report_shows_the_counts_from_the_published_marts(pipeline):
    uploads = pipeline["uploads"]
    team = uploads["rows"][0][0]
    report = load_report(settings.published_path(), team)
    assert report.status == "ok", report.message
    team_row = next(r for r in report.rows if r["list_date"] == FIRST_LIST and r["agent"] is None)
    reported = [u for u in uploads["rows"] if u[0] == team]
    assert (team_row["contacted"], team_row["self_reported_retained"]) == (
        len(reported),
        sum(1 for u in reported if u[3] == "retained"),
    )
    assert {r["team"] for r in report.rows} == {team}
