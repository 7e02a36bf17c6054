"""Simulator: start-up time with 1M leads, big-file generation and download speed."""

from __future__ import annotations

import hashlib
import time

import pytest

from marketo_assets.simulator.data import EXPORTABLE
from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.simulator import Api, wait_status


def test_starts_with_a_million_leads_in_under_15_seconds():
    t0 = time.monotonic()
    with run_simulator(leads=1_000_000, status_interval=0.2, rows_per_second=0) as sim:
        ready = time.monotonic() - t0
        assert ready < 15, f"ready after {ready:.1f}s"
        api = Api(sim)
        flt = {"createdAt": {"startAt": "2025-03-01T00:00:00Z", "endAt": "2025-03-01T23:59:59Z"}}
        job, _ = api.export(flt, ["id", "email", "createdAt"])
        assert job["numberOfRecords"] == sim.truth(flt)["count"] > 1000
    print(f"\n1M-lead simulator ready in {ready:.2f}s")


@pytest.mark.slow
def test_big_file_generation_rate_and_download_speed():
    """~200+ MB file (450k leads x all fields); download at loopback speed with sha256 check."""
    with run_simulator(
        leads=450_000,
        created_from="2025-01-01",
        created_to="2025-02-01",
        status_interval=0.2,
        rows_per_second=0,
        quota_mb=5000,
    ) as sim:
        api = Api(sim)
        flt = {"createdAt": {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-02-01T00:00:00Z"}}
        eid = api.create_id(flt, list(EXPORTABLE))
        api.enqueue(eid)
        state = wait_status(sim, eid, {"Completed"}, timeout=120)
        rate = state["numberOfRecords"] / state["generationSeconds"]
        job = api.job(eid)
        assert job["fileSize"] > 190 * 1024 * 1024
        h = hashlib.sha256()
        t0 = time.monotonic()
        got = 0
        with api.http.stream(
            "GET", f"/bulk/v1/leads/export/{eid}/file.json", headers=api.headers
        ) as r:
            for chunk in r.iter_raw(1 << 20):
                h.update(chunk)
                got += len(chunk)
        secs = time.monotonic() - t0
        assert got == job["fileSize"]
        assert "sha256:" + h.hexdigest() == job["fileChecksum"]
        mbps = got / secs / 1e6
        print(
            f"\ngenerated {state['numberOfRecords']} rows at {rate:,.0f} rows/s; "
            f"downloaded {got / 1e6:.0f} MB at {mbps:.0f} MB/s"
        )
        # Loopback speed with a wide margin for a loaded CI machine; rates are measured in bench/.
        assert mbps > 50
