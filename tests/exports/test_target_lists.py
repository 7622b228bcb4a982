"""Writing a night's target lists: layout, manifest, CSV safety, byte identity, atomic swap."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
from datetime import date
from pathlib import Path

import pytest

from dagster_project.exports.lists import (
    LIST_COLUMNS,
    ListIntegrityError,
    find_list,
    list_manifests,
    make_list_id,
    parse_list_id,
    read_list_file,
    read_list_rows,
    write_target_lists,
)

LIST_DATE = date(2024, 5, 2)
AS_OF = date(2024, 5, 1)
HOSTILE_NAMES = [
    '=HYPERLINK("http://x","点我")',
    "+SUM(1,2)",
    "-2+3",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
]


def row(customer_id: str, rank: int, **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "rank": rank,
        "customer_id": customer_id,
        "full_name": "王小明",
        "phone": "+86 138 0013 8000",
        "region": "north",
        "value_tier": "high",
        "rfm_segment": "at_risk",
        "churn_probability": 0.81234,
        "clv_365d": 5230.456,
        "value_at_risk": 4248.9,
        "reasons": ["no purchase for 64 days", "2 complaints"],
        "recommended_action": "call: retention offer",
        "agent": "agent.li",
    }
    base.update(overrides)
    return base


def night(north: list[dict[str, object]] | None = None) -> dict[str, list[dict[str, object]]]:
    north = north if north is not None else [row("C000001", 1), row("C000002", 2, full_name="李娜")]
    return {"north": north, "south": [row("C000101", 1, region="south")], "east": []}


def write(exports: Path, teams: dict[str, list[dict[str, object]]], run_id: str = "run-1"):
    return write_target_lists(
        list_date=LIST_DATE,
        as_of_date=AS_OF,
        teams=teams,
        control_counts={"north": 7, "south": 3, "east": 0},
        eligible_counts={"north": 40, "south": 12, "east": 0},
        model_versions={"churn": "churn-2024-05-01", "clv": "bgnbd-2024-04-30"},
        exports_dir=exports,
        run_id=run_id,
    )


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_layout_manifest_and_header_only_team(tmp_path: Path) -> None:
    manifest = write(tmp_path, night())
    day = tmp_path / "target_lists" / "2024-05-02"
    assert manifest.directory == day
    assert sorted(p.name for p in day.iterdir()) == [
        "east.csv",
        "manifest.json",
        "north.csv",
        "publish.json",
        "south.csv",
    ]
    assert not [p for p in (tmp_path / "target_lists").iterdir() if p.name.startswith(".") and p.is_dir()]

    doc = json.loads((day / "manifest.json").read_text(encoding="utf-8"))
    assert doc["list_date"] == "2024-05-02"
    assert doc["as_of_date"] == "2024-05-01"
    assert doc["model_versions"] == {"churn": "churn-2024-05-01", "clv": "bgnbd-2024-04-30"}
    teams = {t["team"]: t for t in doc["teams"]}
    assert set(teams) == {"north", "south", "east"}
    assert teams["north"]["rows"] == 2
    assert teams["north"]["control"] == 7
    assert teams["north"]["eligible"] == 40
    for team, entry in teams.items():
        data = (day / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["list_id"] == make_list_id(LIST_DATE, team)

    east = parse((day / "east.csv").read_bytes())
    assert east == [list(LIST_COLUMNS)]
    assert json.loads((day / "publish.json").read_text())["run_id"] == "run-1"


def test_list_ids_are_deterministic_opaque_and_parseable() -> None:
    list_id = make_list_id(LIST_DATE, "north")
    assert list_id == make_list_id(LIST_DATE, "north")
    assert list_id.startswith("TL-20240502-north-")
    assert list_id != make_list_id(LIST_DATE, "south")
    assert list_id != make_list_id(date(2024, 5, 3), "north")
    assert parse_list_id(list_id) == (LIST_DATE, "north")
    forged = list_id[:-8] + "00000000"
    for bad in [forged, "../north.csv", "TL-20240502-north", "TL-20241302-north-" + list_id[-8:], list_id + "/x", ""]:
        assert parse_list_id(bad) is None


def test_rows_are_formatted_in_column_order(tmp_path: Path) -> None:
    manifest = write(tmp_path, night())
    rows = parse((manifest.directory / "north.csv").read_bytes())
    assert rows[0] == list(LIST_COLUMNS)
    first = dict(zip(LIST_COLUMNS, rows[1], strict=True))
    assert first == {
        "rank": "1",
        "customer_id": "C000001",
        "full_name": "王小明",
        "phone": "0086 138 0013 8000",
        "region": "north",
        "value_tier": "high",
        "rfm_segment": "at_risk",
        "churn_probability": "0.8123",
        "clv_365d": "5230.46",
        "value_at_risk": "4248.90",
        "reasons": "no purchase for 64 days; 2 complaints",
        "recommended_action": "call: retention offer",
        "agent": "agent.li",
        "list_id": make_list_id(LIST_DATE, "north"),
    }


def test_csv_injection_is_inert_and_phones_stay_readable(tmp_path: Path) -> None:
    north = [
        row(f"C{i:06d}", i, full_name=name, phone=phone)
        for i, (name, phone) in enumerate(
            zip(
                HOSTILE_NAMES,
                [
                    "+86 138 0013 8000",
                    "13800138000",
                    "138-0013-8000",
                    "+8613900139000",
                    "021 5555 1234",
                    "+86 10 6552 9988",
                ],
                strict=True,
            ),
            start=1,
        )
    ]
    north.append(row("C000099", 99, reasons="-1 star review", recommended_action="@team call", agent="+agent"))
    manifest = write(tmp_path, night(north))
    data = (manifest.directory / "north.csv").read_bytes()
    records = parse(data)
    header = records[0]
    by_id = {r[1]: dict(zip(header, r, strict=True)) for r in records[1:]}

    for i, name in enumerate(HOSTILE_NAMES, start=1):
        cell = by_id[f"C{i:06d}"]["full_name"]
        assert cell == "'" + name  # shown as text by Excel, never evaluated
    assert by_id["C000099"]["reasons"] == "'-1 star review"
    assert by_id["C000099"]["recommended_action"] == "'@team call"
    assert by_id["C000099"]["agent"] == "'+agent"

    phones = [by_id[f"C{i:06d}"]["phone"] for i in range(1, 7)]
    assert phones == [
        "0086 138 0013 8000",
        "138 0013 8000",
        "138 0013 8000",
        "0086 139 0013 9000",
        "021 5555 1234",
        "0086 10 6552 9988",
    ]
    # No cell anywhere starts with a character that makes a spreadsheet evaluate it.
    for record in records[1:]:
        for cell in record:
            assert not cell or cell[0] not in "=+-@\t\r\n", record
    # The raw bytes: CR-leading name is quoted (RFC 4180), lines end in CRLF.
    assert b'"\'\r=1+1"' in data
    assert data.count(b"\r\n") == len(records)


def test_chinese_names_round_trip_with_bom(tmp_path: Path) -> None:
    names = ["王小明", "欧阳娜娜", "Zhang Wei 张伟", "𠮷野家"]
    manifest = write(tmp_path, night([row(f"C{i:06d}", i, full_name=n) for i, n in enumerate(names, start=1)]))
    data = (manifest.directory / "north.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert [r["full_name"] for r in read_list_rows(data)] == names
    # Excel's reading: UTF-8 because of the BOM; without it names would be mojibake.
    assert data[3:].decode("utf-8").splitlines()[1].split(",")[2] == "王小明"


def test_rerun_with_same_inputs_is_byte_identical(tmp_path: Path) -> None:
    first = write(tmp_path / "a", night(), run_id="run-1")
    second = write(tmp_path / "b", night(), run_id="run-2")
    third = write(tmp_path / "a", night(), run_id="run-3")  # re-run in place (swap)
    for name in ("manifest.json", "north.csv", "south.csv", "east.csv"):
        a = (first.directory / name).read_bytes()
        assert a == (second.directory / name).read_bytes()
        assert a == (third.directory / name).read_bytes()
    assert first == second == third  # dataclass equality ignores the folder


def test_row_order_follows_rank_not_input_order(tmp_path: Path) -> None:
    shuffled = [row("C000003", 3), row("C000001", 1), row("C000002", 2)]
    ordered = [row("C000001", 1), row("C000002", 2), row("C000003", 3)]
    a = write(tmp_path / "a", night(shuffled))
    b = write(tmp_path / "b", night(ordered))
    assert (a.directory / "north.csv").read_bytes() == (b.directory / "north.csv").read_bytes()


def test_rerun_with_new_inputs_replaces_the_whole_day(tmp_path: Path) -> None:
    write(tmp_path, night())
    second = write(tmp_path, night([row("C000777", 1)]))
    rows = read_list_rows((second.directory / "north.csv").read_bytes())
    assert [r["customer_id"] for r in rows] == ["C000777"]
    leftovers = [p.name for p in (tmp_path / "target_lists").iterdir() if p.name != ".lock"]
    assert leftovers == ["2024-05-02"]


def test_bad_inputs_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="North"):
        write(tmp_path, {"North": []})
    with pytest.raises(ValueError, match="file name"):
        write(tmp_path, {"../etc": []})
    with pytest.raises(ValueError, match="appears twice"):
        write(tmp_path, night([row("C1", 1), row("C1", 2)]))
    incomplete = row("C1", 1)
    del incomplete["phone"]
    with pytest.raises(ValueError, match="row 1 has no phone"):
        write(tmp_path, night([incomplete]))
    with pytest.raises(ValueError, match="churn_probability"):
        write(tmp_path, night([row("C1", 1, churn_probability="high")]))
    assert not (tmp_path / "target_lists").exists()  # validated before anything is written


def test_readers_find_lists_by_id_and_detect_tampering(tmp_path: Path) -> None:
    write(tmp_path, night())
    list_id = make_list_id(LIST_DATE, "south")
    found = find_list(tmp_path, list_id)
    assert found is not None and found[1].team == "south"
    got = read_list_file(tmp_path, list_id)
    assert got is not None and got[2] == (tmp_path / "target_lists/2024-05-02/south.csv").read_bytes()
    assert read_list_file(tmp_path, make_list_id(date(2024, 5, 3), "south")) is None
    assert read_list_file(tmp_path, "../../etc/passwd") is None
    assert [m.list_date for m in list_manifests(tmp_path)] == [LIST_DATE]

    path = tmp_path / "target_lists/2024-05-02/south.csv"
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b"1,X,evil\r\n")
    with pytest.raises(ListIntegrityError, match="sha256"):
        read_list_file(tmp_path, list_id)


def test_a_reader_never_sees_a_partial_or_missing_day_while_a_night_is_rewritten(tmp_path: Path) -> None:
    small = night([row("C000001", 1)])
    large = night([row(f"C{i:06d}", i) for i in range(1, 3001)])
    write(tmp_path, small)
    list_id = make_list_id(LIST_DATE, "north")
    stop = threading.Event()
    problems: list[str] = []
    seen_sizes: set[int] = set()

    def reader() -> None:
        while not stop.is_set():
            try:
                got = read_list_file(tmp_path, list_id)
            except ListIntegrityError as exc:  # would mean a torn file or a mixed day
                problems.append(str(exc))
                continue
            if got is None:
                problems.append("day missing")
                continue
            _manifest, entry, data = got
            rows = len(read_list_rows(data))
            if rows != entry.rows:
                problems.append(f"manifest says {entry.rows} rows, file has {rows}")
            seen_sizes.add(rows)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(16):
            write(tmp_path, large if i % 2 == 0 else small, run_id=f"run-{i}")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == []
    assert seen_sizes == {1, 3000}
