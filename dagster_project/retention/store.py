"""The warehouse side of the target lists: read tonight's inputs, record the membership, build file rows.

Inputs (all as of the night's as-of date):

* `marts.customer_churn_scores`: churn probability, risk band, reasons, model version;
* `marts.customer_clv`: clv_365d and model version (a customer without a row counts 0);
* `marts.dim_customers`: status, region, value tier, customer type, RFM segment, lifecycle stage;
* `ods.outcomes_current`: contacts reported through the portal (do-not-contact, recent contacts,
  open cases);
* `<reference>/do_not_contact.csv`: the do-not-contact list people and the portal maintain;
* `ods.customers_current`: name and phone, read only for the customers written to the files.

The membership is recorded in `retention.target_list_members`, one row per list date and customer
(listed or control); a re-run of a list date replaces that date's rows in one transaction.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from dagster_project.exports.csv_safe import unneutralise
from dagster_project.exports.lists import make_list_id
from dagster_project.portal.outcomes import DNC_COLUMNS, DNC_NAME
from dagster_project.retention.config import TeamsConfig
from dagster_project.retention.selection import Candidate, Exclusions, Member, Selection

log = logging.getLogger(__name__)

SCHEMA = "retention"
MEMBERS_TABLE = f"{SCHEMA}.target_list_members"
SCORES_TABLE = "marts.customer_churn_scores"
CLV_TABLE = "marts.customer_clv"
CUSTOMERS_TABLE = "marts.dim_customers"
OUTCOMES_VIEW = "ods.outcomes_current"

MEMBER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("list_date", "DATE NOT NULL", "Date the lists are for (the day after the as-of date)."),
    ("list_id", "VARCHAR NOT NULL", "List id TL-<YYYYMMDD>-<team>-<hex>, as in the file and the portal."),
    ("team", "VARCHAR NOT NULL", "Retention team the customer was routed to."),
    ("customer_id", "VARCHAR NOT NULL", "Customer."),
    ("is_control", "BOOLEAN NOT NULL", "Held out as control: not on the file, not called."),
    ("in_list_range", "BOOLEAN NOT NULL", "Listed, or a control customer who would have been listed."),
    ("rank", "INTEGER", "Position in the team's list file (1 = call first); null for control customers."),
    ("pool_rank", "INTEGER NOT NULL", "Rank among the team's eligible customers by value at risk."),
    ("agent", "VARCHAR", "Agent the customer is assigned to; null for control customers."),
    ("control_draw", "DOUBLE NOT NULL", "Uniform [0, 1) draw from sha256(customer id | control period start)."),
    ("region", "VARCHAR", "Region as of the as-of date."),
    ("value_tier", "VARCHAR", "Value tier as of the as-of date."),
    ("customer_type", "VARCHAR", "individual or business."),
    ("rfm_segment", "VARCHAR", "RFM segment as of the as-of date."),
    ("lifecycle_stage", "VARCHAR", "Lifecycle stage as of the as-of date."),
    ("risk_band", "VARCHAR", "Churn risk band (high, medium, low)."),
    ("churn_probability", "DOUBLE", "Churn probability in the 90 days after the as-of date."),
    ("clv_365d", "DOUBLE", "Predicted 365-day customer lifetime value (null: no CLV row)."),
    ("value_at_risk", "DOUBLE", "churn_probability x clv_365d (missing CLV counts 0)."),
    ("reason_1", "VARCHAR", "First churn reason, plain language."),
    ("reason_2", "VARCHAR", "Second churn reason."),
    ("reason_3", "VARCHAR", "Third churn reason."),
    ("recommended_action", "VARCHAR", "Recommended action (retention_actions.yml)."),
    ("action_rule", "VARCHAR", "Name of the action rule that matched ('default' if none)."),
    ("as_of_date", "DATE NOT NULL", "As-of date of the scores, CLV and customer data used."),
    ("churn_model_version", "VARCHAR", "Churn model version of the scores."),
    ("clv_model_version", "VARCHAR", "CLV model version."),
)


class RetentionInputError(RuntimeError):
    """An input of the target lists is missing or does not describe the night's as-of date."""


