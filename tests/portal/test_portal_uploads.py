"""Outcome uploads through POST /api/outcomes on a real server: validation, extract, do-not-contact."""

from __future__ import annotations

import csv
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from portal_testkit import LiveServer, PortalEnv, cookie_header, send_chunked, sign_in, start_server, stop_server

from dagster_project.extracts.spec import OUTCOMES
from dagster_project.portal import audit
from dagster_project.portal.outcomes import DNC_COLUMNS

FILE_NAME = re.compile(r"outcomes_north_[0-9]{8}T[0-9]{6}_[0-9]+\.csv")


def extracts(portal_env: PortalEnv) -> list[Path]:
    folder = portal_env.inbox_dir / "outcomes"
    return sorted(folder.glob("*.csv")) if folder.exists() else []


def upload(server: LiveServer, user: str, data: bytes, name: str = "outcomes.csv") -> tuple[int, dict]:
    with sign_in(server, user) as client:
        response = client.post("/api/outcomes", files={"file": (name, data, "text/csv")})
    return response.status_code, response.json()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_correct_upload_writes_canonical_extract_and_do_not_contact(server: LiveServer, portal_env: PortalEnv) -> None:
    new, old = portal_env.new_date.isoformat(), portal_env.old_date.isoformat()
    body = (
        "customer_id,contacted_at,outcome,note,list_id\n"
        f"N000004,{new} 10:15,retained,agreed to stay,\n"
        f'N000005,{new},do_not_contact,"asked us to stop, twice",\n'
        f"N000001,{old} 09:00:05,declined,,\n"
        f"N000002,{old} 16:00,unreachable,=1+1 typed by agent,\n"
        f"N000002,{new} 16:00,retained,,{portal_env.list_id('north')}\n"
    ).encode()
    before = set(extracts(portal_env))
    status, result = upload(server, "alice", body)
    assert status == 200, result
    assert result["status"] == "accepted"
    assert (result["accepted"], result["rejected"], result["errors"]) == (5, 0, [])
    assert result["do_not_contact_added"] == 1

    new_files = sorted(set(extracts(portal_env)) - before)
    assert len(new_files) == 1
    extract = new_files[0]
    assert FILE_NAME.fullmatch(extract.name)
    assert extract.name == result["extract_file"]
    assert extract.read_text(encoding="utf-8").splitlines()[0] == ",".join(OUTCOMES.column_names)
    rows = read_csv(extract)
    north_new, north_old = portal_env.list_id("north", "new"), portal_env.list_id("north", "old")
    assert [(r["customer_id"], r["list_id"], r["contacted_at"], r["outcome"]) for r in rows] == [
        ("N000004", north_new, f"{new} 10:15:00", "retained"),
        ("N000005", north_new, f"{new} 00:00:00", "do_not_contact"),
        ("N000001", north_old, f"{old} 09:00:05", "declined"),
        ("N000002", north_old, f"{old} 16:00:00", "unreachable"),  # newest list on or before the call
        ("N000002", north_new, f"{new} 16:00:00", "retained"),
    ]
    assert {r["team"] for r in rows} == {"north"}
    assert {r["agent"] for r in rows} == {"alice"}
    assert rows[1]["note"] == "asked us to stop, twice"
    assert rows[3]["note"] == "=1+1 typed by agent"  # data for the ODS, kept as typed

    # The extract loads with the canonical DuckDB types of the OUTCOMES spec.
    types = {c.name: c.type for c in OUTCOMES.columns}
    loaded = duckdb.sql(f"select * from read_csv('{extract}', header = true, columns = {types!r})").fetchall()
    assert len(loaded) == 5

    dnc_path = portal_env.reference_dir / "do_not_contact.csv"
    dnc = read_csv(dnc_path)
    assert tuple(dnc[0].keys()) == DNC_COLUMNS
    assert [(r["customer_id"], r["added_by"], r["note"]) for r in dnc] == [
        ("N000005", "alice", "asked us to stop, twice")
    ]
    assert north_new in dnc[0]["source"]
    assert stat.S_IMODE(dnc_path.stat().st_mode) == 0o640  # agents' notes: not world-readable

    # Uploading the same file again: a second extract, but no second do-not-contact entry.
    status, again = upload(server, "alice", body)
    assert status == 200 and again["do_not_contact_added"] == 0
    assert len(read_csv(dnc_path)) == 1
    assert len(set(extracts(portal_env)) - before) == 2

    uploads = audit.entries(portal_env.portal_dir, event="upload", username="alice")
    assert uploads[0].outcome == "accepted" and uploads[0].rows == 5 and uploads[0].target.startswith("outcomes_north_")


def test_excel_style_file_with_bom_crlf_and_other_column_order(server: LiveServer, portal_env: PortalEnv) -> None:
    new = portal_env.new_date.isoformat()
    body = (
        "\ufeffOutcome,Customer_ID,Contacted_At,Extra\r\n"
        f"retained,N000006,{new} 08:00,x\r\n"
        f"Declined,N000004,{new} 08:30,y\r\n"
        ",,,\r\n"
    ).encode()
    status, result = upload(server, "nora", body)
    assert status == 200, result
    assert result["status"] == "accepted" and result["accepted"] == 2
    assert result["warnings"] == ["ignored column(s): extra"]
    rows = read_csv(portal_env.inbox_dir / "outcomes" / result["extract_file"])
    assert [(r["customer_id"], r["outcome"], r["agent"]) for r in rows] == [
        ("N000006", "retained", "nora"),
        ("N000004", "declined", "nora"),
    ]


def _lines(result: dict) -> list[str]:
    return result["errors"]


def test_bad_dates_are_reported_by_line_and_good_lines_kept(server: LiveServer, portal_env: PortalEnv) -> None:
    new, old = portal_env.new_date.isoformat(), portal_env.old_date.isoformat()
    body = (
        "customer_id,contacted_at,outcome\n"
        f"N000004,{new.replace('-', '/')} 10:00,retained\n"
        f"N000004,{new} 25:00,retained\n"
        "N000004,2099-01-01,retained\n"
        f"N000004,{old},retained\n"
        f"N000006,{new} 11:00,retained\n"
        "N000006,,retained\n"
    ).encode()
    before = set(extracts(portal_env))
    status, result = upload(server, "alice", body)
    assert status == 200
    assert result["status"] == "partial"
    assert (result["accepted"], result["rejected"]) == (1, 5)
    errors = _lines(result)
    assert errors[0].startswith(f"line 2: contacted_at '{new.replace('-', '/')} 10:00' is not a date like")
    assert errors[1].startswith(f"line 3: contacted_at '{new} 25:00' is not a date like")
    assert errors[2] == "line 4: contacted_at 2099-01-01 is in the future"
    assert errors[3] == (f"line 5: contacted_at {old} is before the list date {new} of {portal_env.list_id('north')}")
    assert errors[4] == "line 7: contacted_at is empty"
    created = sorted(set(extracts(portal_env)) - before)
    assert len(created) == 1
    assert [r["customer_id"] for r in read_csv(created[0])] == ["N000006"]


