"""PostgreSQL fixtures: one database per test, in the session's throwaway cluster (`pg_server`,
in the suite's conftest.py: the ledger tests of unit/ use it too).

Tests here are marked `postgres`. Without the server binaries (or, as root, without the
`postgres` user to run them as) they skip, saying how to install them, unless
MARKETO_REQUIRE_ALL=1 (CI): then they fail, so a CI machine without PostgreSQL is noticed.
"""

from __future__ import annotations

import os
import re

import pytest

from marketo_assets_tests.support.pg_cluster import PgServer


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def pg_database(pg_server: PgServer, request) -> str:
    """A fresh, empty database named after the test."""
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    return pg_server.create_database(f"t_{name}_{os.getpid()}")


@pytest.fixture(scope="session")
def dbt_manifest():
    """The dbt manifest, parsed once (under a file lock) before a test loads the definitions."""
    from marketo_assets.transform.manifest import ensure_manifest

    return ensure_manifest()
