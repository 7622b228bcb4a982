"""A real portal for the tests: sample lists, users, and `crm-warehouse serve` on a free port.

Each test module gets its own folders (CRM_DATA_DIR, CRM_PORTAL_DIR, CRM_EXPORTS_DIR, CRM_INBOX,
CRM_REFERENCE_DIR under a temporary directory) and its own server process, started through the
real command line and stopped at the end of the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from portal_testkit import (
    LiveServer,
    PortalEnv,
    make_portal_env,
    start_server,
    stop_server,
)


@pytest.fixture(scope="module")
def portal_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalEnv]:
    portal = make_portal_env(tmp_path_factory.mktemp("portal"))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in portal.env.items():
            mp.setenv(name, value)
        for name in ("CRM_WAREHOUSE_PATH", "CRM_PUBLISHED_PATH", "CRM_PASSWORD"):
            mp.delenv(name, raising=False)
        yield portal


@pytest.fixture(scope="module")
def server(portal_env: PortalEnv) -> Iterator[LiveServer]:
    live = start_server(portal_env)
    try:
        yield live
    finally:
        stop_server(live)
