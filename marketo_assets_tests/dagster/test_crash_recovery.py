"""Crash and abort: SIGKILL at every point of the cycle, and two runs of one partition at once.

Each run process is `crash_worker` (the lead assets materialized in-process against a temp
DAGSTER_HOME), so SIGKILL kills the run itself. The simulator's control API holds the cycle in
the phase to hit (slow calls, a held queue, slow processing, a slow download); the test watches
the ledger, the simulator and the staging folder, kills the process there and re-launches.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets_tests.support.crash_runs import (
    FAST,
    RunProcesses,
    duplicate_ids,
    jobs_for,
    partition_rows,
    wait_until,
)
from marketo_assets_tests.support.dagster import created_at_window, run_env

LEDGER_ASSET = "marketo/leads"
STATUS_PATH = "/bulk/v1/leads/export/{exportId}/status.json"

# Simulator settings that hold the cycle in each phase long enough to kill it there.
HOLD = {
    "created": {"latency": 0.5},  # each call takes 0.5 s: the kill lands before the enqueue
    "queued": {"max_processing": 0},  # nothing leaves the queue
    "processing": {"rows_per_second": 1},  # ~500 rows: minutes of Processing
    "downloading": {"download_bytes_per_second": 20_000},
    "loading": {},  # the worker stops before COMMIT (--pause-load)
}
PHASES = list(HOLD)


@pytest.fixture
def crash_env(lead_sim, tmp_path):
    env = run_env(lead_sim, tmp_path)
    # A DAGSTER_HOME without pool limits: the runs here are sequential, and a killed process
    # would otherwise keep its slot until run monitoring frees it (covered elsewhere).
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # Create the instance's SQLite storage now: run processes starting together would race on
    # its schema ("table run_tags already exists").
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        instance.get_runs(limit=1)
    return {**os.environ, **env}


@pytest.fixture
def run_processes(crash_env, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = RunProcesses(crash_env, logs)
    yield processes
    processes.close()


def _status_polls(sim) -> int:
    return sim.state()["requests"]["by_path"].get(STATUS_PATH, 0)


@pytest.mark.timeout(600)
def test_sigkill_at_every_phase_then_relaunch_reattaches_and_loads_exactly(
    lead_sim, crash_env, run_processes, tmp_path
):
    """Ten SIGKILLs: for each of two partitions, one after create, one while queued, one while
    processing, one mid-download and one inside the load transaction. Every re-launch reattaches
    to the same Marketo export (one job per partition), the table never holds part of a
    partition, and the end state is exactly the simulator's truth with no duplicate."""
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    partitions = ["2025-02-01", "2025-04-01"]
    staging = Path(crash_env["MARKETO_STAGING_DIR"])
    marker = tmp_path / "in_load_transaction"
    export_ids: dict[str, str] = {}
    finish_first: list[str] = []  # a partition killed in its load, completed by the next run
    kills = []
    t0 = time.monotonic()

    for key in partitions:
        for phase in PHASES:
            lead_sim.configure(**{**FAST, **HOLD[phase]})
            polls_before = _status_polls(lead_sim)
            pause = f"{key}:{marker}" if phase == "loading" else ""
            proc = run_processes.start([*finish_first, key], pause)
            finish_first = []

            def entries(key=key):
                return ledger.entries(LEDGER_ASSET, key)

            if phase == "created":
                wait_until(entries, 120, f"{key}: the export to be created", proc)
            elif phase in ("queued", "processing"):
                status = phase.capitalize()
                wait_until(
                    lambda key=key, status=status, before=polls_before: (
                        [j["status"] for j in jobs_for(lead_sim, key)] == [status]
                        and _status_polls(lead_sim) >= before + 3
                    ),
                    120,
                    f"{key}: the run to wait on its {status} job",
                    proc,
                )
            elif phase == "downloading":
                wait_until(
                    lambda: any(p.stat().st_size > 0 for p in staging.rglob("*.part")),
                    120,
                    f"{key}: the download to be under way",
                    proc,
                )
            else:
                wait_until(marker.exists, 120, f"{key}: the load transaction", proc)
            proc.kill()
            kills.append((key, phase))
            print(f"killed {key} {phase} at {time.monotonic() - t0:.1f}s", flush=True)

            (entry,) = entries()  # one export per partition, whatever was killed
            export_ids.setdefault(key, entry.export_id)
            assert entry.export_id == export_ids[key], f"{key} after {phase}: a new export"
            jobs = jobs_for(lead_sim, key)
            assert [j["exportId"] for j in jobs] == [export_ids[key]], f"{key}: two jobs"
            expected_status = {"created": "Created", "queued": "Queued", "processing": "Processing"}
            if phase in expected_status:
                assert jobs[0]["status"] == expected_status[phase]
            claim = ledger.current_claim(LEDGER_ASSET, key)
            assert claim is not None and claim.pid == proc.pid  # left behind by the dead run
            if phase == "downloading":
                assert entry.status == "completed"  # the partial file was never recorded
            if phase == "loading":
                assert entry.status == "downloaded"
                marker.unlink()
                finish_first = [key]
            # The load is atomic: a killed load leaves no row of its partition.
            assert key not in partition_rows(tmp_path), f"{key} after {phase}: partial rows"

    lead_sim.configure(**FAST)
    proc = run_processes.start(finish_first)
    assert proc.wait(timeout=300) == 0, proc.output()[-3000:]

    assert len(kills) == 10
    assert partition_rows(tmp_path) == {
        k: lead_sim.truth(created_at_window(k))["count"] for k in partitions
    }
    assert duplicate_ids(tmp_path) == 0
    for key in partitions:
        assert [(e.export_id, e.status) for e in ledger.entries(LEDGER_ASSET, key)] == [
            (export_ids[key], "loaded")
        ]
        assert ledger.current_claim(LEDGER_ASSET, key) is None
    assert len(lead_sim.state()["jobs"]) == 2  # no quota spent twice
    assert not lead_sim.state()["cancelled"]
    file_requests = lead_sim.state()["file_requests"]
    for key in partitions:
        starts = [r["start"] for r in file_requests[export_ids[key]]]
        # The run after the mid-download kill continued the dead run's `.part` with Range.
        assert starts[0] == 0 and any(s > 0 for s in starts[1:]), f"{key}: {starts}"
    assert not list(staging.rglob("*.csv*"))  # staged files removed once loaded


