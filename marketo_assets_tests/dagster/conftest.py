"""Fixtures for Dagster end-to-end tests (their helpers: `marketo_assets_tests.support.dagster`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketo_assets_tests.support.dagster import SIM_ARGS


@pytest.fixture
def lead_sim(simulator_factory):
    with simulator_factory(**SIM_ARGS) as sim:
        yield sim


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The dbt manifest, parsed once before any test loads the definitions (a clean clone has
    none). Under a file lock: parallel pytest workers wait for one parse instead of racing."""
    from marketo_assets.transform.manifest import ensure_manifest

    return ensure_manifest()
