"""Outcome-upload rules as pure functions over real list files: list choice, window, re-publish, DNC."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from portal_testkit import list_row

from dagster_project.exports.lists import make_list_id, write_target_lists
from dagster_project.portal.outcomes import (
    DNC_COLUMNS,
    DoNotContactFileError,
    ListCache,
    parse_contacted_at,
    process_upload,
    validate_upload,
)

TODAY = date(2024, 6, 30)
NOW = datetime(2024, 6, 30, 12, 0)


def publish(exports: Path, day: date, north: list[str]) -> None:
    write_target_lists(
        list_date=day,
        as_of_date=day - timedelta(days=1),
        teams={"north": [list_row(c, i, "north") for i, c in enumerate(north, start=1)]},
        control_counts={},
        eligible_counts={},
        model_versions={},
        exports_dir=exports,
    )


def test_parse_contacted_at() -> None:
    assert parse_contacted_at("2024-06-01") == datetime(2024, 6, 1)
    assert parse_contacted_at("2024-06-01 09:05") == datetime(2024, 6, 1, 9, 5)
    assert parse_contacted_at("2024-06-01T09:05:07") == datetime(2024, 6, 1, 9, 5, 7)
    for bad in [
        "2024-6-1",
        "2024/06/01",
        "2024-02-30",
        "2024-06-01 9:05",
        "01-06-2024",
        "2024-06-01 24:00",
        "yesterday",
    ]:
        assert parse_contacted_at(bad) is None, bad


def test_row_goes_to_the_newest_list_on_or_before_the_contact(tmp_path: Path) -> None:
    publish(tmp_path, date(2024, 6, 10), ["C1", "C2"])
    publish(tmp_path, date(2024, 6, 20), ["C1"])
    lists = ListCache().team_lists(tmp_path, "north", TODAY)
    body = b"customer_id,contacted_at,outcome\nC1,2024-06-15,retained\nC1,2024-06-25,retained\nC2,2024-06-25,declined\n"
    accepted, errors, _, total = validate_upload(body, lists, "li", NOW)
    assert errors == [] and total == 3
    assert [r.list_id for r in accepted] == [
        make_list_id(date(2024, 6, 10), "north"),
        make_list_id(date(2024, 6, 20), "north"),
        make_list_id(date(2024, 6, 10), "north"),  # C2 is only on the older list
    ]


def test_only_lists_of_the_last_90_days_count(tmp_path: Path) -> None:
    publish(tmp_path, TODAY - timedelta(days=91), ["OLD1"])
    publish(tmp_path, TODAY - timedelta(days=89), ["NEW1"])
    lists = ListCache().team_lists(tmp_path, "north", TODAY)
    body = f"customer_id,contacted_at,outcome\nOLD1,{TODAY},retained\nNEW1,{TODAY},retained\n".encode()
    accepted, errors, _, _ = validate_upload(body, lists, "li", NOW)
    assert [r.customer_id for r in accepted] == ["NEW1"]
    assert [str(e) for e in errors] == ["line 2: customer OLD1 is not on any list of team north (last 90 days)"]


def test_cache_rereads_a_republished_night(tmp_path: Path) -> None:
    cache = ListCache()
    publish(tmp_path, date(2024, 6, 20), ["C1"])
    body = b"customer_id,contacted_at,outcome\nC9,2024-06-21,retained\n"
    assert validate_upload(body, cache.team_lists(tmp_path, "north", TODAY), "li", NOW)[1]
    publish(tmp_path, date(2024, 6, 20), ["C1", "C9"])  # the night is re-run with a new customer
    accepted, errors, _, _ = validate_upload(body, cache.team_lists(tmp_path, "north", TODAY), "li", NOW)
    assert errors == [] and [r.customer_id for r in accepted] == ["C9"]


def test_future_tolerance_is_five_minutes(tmp_path: Path) -> None:
    publish(tmp_path, date(2024, 6, 20), ["C1", "C2"])
    lists = ListCache().team_lists(tmp_path, "north", TODAY)
    body = b"customer_id,contacted_at,outcome\nC1,2024-06-30 12:04,retained\nC2,2024-06-30 12:06,retained\n"
    accepted, errors, _, _ = validate_upload(body, lists, "li", NOW)
    assert [r.customer_id for r in accepted] == ["C1"]
    assert [str(e) for e in errors] == ["line 3: contacted_at 2024-06-30 12:06 is in the future"]


def test_do_not_contact_appends_to_an_existing_file_and_keeps_its_bytes(tmp_path: Path) -> None:
    exports, inbox, reference = tmp_path / "exports", tmp_path / "inbox", tmp_path / "reference"
    publish(exports, date(2024, 6, 20), ["C1", "C2", "C3"])
    reference.mkdir()
    existing = "\ufeffcustomer_id,added_at,source,added_by,note\r\nC3,2024-01-01 00:00:00,complaint desk,ops,legal hold".encode()
    (reference / "do_not_contact.csv").write_bytes(existing)
    body = b"customer_id,contacted_at,outcome,note\nC1,2024-06-21,do_not_contact,=cmd|' /C calc'!A0\nC3,2024-06-21,do_not_contact,\n"
    result = process_upload(
        body,
        team_lists=ListCache().team_lists(exports, "north", TODAY),
        agent="li",
        inbox_dir=inbox,
        reference_dir=reference,
        now=NOW,
    )
    assert result.status == "accepted" and result.do_not_contact_added == 1  # C3 was already there
    data = (reference / "do_not_contact.csv").read_bytes()
    assert data.startswith(existing)
    rows = list(csv.reader(data.decode("utf-8-sig").splitlines()))
    assert tuple(rows[0]) == DNC_COLUMNS
    assert rows[-1] == [
        "C1",
        "2024-06-30 12:00:00",
        f"portal {make_list_id(date(2024, 6, 20), 'north')}",
        "li",
        "'=cmd|' /C calc'!A0",
    ]
    assert not list(reference.glob(".*.part"))


def test_a_broken_do_not_contact_file_stops_the_upload_before_anything_is_written(tmp_path: Path) -> None:
    exports, inbox, reference = tmp_path / "exports", tmp_path / "inbox", tmp_path / "reference"
    publish(exports, date(2024, 6, 20), ["C1"])
    reference.mkdir()
    (reference / "do_not_contact.csv").write_text("id;when\nC9;2024-01-01\n")
    with pytest.raises(DoNotContactFileError, match="expected customer_id,added_at,source,added_by,note"):
        process_upload(
            b"customer_id,contacted_at,outcome\nC1,2024-06-21,do_not_contact\n",
            team_lists=ListCache().team_lists(exports, "north", TODAY),
            agent="li",
            inbox_dir=inbox,
            reference_dir=reference,
            now=NOW,
        )
    assert not (inbox / "outcomes").exists()
    assert (reference / "do_not_contact.csv").read_text() == "id;when\nC9;2024-01-01\n"


def test_two_uploads_in_the_same_second_get_distinct_files(tmp_path: Path) -> None:
    exports, inbox, reference = tmp_path / "exports", tmp_path / "inbox", tmp_path / "reference"
    publish(exports, date(2024, 6, 20), ["C1"])
    lists = ListCache().team_lists(exports, "north", TODAY)
    names = []
    for outcome in ("retained", "declined"):
        body = f"customer_id,contacted_at,outcome\nC1,2024-06-21,{outcome}\n".encode()
        result = process_upload(body, team_lists=lists, agent="li", inbox_dir=inbox, reference_dir=reference, now=NOW)
        assert result.extract_file is not None
        names.append(result.extract_file.name)
    assert names == ["outcomes_north_20240630T120000_1.csv", "outcomes_north_20240630T120000_2.csv"]
    assert sorted(p.name for p in (inbox / "outcomes").iterdir()) == names  # no temporary files left
