"""The demo-data generator: canonical extracts, determinism, defects, encodings and planted churn."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from dagster_project.demo import GeneratorConfig, generate
from dagster_project.demo.defects import DEFECT_TYPES
from dagster_project.demo.simulation import CLOSED_SHARE, DECAY_AT_RISK
from dagster_project.demo.truth import p_label_90d
from dagster_project.demo.writer import write_extract
from dagster_project.extracts import spec

KINDS = spec.SOURCE_KINDS
END = date(2026, 3, 31)
TS = "%Y-%m-%d %H:%M:%S"
NUMBER = re.compile(r"-?\d+(\.\d+)?")


# ---- helpers --------------------------------------------------------------------------------


def _run(root: Path, **kwargs: object) -> Path:
    args: dict[str, object] = {"customers": 300, "days": 20, "seed": 11, "end_date": END}
    args.update(kwargs)
    generate(GeneratorConfig(out_dir=root / "inbox", truth_dir=root / "ground_truth", **args))  # type: ignore[arg-type]
    return root


def _text(path: Path, encoding: str = "utf-8") -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode(encoding)


def _files(root: Path, kind: str) -> list[Path]:
    return sorted((root / "inbox" / kind).iterdir())


def _file_date(path: Path) -> date:
    return datetime.strptime(path.name.split("_")[1][:8], "%Y%m%d").date()


def _rows(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    return list(csv.DictReader(_text(path, encoding).splitlines()))


def _all_rows(root: Path, kind: str) -> list[tuple[date, dict[str, str]]]:
    return [(_file_date(p), row) for p in _files(root, kind) for row in _rows(p)]


def _truth(root: Path, name: str) -> list[dict[str, str]]:
    with (root / "ground_truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _problems(kind: str, fields: list[str]) -> list[str]:
    """Why a row is not canonical (empty when it is)."""
    extract = spec.SPECS[kind]
    if len(fields) != len(extract.columns):
        return [f"{len(fields)} fields, expected {len(extract.columns)}"]
    out = []
    for col, value in zip(extract.columns, fields, strict=True):
        if value == "":
            if col.required:
                out.append(f"{col.name} is empty")
            continue
        if col.allowed is not None and value not in col.allowed:
            out.append(f"{col.name}={value!r} not allowed")
        if col.pattern is not None and not re.fullmatch(col.pattern, value):
            out.append(f"{col.name}={value!r} does not match {col.pattern}")
        try:
            if col.type == "DATE":
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
                date.fromisoformat(value)
            elif col.type == "TIMESTAMP":
                datetime.strptime(value, TS)
                assert len(value) == 19
            elif col.type.startswith("DECIMAL"):
                assert re.fullmatch(r"\d+\.\d{2}", value)
            elif col.type == "INTEGER":
                assert re.fullmatch(r"\d+", value)
        except (ValueError, AssertionError):
            out.append(f"{col.name}={value!r} is not a canonical {col.type}")
            continue
        if col.min_value is not None and float(value) < col.min_value:
            out.append(f"{col.name}={value} below {col.min_value}")
        if col.max_value is not None and float(value) > col.max_value:
            out.append(f"{col.name}={value} above {col.max_value}")
    return out


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    pos = label.astype(bool)
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


# ---- runs shared by the tests (small: a few seconds in all) ------------------------------------


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("clean"), customers=1500, days=220, seed=5)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("dirty"), customers=400, days=15, dirty_rate=0.05, gzip=True)


# ---- tests ------------------------------------------------------------------------------------


def test_same_seed_and_arguments_give_identical_bytes(tmp_path: Path) -> None:
    args = {"customers": 250, "days": 12, "seed": 3, "dirty_rate": 0.03, "gzip": True}
    a = _run(tmp_path / "a", **args)
    b = _run(tmp_path / "b", **args)
    c = _run(tmp_path / "c", **{**args, "seed": 4})
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.csv*"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.csv*"))
    assert len(files_a) == 4 * 12 + 3
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert any((a / rel).read_bytes() != (c / rel).read_bytes() for rel in files_a if (c / rel).exists())


def test_one_file_per_kind_and_day_with_canonical_header(clean: Path) -> None:
    expected_days = [END - timedelta(days=i) for i in range(219, -1, -1)]
    for kind in KINDS:
        files = _files(clean, kind)
        assert [p.name for p in files] == [f"{kind}_{d:%Y%m%d}.csv" for d in expected_days]
        header = ",".join(spec.SPECS[kind].column_names)
        for path in files:
            raw = path.read_bytes()
            assert raw.startswith(header.encode() + b"\n"), path
            assert b"\r" not in raw and raw.endswith(b"\n")
    assert sorted(p.name for p in (clean / "inbox").iterdir()) == sorted(KINDS)


def test_a_day_without_rows_is_a_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "complaints" / "complaints_20260101.csv"
    empty = [pa.array([], pa.string()) for _ in spec.COMPLAINTS.columns]
    written = write_extract(path, "complaints/complaints_20260101.csv", "complaints", empty)
    assert written.rows == 0
    assert path.read_bytes() == (",".join(spec.COMPLAINTS.column_names) + "\n").encode()


def test_every_value_is_canonical_when_clean(clean: Path) -> None:
    counts = {}
    for kind in KINDS:
        n = 0
        for path in _files(clean, kind):
            reader = csv.reader(_text(path).splitlines())
            next(reader)
            for fields in reader:
                n += 1
                assert not _problems(kind, fields), (path.name, reader.line_num, _problems(kind, fields))
        counts[kind] = n
    assert min(counts.values()) > 100, counts
    summary = json.loads((clean / "ground_truth" / "generation.json").read_text())
    assert summary["rows"] == counts
    assert summary["defects"] == {}


def test_rows_fall_on_their_file_day(clean: Path) -> None:
    first = END - timedelta(days=219)
    stamp = {
        "transactions": "txn_at",
        "calls": "started_at",
        "complaints": "updated_at",
        "customers": "updated_at",
    }
    for kind, column in stamp.items():
        for day, row in _all_rows(clean, kind):
            at = datetime.strptime(row[column], TS).date()
            if kind == "customers" and day == first:
                assert at <= day  # the initial base shows each record's last change
            else:
                assert at == day, (kind, row)


def test_customers_day_one_holds_the_initial_base_then_only_changes(clean: Path) -> None:
    truth = {r["customer_id"]: r for r in _truth(clean, "customers_truth.csv")}
    files = _files(clean, "customers")
    base = _rows(files[0])
    assert {r["customer_id"] for r in base} >= {c for c, t in truth.items() if t["in_initial_base"] == "true"}
    assert len(base) == len({r["customer_id"] for r in base})
    later = [r for p in files[1:] for r in _rows(p)]
    latest = {r["customer_id"]: r for r in base}
    changes = 0
    for r in later:  # each later row is a sign-up, a closure, or a changed phone/e-mail/region
        before = latest.get(r["customer_id"])
        if before is None:
            assert r["signup_date"] == r["updated_at"][:10] and r["status"] == "active", r
        elif r["status"] == "active":
            assert any(before[c] != r[c] for c in ("phone", "email", "region")), r
            changes += 1
        latest[r["customer_id"]] = r
    assert changes > 5
    signed_up = {r["customer_id"] for r in later if r["signup_date"] == r["updated_at"][:10]}
    assert signed_up == {c for c, t in truth.items() if t["in_initial_base"] == "false"} - {
        r["customer_id"] for r in base
    }
    names = [r["full_name"] for r in base]
    chinese = sum(bool(re.search(r"[\u4e00-\u9fff]", n)) for n in names) / len(names)
    assert 0.55 < chinese < 0.8
    assert any("," in n for n in names)  # "Surname, Given" and company names need RFC 4180 quoting


def test_complaints_reappear_until_resolved(clean: Path) -> None:
    history: dict[str, list[dict[str, str]]] = defaultdict(list)
    for _, row in _all_rows(clean, "complaints"):
        history[row["complaint_id"]].append(row)
    order = {s: i for i, s in enumerate(spec.COMPLAINT_STATUSES)}
    full_lifecycles = 0
    for cid, rows in history.items():
        stamps = [row["updated_at"] for row in rows]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), cid
        assert len({row["opened_at"] for row in rows}) == 1
        statuses = [order[row["status"]] for row in rows]
        assert statuses == sorted(statuses), (cid, statuses)
        last = rows[-1]
        if last["status"] == "resolved":
            assert last["resolved_at"] >= last["opened_at"]
            assert all(r["resolved_at"] == "" for r in rows[:-1])
        if [r["status"] for r in rows] == ["open", "in_progress", "resolved"]:
            full_lifecycles += 1
    assert full_lifecycles > 20


def test_no_activity_after_churn_and_closed_churners_are_closed(clean: Path) -> None:
    truth = {r["customer_id"]: r for r in _truth(clean, "customers_truth.csv")}
    last_seen: dict[str, date] = {}
    for kind, column in (("transactions", "txn_at"), ("calls", "started_at")):
        for _, row in _all_rows(clean, kind):
            if row["customer_id"]:
                day = datetime.strptime(row[column], TS).date()
                last_seen[row["customer_id"]] = max(day, last_seen.get(row["customer_id"], day))
    closed_rows = {r["customer_id"]: r for _, r in _all_rows(clean, "customers") if r["status"] == "closed"}
    churners = [t for t in truth.values() if t["churned"] == "true"]
    assert len(churners) > 50
    for t in truth.values():
        cid = t["customer_id"]
        if t["churned"] == "true":
            churn = date.fromisoformat(t["churn_date"])
            assert last_seen.get(cid, churn - timedelta(days=1)) < churn, cid
        if t["churn_mode"] == "closed":
            assert closed_rows[cid]["closed_at"][:10] == t["churn_date"]
        else:
            assert cid not in closed_rows
    modes = [t["churn_mode"] for t in churners]
    assert 0.25 < modes.count("closed") / len(modes) < 0.55
    rate = json.loads((clean / "ground_truth" / "generation.json").read_text())["annual_churn_rate"]
    assert 0.15 < rate < 0.35


def test_planted_signal_is_learnable(clean: Path) -> None:
    snaps = [r for r in _truth(clean, "churn_truth_snapshots.csv") if r["realized_label_90d"]]
    assert len(snaps) > 2000
    p = np.array([float(r["p_label_90d"]) for r in snaps])
    label = np.array([r["realized_label_90d"] == "true" for r in snaps])
    churn = np.array([r["realized_churn_90d"] == "true" for r in snaps])
    assert 0.05 < label.mean() < 0.4
    assert _auc(p, label) > 0.7
    assert p[churn].mean() > 2 * p[~churn].mean()
    # calibration: predicted and realized label rates agree overall
    assert abs(p.mean() - label.mean()) < 0.05


def test_realized_labels_match_the_extracts(clean: Path) -> None:
    consumption: dict[str, list[date]] = defaultdict(list)
    for day, row in _all_rows(clean, "transactions"):
        if row["txn_type"] in spec.CONSUMPTION_TXN_TYPES:
            consumption[row["customer_id"]].append(day)
    closed = {
        r["customer_id"]: date.fromisoformat(r["closed_at"][:10])
        for _, r in _all_rows(clean, "customers")
        if r["status"] == "closed"
    }
    checked = 0
    for r in _truth(clean, "churn_truth_snapshots.csv"):
        if not r["realized_label_90d"]:
            continue
        s = date.fromisoformat(r["snapshot_date"])
        window = (s, s + timedelta(days=90))
        bought = any(window[0] < d <= window[1] for d in consumption[r["customer_id"]])
        was_closed = r["customer_id"] in closed and window[0] < closed[r["customer_id"]] <= window[1]
        assert (r["realized_label_90d"] == "true") == (was_closed or not bought), r
        checked += 1
    assert checked > 2000


def test_p_label_formula_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    h, rate, e0, n = 0.01, 0.04, 0.8, 400_000
    mult = 1 + 0.5 * np.sin(np.arange(90) / 7.0)
    one = np.ones(1)
    analytic = p_label_90d(h * one, rate * one, e0 * one, np.array([True]), mult, np.array([30]))[0]
    churn_day = rng.geometric(h, n)  # the first day without activity
    closed = rng.random(n) < CLOSED_SHARE
    lam = rate * e0 * np.exp(-DECAY_AT_RISK * np.arange(90)) * mult
    bought = np.zeros(n, dtype=bool)
    for t in range(1, 91):
        active = churn_day > t
        bought |= active & (rng.random(n) < 1 - np.exp(-lam[t - 1]))
        if t == 30:
            bought |= active  # the refund scheduled for day 30
    label = (closed & (churn_day <= 90)) | ~bought
    assert 0.2 < analytic < 0.8
    assert abs(label.mean() - analytic) < 0.005
    never = p_label_90d(0 * one, 0 * one, one, np.zeros(1, bool), mult, np.array([99]))[0]
    assert never == 1.0  # no hazard, no purchases: the label always fires
    churn_only = p_label_90d(one, 100 * one, one, np.zeros(1, bool), mult, np.array([99]))[0]
    assert churn_only == pytest.approx(1.0)  # churns on day 1, closed or silent: the label fires


def test_defects_are_recorded_at_the_line_that_holds_them(dirty: Path) -> None:
    defects = _truth(dirty, "defects.csv")
    assert {d["defect_type"] for d in defects} == set(DEFECT_TYPES)
    known_ids = {r["customer_id"] for r in _truth(dirty, "customers_truth.csv")}
    by_file: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
    for d in defects:
        by_file[d["file"]][int(d["line"])] = d
    for rel, marks in by_file.items():
        lines = _text(dirty / "inbox" / rel).split("\n")
        kind = rel.split("/")[0]
        names = spec.SPECS[kind].column_names
        for line_no, d in marks.items():
            fields = next(csv.reader([lines[line_no - 1]]))
            kind_ok = d["kind"] == kind
            col = names.index(d["column"]) if d["column"] else -1
            value = fields[col] if 0 <= col < len(fields) else None
            t = d["defect_type"]
            if t == "truncated":
                ok = len(fields) < len(names)
            elif t == "duplicate":
                ok = (
                    int(d["original_line"]) < line_no
                    and lines[int(d["original_line"]) - 1] == lines[line_no - 1]
                )
            elif t == "malformed_date":
                ok = bool(_problems(kind, fields)) and f"{d['column']}=" in " ".join(_problems(kind, fields))
            elif t == "non_numeric":
                ok = value is not None and not NUMBER.fullmatch(value)
            elif t == "negative":
                ok = value is not None and float(value) < 0
            elif t == "unknown_enum":
                allowed = spec.SPECS[kind].column(d["column"]).allowed
                ok = allowed is not None and value not in allowed and value != ""
            elif t == "unknown_customer":
                ok = bool(re.fullmatch(r"C\d{8}", value or "")) and value not in known_ids
            else:
                ok = False
            assert kind_ok and ok, (rel, line_no, d, lines[line_no - 1])
    # every line that is not a recorded defect is canonical
    for kind in KINDS:
        for path in _files(dirty, kind):
            rel = f"{kind}/{path.name}"
            for i, line in enumerate(_text(path).split("\n")[1:-1], start=2):
                if i not in by_file.get(rel, {}):
                    fields = next(csv.reader([line]))
                    assert not _problems(kind, fields), (rel, i, _problems(kind, fields))


def test_defect_rate_is_about_what_was_asked(dirty: Path) -> None:
    summary = json.loads((dirty / "ground_truth" / "generation.json").read_text())
    rows = sum(summary["rows"].values())
    defects = sum(summary["defects"].values())
    assert 0.03 < defects / rows < 0.07


def test_gb18030_keeps_chinese_names_exactly(tmp_path: Path) -> None:
    utf8 = _run(tmp_path / "u", customers=200, days=3)
    gb = _run(tmp_path / "g", customers=200, days=3, encoding="gb18030")
    for kind in KINDS:
        for a, b in zip(_files(utf8, kind), _files(gb, kind), strict=True):
            assert _text(b, "gb18030") == _text(a, "utf-8")
    base_u = _files(utf8, "customers")[0].read_bytes()
    base_g = _files(gb, "customers")[0].read_bytes()
    assert base_u != base_g
    names = [r["full_name"] for r in _rows(_files(gb, "customers")[0], "gb18030")]
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", n)) for n in names) > 80


def test_cli_writes_truth_next_to_the_inbox(tmp_path: Path) -> None:
    from dagster_project.commands.demo_data import demo_data

    out = tmp_path / "x" / "inbox"
    result = CliRunner().invoke(demo_data, ["--customers", "60", "--days", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "transactions" in result.output and "Ground truth" in result.output
    assert (tmp_path / "x" / "ground_truth" / "customers_truth.csv").exists()
    assert len(list((out / "calls").iterdir())) == 4
    bad = CliRunner().invoke(demo_data, ["--end-date", "21/11/2026", "--out", str(out)])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