@dataclass(frozen=True)
class Inputs:
    candidates: list[Candidate]
    exclusions: Exclusions
    model_versions: dict[str, str]
    dnc_from_file: int
    dnc_from_outcomes: int


# --------------------------------------------------------------------------------------------
# reading


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    rows = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
    ).fetchall()
    return bool(rows[0][0])


def _require(con: duckdb.DuckDBPyConnection, table: str, producer: str) -> None:
    if not _table_exists(con, table):
        raise RetentionInputError(f"{table} does not exist: materialize {producer} before the target lists")


def _check_as_of(con: duckdb.DuckDBPyConnection, table: str, as_of: date, producer: str) -> int:
    """Rows of `table` at `as_of`; raises when the table holds rows of other dates only."""
    [(total, at_date, dates)] = con.execute(
        f"select count(*), count(*) filter (where as_of_date = ?), list(distinct as_of_date order by as_of_date) "
        f"from {table}",
        [as_of],
    ).fetchall()
    if total and not at_date:
        shown = ", ".join(str(d) for d in (dates or [])[:5])
        raise RetentionInputError(
            f"{table} holds rows as of {shown}, not the night's as-of date {as_of}: re-run {producer} for this night"
        )
    return int(at_date)


def _versions(con: duckdb.DuckDBPyConnection, table: str, as_of: date) -> str:
    rows = con.execute(
        f"select distinct model_version from {table} where as_of_date = ? and model_version is not null order by 1",
        [as_of],
    ).fetchall()
    return ",".join(str(r[0]) for r in rows) or "none"


def read_candidates(con: duckdb.DuckDBPyConnection, as_of: date) -> tuple[list[Candidate], dict[str, str]]:
    """Every customer scored as of `as_of`, with CLV and segments; and the model versions used."""
    _require(con, SCORES_TABLE, "marts/customer_churn_scores")
    _require(con, CLV_TABLE, "marts/customer_clv")
    _require(con, CUSTOMERS_TABLE, "the dbt marts (marts/dim_customers)")
    _check_as_of(con, SCORES_TABLE, as_of, "marts/customer_churn_scores")
    _check_as_of(con, CLV_TABLE, as_of, "marts/customer_clv")
    _check_as_of(con, CUSTOMERS_TABLE, as_of, "the dbt marts")
    rows = con.execute(
        f"""select s.customer_id, s.churn_probability, s.risk_band, c.clv_365d, d.status, d.region, d.value_tier,
                   d.customer_type, d.rfm_segment, d.lifecycle_stage, s.reason_1, s.reason_2, s.reason_3
            from {SCORES_TABLE} as s
            left join {CUSTOMERS_TABLE} as d on d.customer_id = s.customer_id
            left join {CLV_TABLE} as c on c.customer_id = s.customer_id and c.as_of_date = s.as_of_date
            where s.as_of_date = ? and s.churn_probability is not null and not isnan(s.churn_probability)
            order by s.customer_id""",
        [as_of],
    ).fetchall()
    candidates = [
        Candidate(
            customer_id=str(r[0]),
            churn_probability=float(r[1]),
            risk_band=str(r[2]) if r[2] is not None else "",
            clv_365d=float(r[3]) if r[3] is not None and r[3] == r[3] else None,
            status=r[4],
            region=r[5],
            value_tier=r[6],
            customer_type=r[7],
            rfm_segment=r[8],
            lifecycle_stage=r[9],
            reasons=tuple(str(x) for x in r[10:13] if x is not None and str(x).strip()),
        )
        for r in rows
    ]
    versions = {"churn": _versions(con, SCORES_TABLE, as_of), "clv": _versions(con, CLV_TABLE, as_of)}
    return candidates, versions


def do_not_contact_path(reference_dir: Path) -> Path:
    """The do-not-contact CSV the portal appends to (`<reference>/do_not_contact.csv`)."""
    return Path(reference_dir) / DNC_NAME


