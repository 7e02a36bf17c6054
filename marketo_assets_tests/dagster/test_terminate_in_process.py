"""Terminating a run of an in-process job (lists, lead changes) cancels its Marketo job.

The runs are real: launched by the daemon (a sensor's run, and `dagster job launch`), each in
its own run process, terminated through `instance.run_launcher.terminate` like the UI does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.local.instance import ensure_pools, running_daemon
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets_tests.support.dagster import HISTORY_HASH, run_env, seed_history, wait_for

DAGSTER = str(Path(sys.executable).with_name("dagster"))
JOBS = ("export_static_lists", "refresh_lead_changes")  # both use the in-process executor


@pytest.mark.timeout(600)
def test_terminating_list_and_lead_change_runs_cancels_their_marketo_jobs(
    lead_sim, tmp_path, monkeypatch
):
    # Two runs polling every second stay under the simulator's 100 calls / 20 s.
    env = {
        **run_env(lead_sim, tmp_path),
        "MARKETO_STATIC_LISTS": "1001",
        "MARKETO_POLL_INTERVAL": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lead_sim.configure(rows_per_second=0.05)  # both jobs stay Processing until cancelled
    seed_history(tmp_path / "ledger.sqlite")  # two first jobs at once (see seed_history)
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        with running_daemon(log_path=tmp_path / "daemon.log"):
            # The static-list sensor's first tick requests the export of list 1001.
            launched = subprocess.run(
                [
                    DAGSTER,
                    "job",
                    "launch",
                    "-w",
                    "workspace.yaml",
                    "--location",  # the workspace has two: this one and the dbt models'
                    "marketo_assets",
                    "-j",
                    "refresh_lead_changes",
                    "--tags",
                    json.dumps({"dagster/partition": "2025-03-10"}),
                ],
                cwd=PROJECT_ROOT,
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert launched.returncode == 0, launched.stderr[-3000:]
            wait_for(
                lambda: [j["status"] for j in lead_sim.state()["jobs"]] == ["Processing"] * 2,
                240,
                "both export jobs to be processing",
            )
            # (The sensor also launches a catalog refresh, which may start a dbt build.)
            runs = {r.job_name: r for r in instance.get_runs() if r.job_name in JOBS}
            assert set(runs) == set(JOBS)
            for run in runs.values():
                assert instance.run_launcher.terminate(run.run_id)
            wait_for(
                lambda: all(instance.get_run_by_id(r.run_id).is_finished for r in runs.values()),
                60,
                "the terminated runs to end",
            )
            final = {n: instance.get_run_by_id(r.run_id) for n, r in runs.items()}
    assert [j["status"] for j in lead_sim.state()["jobs"]] == ["Cancelled"] * 2
    for name in JOBS:
        assert final[name].status == dg.DagsterRunStatus.CANCELED, name
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    runs_entries = [e for e in ledger.entries() if e.request_hash != HISTORY_HASH]
    assert sorted(e.status for e in runs_entries) == ["cancelled", "cancelled"]
    assert not any(ledger.current_claim(e.asset, e.partition_key) for e in ledger.entries())
