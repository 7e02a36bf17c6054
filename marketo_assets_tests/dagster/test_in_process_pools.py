"""Pools hold with the in-process executor: each run is one process (no step processes), and
still an export step waits for a `marketo_bulk_export` slot (2) and a load for `duckdb` (1)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from marketo_assets.local.instance import ensure_pools
from marketo_assets.local.sqlite_storage import LOCK_FILE
from marketo_assets_tests.support.crash_runs import (
    FAST,
    RunProcesses,
    duplicate_ids,
    jobs_for,
    max_overlap,
    partition_rows,
    step_intervals,
)
from marketo_assets_tests.support.dagster import created_at_window, run_env

PARTITIONS = ["2025-01-01", "2025-02-01", "2025-03-01"]  # 3 exports, pool of 2


@pytest.mark.timeout(400)
def test_in_process_runs_wait_for_pool_slots(lead_sim, tmp_path, monkeypatch):
    env = run_env(lead_sim, tmp_path)  # the project's dagster.yaml: pools at op granularity
    # Each load holds the duckdb slot until every export is done (at most 60 s), so another
    # run's load asks for it meanwhile, however far apart Marketo finishes the jobs.
    env["CRASH_WORKER_PAUSE_SECONDS"] = "60"
    env["CRASH_WORKER_HOLD_UNTIL_EXPORTED"] = str(len(PARTITIONS))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
    # Jobs take ~5 s in Marketo, so three export steps at once would overlap without the pool.
    lead_sim.configure(**{**FAST, "rows_per_second": 100})
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = RunProcesses({**os.environ, **env}, logs)
    try:
        procs = [processes.start([key], pause_load=f"{key}:{tmp_path / key}") for key in PARTITIONS]
        for proc in procs:
            assert proc.wait(timeout=300) == 0, proc.output()[-3000:]
    finally:
        processes.close()

    with dg.DagsterInstance.get() as instance:
        runs = list(instance.get_runs())
        steps = step_intervals(instance, runs)
        messages = [str(e.message) for r in runs for e in instance.all_logs(r.run_id)]
    assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert all("in process" in m for m in messages if m.startswith("Executing steps"))
    # The claims went through the project's storage, which makes them atomic (without it,
    # runs claiming at the same moment all got the last slot: 3 exports at once here).
    assert (Path(env["DAGSTER_HOME"]) / "history" / "runs" / LOCK_FILE).exists()
    assert max_overlap(steps["marketo__lead_export_files"]) <= 2
    assert max_overlap(steps["marketo__leads"]) <= 1
    assert any("blocked by limit for pool marketo_bulk_export" in m for m in messages)
    assert any("blocked by limit for pool duckdb" in m for m in messages)
    assert partition_rows(tmp_path) == {
        k: lead_sim.truth(created_at_window(k))["count"] for k in PARTITIONS
    }
    assert duplicate_ids(tmp_path) == 0
    assert all(len(jobs_for(lead_sim, k)) == 1 for k in PARTITIONS)
