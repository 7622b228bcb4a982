"""Dirty extracts through real Dagster materializations: every injected defect is accounted for."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date

import dagster as dg
import duckdb

from dagster_project import settings
from dagster_project.defs.ingest.assets import ingest_assets
from dagster_project.defs.ingest.checks import ingest_checks
from dagster_project.defs.resources import RunSettings, Warehouse
from dagster_project.demo import GeneratorConfig, generate


def test_every_injected_defect_is_rejected_duplicated_or_flagged(crm_env):
    summary = generate(GeneratorConfig(
        out_dir=settings.inbox_dir(), truth_dir=settings.ground_truth_dir(),
        customers=2000, days=60, seed=5, end_date=date(2026, 11, 21), dirty_rate=0.01, gzip=True,
    ))
    assert sum(summary.defects.values()) > 50

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*ingest_assets, *ingest_checks],
            resources={"warehouse": Warehouse(), "run_settings": RunSettings()},
            instance=instance,
            raise_on_error=False,
        )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {"rows_reconcile", "no_failed_files"}
    assert all(e.passed for e in evaluations if e.check_name == "rows_reconcile")

    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    try:
        rejected = {(f, ln) for f, ln in con.execute("select source_file, source_line from ods.rejected_rows").fetchall()}
        duplicated = {(f, ln) for f, ln in con.execute("select source_file, source_line from ods.duplicate_rows").fetchall()}
        orphans = set()
        for kind in ("transactions", "calls", "complaints"):
            orphans |= set(con.execute(
                f"select _source_file, _source_line from ods.{kind} where _is_orphan").fetchall())
        reasons = dict(con.execute("select source_file || ':' || source_line, reason from ods.rejected_rows").fetchall())
    finally:
        con.close()

    with (settings.ground_truth_dir() / "defects.csv").open(encoding="utf-8") as fh:
        defects = list(csv.DictReader(fh))
    missed = []
    by_type: Counter[str] = Counter()
    for d in defects:
        where = (d["file"], int(d["line"]))
        by_type[d["defect_type"]] += 1
        if d["defect_type"] == "duplicate":
            found = where in duplicated
        elif d["defect_type"] == "unknown_customer":
            found = where in orphans
        else:
            found = where in rejected
        if not found:
            missed.append((d["defect_type"], *where, d["detail"], reasons.get(f"{where[0]}:{where[1]}")))
    assert missed == [], missed[:10]
    assert set(by_type) == {"malformed_date", "non_numeric", "negative", "unknown_enum", "unknown_customer",
                            "duplicate", "truncated"}
