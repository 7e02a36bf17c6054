"""Fixtures for Dagster end-to-end tests: simulator-backed resources and a temp DuckDB file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dagster_duckdb import DuckDBResource

from marketo_assets.defs.resources import ExportOptions, MarketoResource

# Small but realistic: six monthly windows, fast status refreshes.
SIM_ARGS = {
    "leads": 3000,
    "seed": 11,
    "created_from": "2025-01-01",
    "created_to": "2025-07-01",
    "status_interval": 0.2,
}


def marketo_resource(sim, tmp_path: Path, **overrides) -> MarketoResource:
    config = {
        "base_url": sim.base_url,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "poll_interval": 0.2,
        "job_timeout": 120.0,
        "staging_dir": str(tmp_path / "exports"),
        "ledger_path": str(tmp_path / "ledger.sqlite"),
        **overrides,
    }
    return MarketoResource(**config)


def resources_for(sim, tmp_path: Path, **overrides) -> dict:
    return {
        "marketo": marketo_resource(sim, tmp_path, **overrides),
        "export_options": ExportOptions(),
        "warehouse": DuckDBResource(database=str(tmp_path / "marketo.duckdb")),
    }


def run_env(sim, tmp_path: Path) -> dict[str, str]:
    """Environment for Dagster processes (daemon, run workers, CLI) in a test."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    (home / "dagster.yaml").write_text((root / "dagster_home" / "dagster.yaml").read_text())
    return {
        "DAGSTER_HOME": str(home),
        "MARKETO_BASE_URL": sim.base_url,
        "MARKETO_CLIENT_ID": sim.client_id,
        "MARKETO_CLIENT_SECRET": sim.client_secret,
        "MARKETO_POLL_INTERVAL": "0.2",
        "MARKETO_JOB_TIMEOUT": "300",
        "DUCKDB_PATH": str(tmp_path / "marketo.duckdb"),
        "MARKETO_STAGING_DIR": str(tmp_path / "exports"),
        "MARKETO_LEDGER_PATH": str(tmp_path / "ledger.sqlite"),
        "PATH": str(Path(os.sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }


@pytest.fixture
def lead_sim(simulator_factory):
    with simulator_factory(**SIM_ARGS) as sim:
        yield sim


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The dbt manifest, parsed once before any test loads the definitions (a clean clone has
    none). Under a file lock: parallel pytest workers wait for one parse instead of racing."""
    from marketo_assets.defs.dbt_manifest import ensure_manifest

    return ensure_manifest()


def wait_for(predicate, timeout: float, what: str):
    """`predicate()`'s first truthy value, polled every 0.2 s; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