def test_unknown_outcome_and_customers_not_on_the_teams_lists(server: LiveServer, portal_env: PortalEnv) -> None:
    new = portal_env.new_date.isoformat()
    south_list = portal_env.list_id("south")
    body = (
        "customer_id,contacted_at,outcome,note,list_id\n"
        f"N000004,{new},maybe,,\n"
        f"S000001,{new},retained,,\n"
        f"C999999,{new},retained,,\n"
        f"N000004,{new},retained,,{south_list}\n"
        f"N000001,{new},retained,,{portal_env.list_id('north')}\n"
        f"N000004,{new},,,\n"
    ).encode()
    before = set(extracts(portal_env))
    status, result = upload(server, "alice", body)
    assert status == 422
    assert result["status"] == "rejected"
    assert result["accepted"] == 0
    assert _lines(result) == [
        "line 2: outcome 'maybe' is unknown; use one of retained, declined, unreachable, do_not_contact",
        "line 3: customer S000001 is not on any list of team north (last 90 days)",
        "line 4: customer C999999 is not on any list of team north (last 90 days)",
        f"line 5: list {south_list} is not a list of team north (last 90 days)",
        f"line 6: customer N000001 is not on list {portal_env.list_id('north')}",
        "line 7: outcome is empty; use one of retained, declined, unreachable, do_not_contact",
    ]
    assert set(extracts(portal_env)) == before  # nothing written


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"",
            "line 1: the file is empty; the first line must be the header customer_id,contacted_at,outcome,note,list_id",
        ),
        (b"\xef\xbb\xbf\r\n", "line 1: the file is empty"),
        (
            b"customer_id,contacted_at,note\nN000004,2024-05-02,x\n",
            "line 1: missing column(s) outcome; the header must hold",
        ),
        (b"customer_id;contacted_at;outcome\nN000004;2024-05-02;retained\n", "(the columns are separated by ';'"),
        (b"customer_id,contacted_at,outcome\n", "line 2: the file has a header but no rows"),
        (
            b"customer_id,contacted_at,outcome,outcome\nN1,2024-05-02,x,y\n",
            "line 1: column(s) outcome appear more than once",
        ),
        (
            "customer_id,contacted_at,outcome,note\nN000004,{new},retained,ok\nN000006,{new},retained,电话没人接\n".encode(
                "gbk"
            ),
            "line 3: the file is not UTF-8 text (byte 0xb5 cannot be read); in Excel use Save As > 'CSV UTF-8",
        ),
    ],
)
def test_files_that_cannot_be_read_are_refused_whole(
    server: LiveServer, portal_env: PortalEnv, body: bytes, expected: str
) -> None:
    body = body.replace(b"{new}", portal_env.new_date.isoformat().encode())
    before = set(extracts(portal_env))
    status, result = upload(server, "alice", body)
    assert status == 422, result
    assert result["status"] == "rejected"
    assert len(result["errors"]) == 1
    assert expected in result["errors"][0]
    assert result["errors"][0].startswith("line ")
    assert set(extracts(portal_env)) == before


def test_line_numbers_count_physical_lines_of_multiline_notes(server: LiveServer, portal_env: PortalEnv) -> None:
    new = portal_env.new_date.isoformat()
    body = (
        "customer_id,contacted_at,outcome,note\n"
        f'N000004,{new},retained,"first line\nsecond line"\n'
        f"N000006,{new},maybe,\n"
        f"N000006,{new},retained,too,many,fields\n"
        f"N000004,{new},retained,again\n"
    ).encode()
    status, result = upload(server, "alice", body)
    assert status == 200
    assert _lines(result) == [
        "line 4: outcome 'maybe' is unknown; use one of retained, declined, unreachable, do_not_contact",
        "line 5: has 6 fields but the header has 4",
        "line 6: repeats line 2 (same customer, list and contacted_at)",
    ]
    rows = read_csv(portal_env.inbox_dir / "outcomes" / result["extract_file"])
    assert [r["note"] for r in rows] == ["first line\nsecond line"]


def test_managers_cannot_upload_and_other_teams_cannot_use_north_customers(
    server: LiveServer, portal_env: PortalEnv
) -> None:
    new = portal_env.new_date.isoformat()
    body = f"customer_id,contacted_at,outcome\nN000004,{new},retained\n".encode()
    status, result = upload(server, "mia", body)
    assert status == 403
    status, result = upload(server, "sam", body)
    assert status == 422
    assert result["errors"] == ["line 2: customer N000004 is not on any list of team south (last 90 days)"]
    with sign_in(server, "alice") as client:
        response = client.post("/api/outcomes", data={"x": "1"})
    assert response.status_code == 400
    assert "multipart form field 'file'" in response.json()["detail"]


def test_oversized_uploads_are_refused_before_reading(server: LiveServer, portal_env: PortalEnv) -> None:
    before = set(extracts(portal_env))
    big = b"customer_id,contacted_at,outcome\n" + b"N000004,2024-01-01,retained\n" * 250_000  # about 7 MB
    status, result = upload(server, "alice", big)
    assert status == 413
    assert result["detail"] == "The request is larger than 5 MB; nothing was saved."
    assert set(extracts(portal_env)) == before


