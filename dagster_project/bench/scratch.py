"""The benchmark's scratch folder and the environment that points the whole pipeline at it.

Layout of a scratch folder:

    <workdir>/.crm-bench         marker: this folder belongs to a benchmark and may be deleted
    <workdir>/data/              CRM_DATA_DIR: inbox/, ground_truth/, warehouse/, dagster_home/, reference/
    <workdir>/models/            CRM_MODELS_DIR
    <workdir>/bare/              fresh DuckDB files of the bare read_csv ceiling
    <workdir>/dbt_target/        DBT_TARGET_PATH of the dbt runs (run_results.json, compiled SQL)

While `scratch_environment()` is active every setting derived from the data folder resolves under
the scratch folder, whatever the caller had set: variables that would override a derived path are
removed, so are the alert settings (e-mail, webhook), and everything is restored on exit.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import settings

log = logging.getLogger(__name__)

MARKER = ".crm-bench"
# Settings that make a run reach outside this machine (alert e-mail and webhook): a benchmark's
# failing night must not page anyone.
OUTBOUND_PREFIXES = ("CRM_ALERT_",)


class ScratchError(ValueError):
    """A work folder that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class Scratch:
    root: Path
    created: bool
    lock_fd: int = -1

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def bare(self) -> Path:
        return self.root / "bare"

    @property
    def dbt_target(self) -> Path:
        return self.root / "dbt_target"

    @property
    def inbox(self) -> Path:
        return self.data / "inbox"

    @property
    def truth(self) -> Path:
        return self.data / "ground_truth"


def _lock(root: Path) -> int:
    """Hold an exclusive lock on the marker for the whole run: two benchmarks in one folder would
    delete each other's warehouse."""
    fd = os.open(root / MARKER, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise ScratchError(
            f"--workdir {root} is in use by another `crm-warehouse bench`; wait for it or give another folder"
        ) from exc
    return fd


def open_scratch(workdir: Path | None) -> Scratch:
    """A new temp folder under `<data>/scratch`, or `workdir` (new, empty, or an earlier benchmark's)."""
    if workdir is None:
        parent = settings.data_dir() / "scratch"
        parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="bench-", dir=parent))
        return Scratch(root, created=True, lock_fd=_lock(root))
    root = workdir.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ScratchError(f"--workdir {root} is a file; give a folder")
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER).exists():
        raise ScratchError(
            f"--workdir {root} is not empty and was not made by `crm-warehouse bench` (no {MARKER} file); "
            "give a new or empty folder, since the benchmark deletes it afterwards unless --keep"
        )
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    return Scratch(root, created=created, lock_fd=_lock(root))


def close_scratch(scratch: Scratch, remove: bool) -> None:
    """Release the folder's lock; with `remove`, delete it (only one carrying the benchmark marker)."""
    try:
        if remove and (scratch.root / MARKER).exists():
            shutil.rmtree(scratch.root, ignore_errors=True)
            log.info("removed scratch folder %s", scratch.root)
    finally:
        if scratch.lock_fd >= 0:
            os.close(scratch.lock_fd)


def _copy_reference(source: Path, target: Path) -> None:
    """Reference data (teams, do-not-contact, retention settings), without the source mappings.

    The demo generator writes the canonical formats, so a company mapping under `sources/` (for
    another system's files) must not apply to the benchmark's extracts.
    """
    if not source.is_dir():
        return
    mappings = (source / "sources").resolve()

    def skip(folder: str, names: list[str]) -> set[str]:
        hidden = {n for n in names if n.startswith(".")}
        if Path(folder).resolve() == mappings:
            hidden |= {n for n in names if n.endswith((".yml", ".yaml"))}
        return hidden

    shutil.copytree(source, target, ignore=skip, dirs_exist_ok=True)


@contextmanager
def scratch_environment(scratch: Scratch) -> Iterator[None]:
    """Point CRM_DATA_DIR, CRM_MODELS_DIR and everything derived from them at the scratch folder.

    Also clears DBT_TARGET_PATH (the marts stage sets its own) and the alert settings.
    """
    real_reference = settings.reference_dir()
    outbound = tuple(name for name in os.environ if name.startswith(OUTBOUND_PREFIXES))
    with settings.pointed_at(scratch.data, scratch.models, clear=("DBT_TARGET_PATH", *outbound)):
        scratch.data.mkdir(parents=True, exist_ok=True)
        scratch.models.mkdir(parents=True, exist_ok=True)
        _copy_reference(real_reference, settings.reference_dir())
        yield
