"""The base URL and the export file through real Dagster runs against the simulator: the REST
Endpoint as Marketo shows it loads; a wrong path, a server that is not Marketo's identity
endpoint and a host that does not exist fail within seconds, once, naming the fix, before any
export job; a file longer than its fileSize is never read past it and fails the run once."""

from __future__ import annotations

import time

import dagster as dg
import duckdb
import pytest

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.client import not_marketo
from marketo_assets_tests.support.dagster import (
    SIM_ARGS,
    created_at_window,
    failure_text,
    leads_and_ledger,
    materialize_leads,
    request_counts,
    resources_for,
    step_attempts,
)

LOADED = "2025-01-01"  # loaded first; every bad run re-runs it
BAD_KEY = "2025-02-01"


@pytest.fixture(scope="module")
def sim():
    with run_simulator(**SIM_ARGS) as handle:
        yield handle


@pytest.fixture(scope="module")
def loaded(sim, tmp_path_factory):
    return materialize_leads(sim, tmp_path_factory.mktemp("loaded"), LOADED)


def _run(sim, root, partition_key: str, monkeypatch, base_url: str):
    """Materialize with MARKETO_BASE_URL-style env config (resolved when the run starts)."""
    monkeypatch.setenv("MARKETO_TEST_BASE_URL", base_url)
    started = time.monotonic()
    result = dg.materialize(
        [lead_export_files, leads],
        partition_key=partition_key,
        resources=resources_for(sim, root, base_url=dg.EnvVar("MARKETO_TEST_BASE_URL")),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize("shown", ["/rest", "/identity/"])
def test_the_rest_endpoint_as_marketo_shows_it_loads(sim, tmp_path, monkeypatch, shown):
    result, _ = _run(sim, tmp_path, BAD_KEY, monkeypatch, sim.base_url + shown)
    assert result.success, failure_text(result)
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        rows = conn.execute("SELECT count(*) FROM marketo.marketo.leads").fetchone()[0]
    assert rows == sim.truth(created_at_window(BAD_KEY))["count"]


LOGIN_PAGE = b"<!DOCTYPE html><html><title>Adobe Marketo Engage - Sign in</title></html>"


@pytest.mark.parametrize(
    ("case", "phrases"),
    [
        (
            "other_path",
            ["MARKETO_BASE_URL (base_url) has the path '/rest/v1'", "use the instance root http"],
        ),
        (
            "unresolvable_host",
            ["'nonexistent.invalid' does not resolve", "MARKETO_BASE_URL", "DNS"],
        ),
        (
            "not_an_identity_endpoint",
            ["answered HTTP 200 (text/html) without an access_token", "MARKETO_BASE_URL"],
        ),
    ],
)
def test_a_bad_base_url_fails_at_once_and_changes_nothing(sim, loaded, monkeypatch, case, phrases):
    before, calls = leads_and_ledger(loaded), request_counts(sim)
    with not_marketo(LOGIN_PAGE, "text/html") as (login_url, seen):
        base_url = {
            "other_path": sim.base_url + "/rest/v1",
            "unresolvable_host": "https://nonexistent.invalid",
            "not_an_identity_endpoint": login_url,
        }[case]
        result, elapsed = _run(sim, loaded, LOADED, monkeypatch, base_url)
    assert not result.success
    text = failure_text(result)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in:\n{text[-2000:]}"
    assert sim.client_secret not in text
    assert elapsed < 30  # not minutes of retries (a slow, shared machine: a wide margin)
    assert step_attempts(result) <= 1
    assert request_counts(sim) == calls  # the simulator was never called: no export job
    assert len(seen) <= 1
    assert leads_and_ledger(loaded) == before


def test_a_file_longer_than_its_file_size_fails_the_run_once(sim, tmp_path):
    sim.set_faults({"oversize": {"oversize_bytes": 50 << 20}})
    try:
        started = time.monotonic()
        result = dg.materialize(
            [lead_export_files, leads],
            partition_key=BAD_KEY,
            resources=resources_for(sim, tmp_path),
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        elapsed = time.monotonic() - started
    finally:
        sim.clear_faults()
    assert not result.success
    (entry,) = ExportLedger(tmp_path / "ledger.sqlite").entries()
    served = sim.state()["file_requests"][entry.export_id]
    text = failure_text(result)
    size = served[0]["length"]
    assert f"export job {entry.export_id} is corrupt after 3 download(s)" in text
    assert f"Marketo announced {size} bytes (fileSize)" in text
    assert f"a body of {size + (50 << 20)} bytes" in text
    assert len(served) == 3  # one step, three downloads: not retried by the step
    assert step_attempts(result) == 1
    assert entry.status == "failed"  # the next run creates a new job
    assert not (tmp_path / "marketo.duckdb").exists() or not _has_leads(tmp_path)
    assert elapsed < 60


def _has_leads(root) -> bool:
    with duckdb.connect(str(root / "marketo.duckdb"), read_only=True) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'leads'"
            ).fetchone()[0]
        )