def test_a_chunked_upload_is_cut_off_at_the_limit(server: LiveServer, portal_env: PortalEnv) -> None:
    """No Content-Length: the body is counted as it streams and refused just past 5 MB, not buffered."""
    before = set(extracts(portal_env))
    with sign_in(server, "alice") as client:
        cookie = cookie_header(client)
    status, sent = send_chunked(
        server,
        "/api/outcomes",
        total=200 * 2**20,
        cookie=cookie,
        content_type="multipart/form-data; boundary=xyz",
        prefix=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\ncustomer_id,contacted_at,outcome\n",
    )
    assert status == 413
    assert sent < 24 * 2**20, f"the server read {sent >> 20} MB before refusing"
    assert set(extracts(portal_env)) == before
    with sign_in(server, "alice") as client:  # the server is fine and the session still works
        assert client.get("/api/me").status_code == 200


def dnc_upload(portal_env: PortalEnv, outcome: str) -> bytes:
    return f"customer_id,contacted_at,outcome\nN000004,{portal_env.new_date.isoformat()},{outcome}\n".encode()


@pytest.fixture
def gbk_do_not_contact(portal_env: PortalEnv) -> Iterator[bytes]:
    """do_not_contact.csv as Chinese Excel saves it (GBK), restored afterwards."""
    path = portal_env.reference_dir / "do_not_contact.csv"
    saved = path.read_bytes() if path.exists() else None
    text = "customer_id,added_at,source,added_by,note\r\nN000009,2024-01-01 00:00:00,投诉,ops,客户要求不要再打\r\n"
    data = text.encode("gbk")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    yield data
    if saved is None:
        path.unlink()
    else:
        path.write_bytes(saved)


def test_a_non_utf8_do_not_contact_file_refuses_the_upload_clearly_and_is_audited(
    server: LiveServer, portal_env: PortalEnv, gbk_do_not_contact: bytes
) -> None:
    path = portal_env.reference_dir / "do_not_contact.csv"
    before = set(extracts(portal_env))
    status, result = upload(server, "alice", dnc_upload(portal_env, "do_not_contact"), name="gbk-day.csv")
    assert status == 500
    assert result["detail"].startswith("The do-not-contact file cannot be updated; nothing was saved.")
    assert set(extracts(portal_env)) == before
    assert path.read_bytes() == gbk_do_not_contact  # untouched
    entry = audit.entries(portal_env.portal_dir, event="upload", username="alice")[0]
    assert (entry.outcome, entry.target) == ("failed", "gbk-day.csv")
    assert f"{path}: line 2 is not UTF-8 text" in (entry.detail or "")
    assert "CSV UTF-8" in (entry.detail or "")


def test_an_upload_without_do_not_contact_rows_does_not_touch_that_file(
    server: LiveServer, portal_env: PortalEnv, gbk_do_not_contact: bytes
) -> None:
    path = portal_env.reference_dir / "do_not_contact.csv"
    status, result = upload(server, "alice", dnc_upload(portal_env, "declined"))
    assert status == 200, result
    assert result["status"] == "accepted" and result["do_not_contact_added"] == 0
    assert path.read_bytes() == gbk_do_not_contact


def test_the_upload_limit_is_set_with_serve_max_upload_mb(portal_env: PortalEnv) -> None:
    """`serve --max-upload-mb 1 --max-body-kb 8`: the smaller limits hold, the rest still works."""
    small = start_server(portal_env, "--max-upload-mb", "1", "--max-body-kb", "8")
    try:
        before = set(extracts(portal_env))
        line = f"N000004,{portal_env.new_date.isoformat()},retained\n".encode()
        over = b"customer_id,contacted_at,outcome\n" + line * (1_200_000 // len(line))  # about 1.2 MB
        status, result = upload(small, "alice", over)
        assert status == 413 and result["detail"] == "The request is larger than 1 MB; nothing was saved."
        assert set(extracts(portal_env)) == before
        with sign_in(small, "alice") as client:
            assert "1 MB" in client.get("/outcomes").text  # the upload page states the limit
            too_long = client.post("/api/logout", content=b"x" * 9 * 1024)
            assert too_long.status_code == 413
        status, result = upload(small, "alice", b"customer_id,contacted_at,outcome\n" + line)
        assert status == 200 and result["accepted"] == 1
    finally:
        stop_server(small)