def read_do_not_contact_file(path: Path) -> set[str]:
    """Customer ids of the do-not-contact CSV (the portal's format); a missing file is an empty list.

    Raises RetentionInputError when the header is not `customer_id,added_at,source,added_by,note`:
    lists must never be published while the do-not-contact list cannot be read.
    """
    path = Path(path)
    if not path.exists():
        log.warning("%s does not exist: no customer is on the do-not-contact file", path)
        return set()
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RetentionInputError(f"{path}: not UTF-8 ({exc}); save it as 'CSV UTF-8' in Excel") from exc
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return set()
    header = tuple(h.strip().lower() for h in rows[0])
    if header != DNC_COLUMNS:
        raise RetentionInputError(
            f"{path}: line 1: header is {','.join(rows[0])!r}, expected {','.join(DNC_COLUMNS)}; fix the file by hand"
        )
    return {unneutralise(r[0].strip()) for r in rows[1:] if r and r[0].strip()}


def ensure_members_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    columns = ",\n    ".join(f"{name} {sql_type}" for name, sql_type, _ in MEMBER_COLUMNS)
    con.execute(f"create table if not exists {MEMBERS_TABLE} (\n    {columns}\n)")


def read_exclusions(
    con: duckdb.DuckDBPyConnection, list_date: date, config: TeamsConfig, dnc_path: Path
) -> tuple[Exclusions, int, int]:
    """(exclusions, customers on the DNC file, customers with a do_not_contact outcome).

    * do-not-contact: the CSV plus every `do_not_contact` outcome in the ODS, whenever reported;
    * contacted recently: any outcome (an attempt counts, unreachable too) with contacted_at in the
      `not_contacted_within_days` days before the list date;
    * open case: listed (not control) on a list dated in the `case_open_days` days before the list
      date, with no outcome reported for that list yet.

    Only outcomes before the list date count for the last two, so re-running a night reproduces
    its lists even after that day's outcomes have been loaded.
    """
    ensure_members_table(con)
    from_file = read_do_not_contact_file(dnc_path)
    from_outcomes = {
        str(r[0])
        for r in con.execute(
            f"select distinct customer_id from {OUTCOMES_VIEW} where outcome = 'do_not_contact'"
        ).fetchall()
    }
    contacted = {
        str(r[0])
        for r in con.execute(
            f"""select distinct customer_id from {OUTCOMES_VIEW}
                where contacted_at >= ?::date - ?::integer and contacted_at < ?::date""",
            [list_date, config.not_contacted_within_days, list_date],
        ).fetchall()
    }
    open_case = {
        str(r[0])
        for r in con.execute(
            f"""select distinct m.customer_id from {MEMBERS_TABLE} as m
                where not m.is_control and m.list_date < ?::date and m.list_date >= ?::date - ?::integer
                  and not exists (
                      select 1 from {OUTCOMES_VIEW} as o
                      where o.list_id = m.list_id and o.customer_id = m.customer_id and o.contacted_at < ?::date)""",
            [list_date, list_date, config.case_open_days, list_date],
        ).fetchall()
    }
    exclusions = Exclusions(
        do_not_contact=frozenset(from_file | from_outcomes),
        contacted_recently=frozenset(contacted),
        open_case=frozenset(open_case),
    )
    return exclusions, len(from_file), len(from_outcomes)


def read_inputs(
    con: duckdb.DuckDBPyConnection, as_of: date, list_date: date, config: TeamsConfig, dnc_path: Path
) -> Inputs:
    candidates, versions = read_candidates(con, as_of)
    exclusions, from_file, from_outcomes = read_exclusions(con, list_date, config, dnc_path)
    return Inputs(candidates, exclusions, versions, from_file, from_outcomes)


# --------------------------------------------------------------------------------------------
# writing the membership


