"""Shared fixtures: every test gets its own data folder, warehouse, inbox and Dagster home."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from dagster_project import settings

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CrmEnv:
    root: Path
    data: Path
    inbox: Path
    reference: Path
    warehouse: Path
    models: Path


@pytest.fixture
def crm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrmEnv:
    """Point every crm-warehouse setting at a fresh folder under tmp_path (settings read env at call time)."""
    data = tmp_path / "data"
    reference = data / "reference"
    shutil.copytree(REPO / "data" / "reference", reference)
    for var in settings.DERIVED_PATH_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CRM_DATA_DIR", str(data))
    monkeypatch.setenv("CRM_MODELS_DIR", str(tmp_path / "models"))
    (data / "inbox").mkdir(parents=True)
    return CrmEnv(
        root=tmp_path,
        data=data,
        inbox=settings.inbox_dir(),
        reference=settings.reference_dir(),
        warehouse=settings.warehouse_path(),
        models=settings.models_dir(),
    )
