"""A project home of its own for an end-to-end test module: settings, reference data, restore.

The end-to-end modules build a warehouse from generated demo extracts under a temporary folder.
Every setting that names a place (data, models, warehouse, inbox, ground truth, Dagster home) is
cleared, so all of them derive from CRM_DATA_DIR and CRM_MODELS_DIR under that folder, and all of
them are restored afterwards. Restoring matters: the dbt asset writes CRM_WAREHOUSE_PATH into
os.environ (dbt's profile reads it), and a module that left it set made the next module load its
data into the previous module's warehouse.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV_VARS = (
    "CRM_DATA_DIR",
    "CRM_MODELS_DIR",
    "CRM_WAREHOUSE_PATH",
    "CRM_PUBLISHED_PATH",
    "CRM_INBOX",
    "CRM_GROUND_TRUTH_DIR",
    "DAGSTER_HOME",
)


@contextmanager
def project_home(root: Path) -> Iterator[Path]:
    """Point the settings at `root` (data under root/data, models under root/models) for the block."""
    saved = {key: os.environ.get(key) for key in ENV_VARS}
    try:
        for key in ENV_VARS:
            os.environ.pop(key, None)
        os.environ["CRM_DATA_DIR"] = str(root / "data")
        os.environ["CRM_MODELS_DIR"] = str(root / "models")
        shutil.copytree(REPO / "data" / "reference", root / "data" / "reference")
        yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
