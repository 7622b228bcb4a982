"""Fixtures for the operations tests: a real Dagster instance under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture(scope="module")
def module_instance(tmp_path_factory) -> Iterator[dg.DagsterInstance]:
    """One instance for a module whose tests do not depend on each other's run history (creating a
    SQLite-backed instance takes seconds)."""
    home = tmp_path_factory.mktemp("dagster_home")
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst
