"""Helpers of the Dagster end-to-end tests: simulator-backed resources, run environments,
what a run did (failure text, steps, Marketo calls) and local-state fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from marketo_assets.defs.resources import ExportOptions, MarketoResource
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.settings import PROJECT_ROOT

from .assets import lead_export_files, leads

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


def resources_for(sim, tmp_path: Path, options: ExportOptions | None = None, **overrides) -> dict:
    """The resources of a test run: the simulator, DuckDB and the ledger in `tmp_path`."""
    return {
        "marketo": marketo_resource(sim, tmp_path, **overrides),
        "export_options": options or ExportOptions(),
        "warehouse": DuckDBResource(database=str(tmp_path / "marketo.duckdb")),
    }


def run_env(sim, tmp_path: Path) -> dict[str, str]:
    """Environment for Dagster processes (daemon, run workers, CLI) in a test."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    root = Path(__file__).resolve().parents[2]  # the project
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


CREATE = "/bulk/v1/leads/export/create.json"
MONTHS = dg.MonthlyPartitionsDefinition(start_date="2025-01-01")
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def created_at_window(key: str) -> dict:
    """The createdAt filter a partition must send: inclusive ends, no milliseconds."""
    window = MONTHS.time_window_for_partition_key(key)
    end = window.end - timedelta(seconds=1)
    return {
        "createdAt": {
            "startAt": window.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endAt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    }


def materialize_leads(sim, root: Path, key: str) -> Path:
    """`root` as a data dir whose DuckDB file holds lead partition `key`."""
    result = dg.materialize(
        [lead_export_files, leads],
        partition_key=key,
        resources=resources_for(sim, root),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return root


def materialize_cli(env: dict[str, str], key: str) -> subprocess.CompletedProcess:
    """`dagster asset materialize` of lead partition `key` with the environment `env`."""
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "marketo_assets.definitions", "--select",
         "marketo/lead_export_files,marketo/leads", "--partition", key],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def leads_and_ledger(root: Path) -> tuple:
    with duckdb.connect(str(root / "marketo.duckdb"), read_only=True) as conn:
        rows = conn.execute("SELECT * FROM marketo.marketo.leads ORDER BY id").fetchall()
    ledger = [(e.export_id, e.status) for e in ExportLedger(root / "ledger.sqlite").entries()]
    return rows, ledger


def request_counts(sim) -> dict:
    requests = sim.state()["requests"]
    return {
        "marketo": requests["marketo"],
        "identity": requests["identity"],
        "create": requests["by_path"].get(CREATE, 0),
    }


def failure_text(result) -> str:
    """Every error message of a failed run: step failures and run/resource-init failures."""
    parts = []

    def add(error) -> None:
        while error is not None:
            parts.append(error.message)
            error = error.cause

    for event in result.all_events:
        if event.is_step_failure:
            add(event.step_failure_data.error)
        data = event.event_specific_data
        error = getattr(data, "error", None)
        if error is not None and hasattr(error, "message"):
            add(error)
    return "\n".join(parts)


def step_attempts(result) -> int:
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_START")


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """A folder nobody may write into: mode 0500, or for root (whom modes do not stop) the
    immutable attribute; skipped where neither is possible."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root without chattr +i: a folder cannot be made read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def wait_for(predicate, timeout: float, what: str):
    """`predicate()`'s first truthy value, polled every 0.2 s; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


HISTORY_HASH = "history"  # the request hash of `seed_history`'s job


def seed_history(ledger_path: Path) -> None:
    """One old, loaded lead job in the ledger: the quota autopilot starts the very first job of
    an empty ledger alone (its size cannot be predicted), and some tests need jobs at once."""
    export_id = "00000000-0000-4000-8000-000000000001"
    ledger = ExportLedger(ledger_path)
    ledger.record_created(
        export_id=export_id,
        asset="marketo/leads",
        partition_key="2024-12-01",
        request_hash=HISTORY_HASH,
        request={"payload": {"fields": ["id"]}, "export_type": "leads"},
        status="loaded",
    )
    ledger.update(export_id, records=1000, bytes=20_000, finished_at="2024-12-02T00:00:00+00:00")