def _member_record(m: Member, list_date: date, as_of: date, versions: Mapping[str, str]) -> dict[str, object]:
    c = m.candidate
    reasons = list(c.reasons) + [None] * (3 - len(c.reasons))
    return {
        "list_date": list_date,
        "list_id": make_list_id(list_date, m.team),
        "team": m.team,
        "customer_id": c.customer_id,
        "is_control": m.is_control,
        "in_list_range": m.in_list_range,
        "rank": m.rank,
        "pool_rank": m.pool_rank,
        "agent": m.agent,
        "control_draw": m.control_draw,
        "region": c.region,
        "value_tier": c.value_tier,
        "customer_type": c.customer_type,
        "rfm_segment": c.rfm_segment,
        "lifecycle_stage": c.lifecycle_stage,
        "risk_band": c.risk_band,
        "churn_probability": c.churn_probability,
        "clv_365d": c.clv_365d,
        "value_at_risk": c.value_at_risk,
        "reason_1": reasons[0],
        "reason_2": reasons[1],
        "reason_3": reasons[2],
        "recommended_action": m.recommended_action,
        "action_rule": m.action_rule,
        "as_of_date": as_of,
        "churn_model_version": versions.get("churn"),
        "clv_model_version": versions.get("clv"),
    }


_ARROW_TYPES = {
    "DATE": pa.date32(),
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
}


def write_members(
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    as_of: date,
    versions: Mapping[str, str],
) -> int:
    """Replace the rows of `selection.list_date` in retention.target_list_members; returns rows written.

    One transaction: a delete, then (only when there are rows) a single insert, so a reader never
    sees half a night and a re-run of the night leaves exactly one copy of it.
    """
    ensure_members_table(con)
    members = sorted(selection.members, key=lambda m: (m.team, m.is_control, m.pool_rank))
    records = [_member_record(m, selection.list_date, as_of, versions) for m in members]
    schema = pa.schema([(name, _ARROW_TYPES[sql_type.split()[0]]) for name, sql_type, _ in MEMBER_COLUMNS])
    table = pa.Table.from_pylist(records, schema=schema)
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {MEMBERS_TABLE} where list_date = ?", [selection.list_date])
        if records:
            con.register("target_list_members_frame", table)
            try:
                con.execute(f"insert into {MEMBERS_TABLE} by name select * from target_list_members_frame")
            finally:
                con.unregister("target_list_members_frame")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(records)


# --------------------------------------------------------------------------------------------
# file rows


def read_contact_details(
    con: duckdb.DuckDBPyConnection, customer_ids: list[str]
) -> dict[str, tuple[str | None, str | None]]:
    """customer_id -> (full_name, phone) from the current customer records (personal data)."""
    if not customer_ids:
        return {}
    ids = pa.table({"customer_id": pa.array(sorted(set(customer_ids)), pa.string())})
    con.register("listed_customer_ids", ids)
    try:
        rows = con.execute(
            """select c.customer_id, c.full_name, c.phone
               from ods.customers_current as c
               inner join listed_customer_ids as i on i.customer_id = c.customer_id"""
        ).fetchall()
    finally:
        con.unregister("listed_customer_ids")
    return {str(r[0]): (r[1], r[2]) for r in rows}


def export_rows(
    selection: Selection, contacts: Mapping[str, tuple[str | None, str | None]]
) -> dict[str, list[dict[str, object]]]:
    """The rows of each team's file, in rank order (control customers are never exported)."""
    out: dict[str, list[dict[str, object]]] = {}
    for name, team in selection.teams.items():
        rows: list[dict[str, object]] = []
        for m in team.listed:
            c = m.candidate
            full_name, phone = contacts.get(c.customer_id, (None, None))
            rows.append(
                {
                    "rank": m.rank,
                    "customer_id": c.customer_id,
                    "full_name": full_name,
                    "phone": phone,
                    "region": c.region,
                    "value_tier": c.value_tier,
                    "rfm_segment": c.rfm_segment,
                    "churn_probability": c.churn_probability,
                    "clv_365d": c.clv_365d,
                    "value_at_risk": c.value_at_risk,
                    "reasons": list(c.reasons),
                    "recommended_action": m.recommended_action,
                    "agent": m.agent,
                }
            )
        out[name] = rows
    return out
