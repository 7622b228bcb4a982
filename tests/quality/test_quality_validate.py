"""Great Expectations suites per extract kind, run on real DataFrames, attributed to the right file."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from dagster_project.extracts.spec import SPECS
from dagster_project.quality.expectations import (
    ERROR,
    FILE_COLUMN,
    WARNING,
    file_expectations,
    future_from,
    row_expectations,
)
from dagster_project.quality.report import load_run, record_validations
from dagster_project.quality.results import FileInfo, FileValidation
from dagster_project.quality.validate import validate_kind


def _info(kind: str, load_id: int, day: date | None, read: int, loaded: int, rejected: int = 0) -> FileInfo:
    return FileInfo(
        kind=kind,
        load_id=load_id,
        source_file=f"{kind}/{kind}_{load_id}.csv",
        extract_date=day,
        loaded_on=date(2026, 11, 22),
        rows_read=read,
        rows_loaded=loaded,
        rows_rejected=rejected,
        rows_duplicate=read - loaded - rejected,
    )


def _complaints(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[*SPECS["complaints"].column_names, FILE_COLUMN])
    for c in ("opened_at", "resolved_at", "updated_at"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    frame["compensation_amount"] = frame["compensation_amount"].astype("float64")
    frame["satisfaction"] = frame["satisfaction"].astype("Int32")
    for c in ("complaint_id", "customer_id", "channel", "category", "severity", "status"):
        frame[c] = frame[c].astype("str")
    return frame


def _complaint(
    cid: str,
    load_id: int,
    opened: str,
    resolved: str | None,
    status: str = "resolved",
    satisfaction: int | None = 4,
    updated: str | None = None,
) -> dict:
    return {
        "complaint_id": cid,
        "customer_id": "C1",
        "opened_at": opened,
        "channel": "phone",
        "category": "billing",
        "severity": "low",
        "status": status,
        "resolved_at": resolved,
        "compensation_amount": 0.0,
        "satisfaction": satisfaction,
        "updated_at": updated or opened,
        FILE_COLUMN: load_id,
    }


SAT = "satisfaction is empty in at most 50% of rows where status == 'resolved' (one row of slack)"
E5 = "at most 5.0% of the file's rows were rejected (one row of slack)"
W1 = "at most 1.0% of the file's rows were rejected (one row of slack)"


def _failed(v: FileValidation, severity: str) -> dict[str, object]:
    return {o.description: o for o in v.failed(severity)}


def test_suites_cover_the_spec():
    defs = row_expectations(SPECS["calls"])
    text = {d.description for d in defs}
    assert "wait_seconds is at least 0 and at most 86400" in text
    assert "outcome is one of resolved, transferred, abandoned, callback" in text
    assert "call_id is unique within the file" in text
    assert "started_at is not after the file's extract date + 1 day" in text
    assert all(d.severity == ERROR for d in defs)
    complaints = {d.description: d for d in row_expectations(SPECS["complaints"])}
    assert complaints["satisfaction is at least 1 and at most 5"].kwargs == {
        "column": "satisfaction",
        "min_value": 1,
        "max_value": 5,
    }
    assert "resolved_at is not before opened_at" in complaints
    warn = [d for d in file_expectations("complaints") if d.severity == WARNING]
    assert [d.description for d in warn] == [
        "at most 1.0% of the file's rows were rejected (one row of slack)",
        "satisfaction is empty in at most 50% of rows where status == 'resolved' (one row of slack)",
    ]
    assert future_from(date(2026, 11, 20)).isoformat() == "2026-11-22T00:00:00"


def test_each_problem_is_attributed_to_its_own_file():
    day = date(2026, 11, 20)
    files = [
        _info("complaints", 7, day, 4, 4),
        _info("complaints", 8, day, 3, 3),
        _info("complaints", 9, day, 100, 2, 7),
        _info("complaints", 10, day, 20, 19, 1),
    ]
    rows = _complaints(
        [
            # file 7: clean, including a case updated on the tolerated day after the extract date
            _complaint("K1", 7, "2026-11-19 09:00", "2026-11-20 10:00"),
            _complaint("K2", 7, "2026-11-20 09:00", None, status="open", satisfaction=None),
            _complaint("K3", 7, "2026-11-20 09:00", "2026-11-21 23:00", updated="2026-11-21 23:30"),
            _complaint("K4", 7, "2026-11-20 09:00", "2026-11-20 09:30"),
            # file 8: K5 twice in one file, resolved before opened, opened in the future; no rating on any
            _complaint("K5", 8, "2026-11-20 09:00", "2026-11-20 11:00", satisfaction=None),
            _complaint("K5", 8, "2026-11-20 09:00", "2026-11-19 11:00", satisfaction=None, updated="2026-11-20 12:00"),
            _complaint("K6", 8, "2026-12-24 09:00", "2026-12-24 10:00", satisfaction=None),
            # file 9: K5 again is fine (another file); 7 of 100 rows rejected
            _complaint("K5", 9, "2026-11-20 09:00", "2026-11-20 11:00"),
            _complaint("K7", 9, "2026-11-20 09:00", "2026-11-20 11:00"),
            # file 10: one odd row in a small file is forgiven (one row of slack): 1 of 20 rejected, 1 of 2 unrated
            _complaint("K8", 10, "2026-11-20 09:00", "2026-11-20 11:00"),
            _complaint("K9", 10, "2026-11-20 09:00", "2026-11-20 11:00", satisfaction=None),
        ]
    )
    v7, v8, v9, v10 = validate_kind("complaints", files, rows)

    assert v7.errors == [] and v7.warnings == []
    errors8 = _failed(v8, ERROR)
    assert set(errors8) == {
        "complaint_id is unique within the file",
        "resolved_at is not before opened_at",
        "opened_at is not after the file's extract date + 1 day",
        "resolved_at is not after the file's extract date + 1 day",
        "updated_at is not after the file's extract date + 1 day",
    }
    assert errors8["complaint_id is unique within the file"].unexpected_count == 2
    assert errors8["complaint_id is unique within the file"].examples == ("K5", "K5")
    assert errors8["opened_at is not after the file's extract date + 1 day"].examples == ("2026-12-24 09:00:00",)
    assert errors8["resolved_at is not before opened_at"].observed == "1 of 3 rows unexpected (33.33%)"
    assert set(_failed(v8, WARNING)) == {SAT}
    assert _failed(v8, WARNING)[SAT].observed == "100.0% empty"

    errors9 = _failed(v9, ERROR)
    assert set(errors9) == {E5}
    assert errors9[E5].observed == "7.00% rejected (7 of 100 rows read)"
    assert set(_failed(v9, WARNING)) == {W1}

    assert v10.errors == [] and v10.warnings == []


def test_wrong_types_and_missing_columns_fail_every_file():
    day = date(2026, 11, 20)
    files = [_info("complaints", 1, day, 1, 1), _info("complaints", 2, day, 1, 1)]
    rows = _complaints(
        [
            _complaint("K1", 1, "2026-11-20 09:00", "2026-11-20 10:00", satisfaction=3),
            _complaint("K2", 2, "2026-11-20 09:00", "2026-11-20 10:00", satisfaction=4),
        ]
    )
    rows["satisfaction"] = rows["satisfaction"].astype("str")  # e.g. a mapping that loads ratings as text
    rows = rows.drop(columns=["category"])
    for v in validate_kind("complaints", files, rows):
        errors = _failed(v, ERROR)
        assert "column category is present" in errors
        assert "satisfaction is typed INTEGER" in errors


def test_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRM_QUALITY_REJECT_ERROR_RATE", "0.10")
    day = date(2026, 11, 20)
    files = [_info("complaints", 1, day, 100, 1, 6)]
    rows = _complaints([_complaint("K1", 1, "2026-11-20 09:00", "2026-11-20 10:00")])
    [v] = validate_kind("complaints", files, rows)
    assert v.errors == []
    assert [o.description for o in v.warnings] == [W1]


def test_file_without_extract_date_is_measured_from_its_load_day():
    files = [_info("complaints", 1, None, 1, 1)]  # loaded on 2026-11-22
    rows = _complaints([_complaint("K1", 1, "2026-11-23 09:00", "2026-11-23 10:00")])
    [v] = validate_kind("complaints", files, rows)
    assert v.errors == []
    rows = _complaints([_complaint("K1", 1, "2026-11-24 00:00", "2026-11-24 10:00")])
    [v] = validate_kind("complaints", files, rows)
    assert "opened_at is not after the file's extract date + 1 day" in _failed(v, ERROR)


def test_report_pages_accumulate_per_run(tmp_path):
    day = date(2026, 11, 20)
    files = [_info("complaints", 1, day, 2, 2)]
    rows = _complaints(
        [
            _complaint("K1", 1, "2026-11-20 09:00", "2026-11-20 10:00"),
            _complaint("K1", 1, "2026-11-20 09:00", "2026-11-20 10:00", updated="2026-11-20 11:00"),
        ]
    )
    validations = validate_kind("complaints", files, rows)
    page = record_validations(tmp_path, "run-a", "complaints", validations)
    record_validations(tmp_path, "run-a", "calls", [])
    html = page.read_text(encoding="utf-8")
    assert "complaints/complaints_1.csv" in html and "complaint_id is unique within the file" in html
    assert 'id="calls"' in html and "No new files of this kind" in html
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")  # opens offline
    assert set(load_run(tmp_path, "run-a")) == {"complaints", "calls"}
    assert load_run(tmp_path, "run-a")["complaints"] == validations  # JSON round trip
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="runs/run-a/index.html"' in index and "FAILED" in index
    with pytest.raises(ValueError):
        record_validations(tmp_path, "../escape", "calls", [])
