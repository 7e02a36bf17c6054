"""Runs through a real Dagster instance (temp DAGSTER_HOME), its daemon and run processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.local.instance import (
    backfill_runs,
    ensure_pools,
    launch_backfill,
    running_daemon,
    wait_for_backfill,
)
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets_tests.support.crash_runs import max_overlap, step_intervals
from marketo_assets_tests.support.dagster import created_at_window, run_env, wait_for

SIX_MONTHS = ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def dagster_env(lead_sim, tmp_path, monkeypatch):
    env = run_env(lead_sim, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _partition_rows(tmp_path) -> dict[str, int]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return dict(
            conn.execute(
                "SELECT _partition_key, count(*) FROM marketo.marketo.leads GROUP BY 1"
            ).fetchall()
        )


@pytest.mark.timeout(900)
def test_parallel_backfill_respects_pools_and_loads_every_partition(
    lead_sim, dagster_env, tmp_path
):
    from marketo_assets.definitions import defs

    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        with running_daemon(log_path=tmp_path / "daemon.log"):
            backfill_id = launch_backfill(instance, defs(), [LEAD_EXPORTS, LEADS], SIX_MONTHS)
            status = wait_for_backfill(instance, backfill_id, timeout=800)
            runs = backfill_runs(instance, backfill_id)
            logs = "\n".join(str(e.message) for run in runs for e in instance.all_logs(run.run_id))
    assert status == BulkActionStatus.COMPLETED_SUCCESS, logs[-3000:]
    assert len(runs) == 6 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert "Could not set lock" not in logs
    rows = _partition_rows(tmp_path)
    assert rows == {k: lead_sim.truth(created_at_window(k))["count"] for k in SIX_MONTHS}
    state = lead_sim.state()
    assert state["max_processing_seen"] <= 2
    assert len(state["jobs"]) == 6  # one export job per partition: no quota spent twice
    # The pools held, whatever the executor: steps of different runs overlapped no more than
    # their pool allows (2 exports, 1 DuckDB writer). test_in_process_pools forces the waits.
    with dg.DagsterInstance.get() as instance:
        steps = step_intervals(instance, runs)
    assert max_overlap(steps["marketo__lead_export_files"]) <= 2
    assert max_overlap(steps["marketo__leads"]) <= 1


def _materialize_cmd(partition: str) -> list[str]:
    return [
        DAGSTER,
        "asset",
        "materialize",
        "-m",
        "marketo_assets.definitions",
        "--select",
        "marketo/lead_export_files,marketo/leads",
        "--partition",
        partition,
    ]


@pytest.mark.timeout(600)
def test_killed_run_reattaches_to_the_same_export(lead_sim, dagster_env, tmp_path):
    lead_sim.configure(rows_per_second=5)  # the job stays Processing for a while
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    proc = subprocess.Popen(
        _materialize_cmd("2025-03-01"),
        cwd=PROJECT_ROOT,
        env={**os.environ, **dagster_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    entry = wait_for(lambda: ledger.entries(), 90, "the export job to be created")[0]
    wait_for(
        lambda: any(j["status"] == "Processing" for j in lead_sim.state()["jobs"]),
        60,
        "the job to start processing",
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with dg.DagsterInstance.get() as instance:
        # What run monitoring (or a user's "terminate") does with a dead run: mark it failed
        # and give its pool slot back.
        for run in instance.get_runs():
            instance.report_run_failed(run)
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)

    lead_sim.configure(rows_per_second=0)
    lead_sim.advance(600)  # let Marketo finish the job while nobody is watching
    done = subprocess.run(
        _materialize_cmd("2025-03-01"),
        cwd=PROJECT_ROOT,
        env={**os.environ, **dagster_env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [e.export_id for e in ledger.entries()] == [entry.export_id]
    assert ledger.get(entry.export_id).status == "loaded"
    assert [j["exportId"] for j in lead_sim.state()["jobs"]] == [entry.export_id]
    expected = lead_sim.truth(created_at_window("2025-03-01"))["count"]
    assert _partition_rows(tmp_path) == {"2025-03-01": expected}


@pytest.mark.timeout(600)
def test_terminating_a_run_cancels_its_marketo_job(lead_sim, dagster_env, tmp_path):
    from marketo_assets.definitions import defs

    lead_sim.configure(rows_per_second=1)
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        with running_daemon(log_path=tmp_path / "daemon.log"):
            backfill_id = launch_backfill(instance, defs(), [LEAD_EXPORTS, LEADS], ["2025-05-01"])
            wait_for(
                lambda: any(j["status"] == "Processing" for j in lead_sim.state()["jobs"]),
                120,
                "the job to start processing",
            )
            (run,) = backfill_runs(instance, backfill_id)
            assert instance.run_launcher.terminate(run.run_id)
            wait_for(lambda: instance.get_run_by_id(run.run_id).is_finished, 60, "the run to end")
            final = instance.get_run_by_id(run.run_id)
    jobs = lead_sim.state()["jobs"]
    assert [j["status"] for j in jobs] == ["Cancelled"]
    assert final.status == dg.DagsterRunStatus.CANCELED
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    assert [e.status for e in ledger.entries()] == ["cancelled"]
