"""The bare DuckDB ceiling does the loader's work on the same files: same rows, same typed columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest

from dagster_project import settings
from dagster_project.bench import ceiling
from dagster_project.bench.ingest import extract_files, ingest_kind, ingest_kinds
from dagster_project.demo import GeneratorConfig, generate
from dagster_project.extracts.spec import SPECS

if TYPE_CHECKING:  # annotations only: at run time another folder's conftest.py can shadow the name
    from conftest import CrmEnv


@pytest.fixture
def extracts(crm_env: CrmEnv) -> dict[str, list[Path]]:
    generate(GeneratorConfig(out_dir=crm_env.inbox, truth_dir=crm_env.data / "ground_truth", customers=300, days=5))
    return {k: v for k, v in extract_files(ingest_kinds()).items() if v}


def test_bare_table_has_the_specs_typed_columns(extracts: dict[str, list[Path]], tmp_path: Path) -> None:
    spec = SPECS["transactions"]
    con = duckdb.connect(str(tmp_path / "bare.duckdb"))
    con.execute(ceiling.persist_sql(spec, extracts["transactions"]))
    described = [(name, type_) for name, type_, *_ in con.execute("describe transactions").fetchall()]
    assert described == [(c.name, c.type) for c in spec.columns]
    # The amounts were parsed, not left as text: a sum over DECIMAL(18,2) is exact.
    assert con.execute("select sum(amount) is not null and count(*) > 0 from transactions").fetchone()[0]


def test_bare_reads_as_many_rows_as_the_loader(extracts: dict[str, list[Path]], tmp_path: Path) -> None:
    ceilings = ceiling.new_ceilings(extracts)
    ceiling.persist_once(ceilings, extracts, tmp_path / "bare")
    ceiling.read_once(ceilings, extracts, tmp_path / "bare")
    assert set(ceilings) == set(extracts) >= {"customers", "transactions", "calls", "complaints"}
    for kind, c in ceilings.items():
        load, failures = ingest_kind(kind, "test-run")
        assert failures == []
        assert c.files == len(extracts[kind]) == 5
        assert c.rows == load.rows_read > 0
        assert len(c.persist_runs) == len(c.read_runs) == 1 and c.persist_s > 0 and c.read_s > 0
    assert not (tmp_path / "bare").exists()  # its DuckDB files are removed after each attempt
    assert settings.warehouse_path().exists()


def test_refuses_files_in_another_column_order(extracts: dict[str, list[Path]]) -> None:
    path = extracts["transactions"][0]
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    names = header.split(",")
    names[0], names[1] = names[1], names[0]  # customer_id first: read by position, ids would swap columns
    path.write_text("\n".join([",".join(names), *rows]) + "\n", encoding="utf-8")
    with pytest.raises(ceiling.CeilingError, match=r"transactions_\d{8}\.csv: header .* not the canonical"):
        ceiling.new_ceilings(extracts)