@pytest.mark.timeout(300)
def test_two_runs_of_one_partition_at_once_one_loads_the_other_fails_naming_it(
    lead_sim, crash_env, run_processes, tmp_path
):
    """Both run processes start together; the queue is held until one of them has given up.
    One export job, one load, the other run fails naming the run that holds the partition."""
    key = "2025-03-01"
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    lead_sim.configure(**{**FAST, **HOLD["queued"]})
    first, second = run_processes.start([key]), run_processes.start([key])
    loser = wait_until(
        lambda: next((p for p in (first, second) if p.ended()), None), 120, "one run to stop"
    )
    winner = second if loser is first else first
    assert loser.wait(timeout=10) == 1
    (entry,) = ledger.entries(LEDGER_ASSET, key)
    assert f"already being exported or loaded by run {entry.run_id}" in loser.output()
    assert [j["status"] for j in jobs_for(lead_sim, key)] == ["Queued"]

    lead_sim.configure(**FAST)
    assert winner.wait(timeout=240) == 0, winner.output()[-3000:]
    assert partition_rows(tmp_path) == {key: lead_sim.truth(created_at_window(key))["count"]}
    assert duplicate_ids(tmp_path) == 0
    assert len(lead_sim.state()["jobs"]) == 1
    assert ledger.current_claim(LEDGER_ASSET, key) is None
