"""Paths and settings shared by Dagster, dbt, the CLI and the portal.

Every path comes from one environment variable with a default under the project folder, so a
test (or a second installation) can point the whole pipeline elsewhere by setting a few
variables. Read them through these functions, never by hard-coding a path: the values are read
at call time, so a test that sets an environment variable sees it immediately.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def home() -> Path:
    """The project folder (`CRM_HOME`, default: the repository root)."""
    return _path("CRM_HOME", PROJECT_ROOT)


def data_dir() -> Path:
    """Root of everything generated at run time (`CRM_DATA_DIR`, default `<home>/data`)."""
    return _path("CRM_DATA_DIR", home() / "data")


def inbox_dir() -> Path:
    """Where extract files arrive, one sub-folder per kind (`CRM_INBOX`)."""
    return _path("CRM_INBOX", data_dir() / "inbox")


def reference_dir() -> Path:
    """Reference data and configuration: source mappings, teams, do-not-contact (`CRM_REFERENCE_DIR`)."""
    return _path("CRM_REFERENCE_DIR", data_dir() / "reference")


def sources_dir() -> Path:
    """YAML source mappings, one per extract kind (`CRM_SOURCES_DIR`)."""
    return _path("CRM_SOURCES_DIR", reference_dir() / "sources")


def warehouse_path() -> Path:
    """The build DuckDB file that Dagster, dbt and the CLI all write (`CRM_WAREHOUSE_PATH`)."""
    return _path("CRM_WAREHOUSE_PATH", data_dir() / "warehouse" / "crm.duckdb")


def published_path() -> Path:
    """The read-only copy of the marts that analysts query (`CRM_PUBLISHED_PATH`)."""
    return _path("CRM_PUBLISHED_PATH", warehouse_path().parent / "marts.duckdb")


def exports_dir() -> Path:
    """Files handed to people: target lists and their manifests (`CRM_EXPORTS_DIR`)."""
    return _path("CRM_EXPORTS_DIR", data_dir() / "exports")


def ground_truth_dir() -> Path:
    """Demo generator's ground truth, for model evaluation only; the pipeline never reads it."""
    return _path("CRM_GROUND_TRUTH_DIR", data_dir() / "ground_truth")


def quality_dir() -> Path:
    """Data-quality reports (Great Expectations Data Docs) (`CRM_QUALITY_DIR`)."""
    return _path("CRM_QUALITY_DIR", data_dir() / "quality")


def models_dir() -> Path:
    """Trained-model registry (`CRM_MODELS_DIR`, default `<home>/models`)."""
    return _path("CRM_MODELS_DIR", home() / "models")


def portal_dir() -> Path:
    """Portal state: users, sessions secret, audit log (`CRM_PORTAL_DIR`)."""
    return _path("CRM_PORTAL_DIR", data_dir() / "portal")


def dagster_home() -> Path:
    """Dagster instance folder with run history (`DAGSTER_HOME`, default `<data>/dagster_home`)."""
    return _path("DAGSTER_HOME", data_dir() / "dagster_home")


# Every path setting whose default derives from CRM_DATA_DIR (or another of these); DAGSTER_HOME and
# CRM_WAREHOUSE_PATH are also set in os.environ by the runner and the dbt asset while they work.
DERIVED_PATH_VARIABLES = (
    "CRM_INBOX",
    "CRM_REFERENCE_DIR",
    "CRM_SOURCES_DIR",
    "CRM_WAREHOUSE_PATH",
    "CRM_PUBLISHED_PATH",
    "CRM_EXPORTS_DIR",
    "CRM_GROUND_TRUTH_DIR",
    "CRM_QUALITY_DIR",
    "CRM_PORTAL_DIR",
    "DAGSTER_HOME",
)


@contextmanager
def pointed_at(data: Path, models: Path, clear: tuple[str, ...] = ()) -> Iterator[None]:
    """Within the block, every path setting derives from `data` and `models`; all restored after.

    For the benchmark's scratch folder and for tests: CRM_DATA_DIR and CRM_MODELS_DIR are set, the
    derived variables (and `clear`) are removed, and on exit every one of them is put back as it
    was, including those the runner or the dbt asset set in os.environ meanwhile.
    """
    touched = ("CRM_DATA_DIR", "CRM_MODELS_DIR", *DERIVED_PATH_VARIABLES, *clear)
    saved = {name: os.environ.get(name) for name in touched}
    try:
        for name in (*DERIVED_PATH_VARIABLES, *clear):
            os.environ.pop(name, None)
        os.environ["CRM_DATA_DIR"] = str(data)
        os.environ["CRM_MODELS_DIR"] = str(models)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_project_dir() -> Path:
    return PROJECT_ROOT / "dbt"


def duckdb_memory_limit() -> str:
    """Memory cap handed to DuckDB for loads and builds (`CRM_DUCKDB_MEMORY_LIMIT`)."""
    return os.environ.get("CRM_DUCKDB_MEMORY_LIMIT", "3GB")


PORTAL_SCRYPT_LOG2_N = 17  # OWASP's scrypt cost: N = 2^17 (128 MiB, about half a second per hash)


def portal_scrypt_log2_n() -> int:
    """log2 of the scrypt N for new portal password hashes (`CRM_PORTAL_SCRYPT_LOG2_N`, default 17).

    Only the tests lower it (to 12), so they do not spend half a second per sign-in; `serve`
    warns when it is below the default. Accepted: 10 to 20.
    """
    value = os.environ.get("CRM_PORTAL_SCRYPT_LOG2_N", "").strip()
    if not value:
        return PORTAL_SCRYPT_LOG2_N
    if not value.isdigit() or not 10 <= int(value) <= 20:
        raise ValueError(f"CRM_PORTAL_SCRYPT_LOG2_N={value!r}: use a whole number from 10 to 20 (default 17)")
    return int(value)
