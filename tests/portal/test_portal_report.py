"""The effectiveness report, read read-only from the published DuckDB file by a real server."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import yaml
from portal_testkit import PROJECT_ROOT, LiveServer, PortalEnv, sign_in

from dagster_project.defs.ops.publish import publish_marts, published_info
from dagster_project.portal import audit
from dagster_project.portal.report import COLUMNS, TABLE

MART_SPEC = PROJECT_ROOT / "dbt" / "models" / "marts" / "retention" / "_retention__models.yml"


def mart_contract() -> dict[str, str]:
    """Column -> data type of the retention_effectiveness mart, from its enforced dbt contract."""
    spec = yaml.safe_load(MART_SPEC.read_text())
    model = next(m for m in spec["models"] if m["name"] == TABLE)
    assert model["config"]["contract"]["enforced"] is True
    return {c["name"]: c["data_type"] for c in model["columns"]}


# The test mart has every column of the real one, so the report is read from the same shape.
CREATE = (
    "create table {schema}.retention_effectiveness ("
    + ", ".join(f"{name} {data_type}" for name, data_type in mart_contract().items())
    + ")"
)
INSERT = (
    f"insert into {{schema}}.retention_effectiveness ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})"
)
ROWS = [
    (date(2024, 5, 2), "north", "alice", 40, 31, 25, 12, 0.10, 0.18, 0.08, 0.01, 0.15, date(2024, 7, 31), True),
    (date(2024, 5, 2), "north", "nora", 10, 9, 8, 5, 0.125, 0.18, 0.055, -0.02, 0.13, date(2024, 7, 31), True),
    (date(2024, 5, 2), "south", "sam", 20, 15, 11, 6, 0.20, 0.22, 0.02, -0.05, 0.09, date(2024, 7, 31), True),
    (date(2024, 5, 1), "south", "sam", 18, 12, 9, 4, 0.21, 0.20, -0.01, -0.08, 0.06, date(2024, 7, 30), True),
    # A list whose churn window is still open: no churn figures yet, and the page says until when.
    (date(2024, 8, 1), "south", "sam", 22, 3, 2, 1, None, None, None, None, None, date(2024, 10, 30), False),
]


def test_the_report_reads_columns_the_marts_contract_has_with_the_types_it_expects() -> None:
    contract = mart_contract()
    assert set(COLUMNS) <= set(contract), set(COLUMNS) - set(contract)
    expected = {"list_date": "date", "team": "varchar", "agent": "varchar"}
    expected |= dict.fromkeys(("listed", "contacted", "reached", "self_reported_retained"), "integer")
    expected |= dict.fromkeys(COLUMNS[7:12], "double")  # rates, uplift and its interval: fractions
    expected |= {"window_end_date": "date", "is_window_complete": "boolean"}
    assert {name: contract[name] for name in COLUMNS} == expected


def report(server: LiveServer, user: str, **params: str) -> tuple[int, dict]:
    with sign_in(server, user) as client:
        response = client.get("/api/report", params=params)
    return response.status_code, response.json()


def page(server: LiveServer, user: str, query: str = "") -> tuple[int, str]:
    with sign_in(server, user) as client:
        response = client.get("/report" + query)
    return response.status_code, response.text


def build_warehouse(path: Path, rows: list[tuple[object, ...]] | None) -> Path:
    """A warehouse with schema `marts`; the effectiveness mart only when `rows` is given."""
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema marts")
        conn.execute("create table marts.customer_rfm (customer_id varchar)")
        if rows is not None:
            conn.execute(CREATE.format(schema="marts"))
            conn.executemany(INSERT.format(schema="marts"), rows)
    return path


def test_report_lifecycle(server: LiveServer, portal_env: PortalEnv) -> None:
    path = portal_env.published_path
    warehouse = portal_env.root / "warehouse.duckdb"

    # 1. Nothing published yet: a friendly message, not an error.
    assert not path.exists()
    status, body = report(server, "nora")
    assert status == 200 and body["status"] == "missing" and body["rows"] == []
    status, html = page(server, "nora")
    assert status == 200 and "No report yet" in html

    # 2. Published (by the real `publish_marts`), but the effectiveness mart has not been built.
    publish_marts(build_warehouse(warehouse, None), path, run_id="test-1")
    status, body = report(server, "mia")
    assert status == 200 and body["status"] == "missing"
    assert "effectiveness mart has not been built" in body["message"]

    # 3. The mart is there, in the published file's `main` schema, as `crm-warehouse publish` puts it.
    publish_marts(build_warehouse(warehouse, ROWS), path, run_id="test-2")
    info = published_info(path)
    assert info is not None and info.tables["retention_effectiveness"] == 5

    status, body = report(server, "nora")  # north lead: own team only
    assert status == 200 and body["status"] == "ok" and body["team"] == "north"
    assert [(r["team"], r["agent"]) for r in body["rows"]] == [("north", "alice"), ("north", "nora")]
    assert body["rows"][0]["uplift"] == 0.08
    assert body["rows"][0]["list_date"] == "2024-05-02"

    status, html = page(server, "nora")
    assert status == 200
    assert "8.0%" in html and "1.0% to 15.0%" in html
    assert ">sam<" not in html

    status, body = report(server, "nora", team="south")
    assert status == 403
    assert any(
        e.target == "report team=south"
        for e in audit.entries(portal_env.portal_dir, username="nora", outcome="refused")
    )

    status, body = report(server, "mia")  # manager: every team, newest first
    assert [(r["list_date"], r["team"]) for r in body["rows"]] == [
        ("2024-08-01", "south"),
        ("2024-05-02", "north"),
        ("2024-05-02", "north"),
        ("2024-05-02", "south"),
        ("2024-05-01", "south"),
    ]
    status, body = report(server, "mia", team="south")
    assert {r["team"] for r in body["rows"]} == {"south"} and len(body["rows"]) == 3
    assert body["rows"][0]["is_window_complete"] is False and body["rows"][0]["churn_rate_control"] is None
    status, html = page(server, "mia", "?team=south")
    assert status == 200 and "-1.0%" in html and "alice" not in html
    assert "window open until 2024-10-30" in html

    status, body = report(server, "alice")  # agents have no report
    assert status == 403
    assert page(server, "alice")[0] == 403

    # 4. The file is opened per request and closed: the next publish is visible at once.
    publish_marts(build_warehouse(warehouse, [r for r in ROWS if r[1] != "south"]), path, run_id="test-3")
    status, body = report(server, "mia", team="south")
    assert status == 200 and body["rows"] == []
    status, html = page(server, "mia", "?team=south")
    assert "No report rows for this team yet" in html
