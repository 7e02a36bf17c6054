"""Fault matrix (issue 6): a backfill of 12 lead partitions and two list exports under each of the
simulator's fault profiles, with a real Dagster instance and a real DuckDB file.

Every scenario asserts the end state (`Backfill.assert_complete`): every partition's run
succeeded and its asset checks passed; DuckDB holds exactly the simulator's true leads for each
partition and list (same ids, none twice), their number equals the ledger's numberOfRecords and
the job's; and the simulator's job list shows how many export jobs each partition cost (one,
unless Marketo failed a job or lost its file). Unless a scenario says otherwise, the client
absorbs the fault by itself: no Dagster step retry was needed.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from marketo_assets_tests.support.fault_matrix import (
    ALL_KEYS,
    SIM_ARGS,
    Backfill,
    by_status,
    chicago_reset_after,
    seconds_past_reset,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]


def _injected(sim) -> dict:
    return sim.state()["faults"]["injected"]


def test_flaky_calls_5xx_and_dropped_connections(simulator_factory, tmp_path):
    """1. 10% of Marketo calls answer HTTP 500/502/503 or drop the connection."""
    # Fault decisions follow the seed and the order of calls: with seed 9 the first ~120
    # calls include about 5 dropped connections (with seed 11, none).
    sim = simulator_factory(**{**SIM_ARGS, "seed": 9})
    sim.set_faults({"flaky": {"flaky_rate": 0.10}})
    backfill = Backfill(sim, tmp_path)
    backfill.run_all()

    backfill.assert_complete()
    injected = _injected(sim)
    assert sum(v for k, v in injected.items() if k.startswith("flaky_")) >= 3, injected
    assert injected.get("flaky_drop", 0) >= 1, injected
    assert backfill.step_retries() == 0
    backfill.assert_no_limit_broken()


def test_download_resets_resumed_by_range(simulator_factory, tmp_path):
    """2. Every file download is cut mid-body 3 times: each resumes with a Range request where
    the previous transfer broke; no byte is fetched twice and the file verifies."""
    sim = simulator_factory(**SIM_ARGS)
    sim.set_faults({"download-resets": {"resets_per_file": 3}})
    backfill = Backfill(sim, tmp_path)
    backfill.run_all()

    backfill.assert_complete()
    state = sim.state()
    jobs = {j["exportId"]: j for j in state["jobs"]}
    assert len(state["file_requests"]) == len(ALL_KEYS)
    for export_id, requests in state["file_requests"].items():
        size = jobs[export_id]["fileSize"]
        assert sum(r["cut"] for r in requests) >= 3, requests
        assert requests[0]["range"] is None and requests[0]["start"] == 0
        for previous, current in itertools.pairwise(requests):
            # Resumed from where the previous response broke, never from byte 0.
            assert current["status"] == 206, current
            assert current["range"] == f"bytes={current['start']}-", current
            assert 0 < current["start"] <= previous["start"] + previous["sent"]
            assert current["start"] >= previous["start"]
        assert not requests[-1]["cut"]
        assert requests[-1]["start"] + requests[-1]["sent"] == size
        assert sum(r["sent"] for r in requests) < 2 * size  # never started over
    for key in ALL_KEYS:
        assert backfill.export_metadata(key)["download_resumes"] >= 3
    assert backfill.step_retries() == 0


def test_rate_bursts_and_strict_rate_limit(simulator_factory, tmp_path):
    """3. Bursts of 606 / 615 answers; Marketo's 100 calls / 20 s and 10 concurrent calls are
    enforced strictly by the simulator. The client retries the bursts and never provokes the
    limit itself: every call that reached the simulator fits in 100 per 20 s."""
    sim = simulator_factory(**SIM_ARGS)
    sim.set_faults({"rate-bursts": {"burst_rate": 0.08, "burst_length": 4}})
    backfill = Backfill(sim, tmp_path, rate_window=20.0)  # Marketo's own window
    assert sim.state()["config"]["rate_window"] == 20.0
    backfill.run_all()

    backfill.assert_complete()
    state = backfill.assert_no_limit_broken()
    injected = state["faults"]["injected"]
    assert injected.get("burst_606", 0) + injected.get("burst_615", 0) >= 4, injected
    # Counted over every call received, including the refused ones and all retries.
    assert state["max_window_arrivals_seen"] <= 100, state["max_window_arrivals_seen"]
    assert state["limit_rejections"] == {"606": 0, "615": 0}
    assert backfill.step_retries() == 0


def test_tokens_revoked_mid_cycle(simulator_factory, tmp_path):
    """4. All tokens revoked at random calls (601 invalid / 602 expired): the client fetches a
    new token and repeats the call, in the middle of polls and downloads."""
    sim = simulator_factory(**SIM_ARGS)
    sim.set_faults({"token-revoke": {"revoke_rate": 0.05}})
    backfill = Backfill(sim, tmp_path)
    backfill.run_all()

    backfill.assert_complete()
    state = sim.state()
    injected = state["faults"]["injected"]
    assert injected.get("revoke_601", 0) + injected.get("revoke_602", 0) >= 2, injected
    assert state["requests"]["identity"] > len(ALL_KEYS)  # re-authenticated mid-run
    assert backfill.step_retries() == 0


def test_failed_jobs_recreated_at_most_n_times(simulator_factory, tmp_path):
    """5. Marketo fails the first job of every request: re-created once, loaded once. A job
    failing more often than `max_job_attempts` ends the run with a clear error, after exactly
    N jobs, without retries, and the rows loaded before are untouched."""
    sim = simulator_factory(**SIM_ARGS)
    sim.set_faults({"job-fail": {"job_fail_times": 1}})
    backfill = Backfill(sim, tmp_path, max_job_attempts=3)
    backfill.run_all()

    backfill.assert_complete(jobs_per_partition=2)
    for key, jobs in backfill.jobs_by_partition().items():
        assert by_status(jobs) == {"Failed": 1, "Completed": 1}, key
        assert backfill.export_metadata(key)["job_attempts"] == 2
    assert any("failed in Marketo" in m and "re-creating" in m for m in backfill.messages())

    # Past N: Marketo fails every job of this request (fault counters start again).
    key = "2025-06-01"
    before = backfill.loaded(key)
    sim.set_faults({"job-fail": {"job_fail_times": 10, "error_msg": "Export failed: disk full"}})
    result = backfill.run(key)
    assert not result.success
    (message,) = backfill.failures(key)
    assert "failed export" in message and "3 times" in message and "disk full" in message
    jobs = backfill.jobs_by_partition()[key]
    assert by_status(jobs) == {"Failed": 4, "Completed": 1}  # 1+1 before, then exactly 3
    assert backfill.loaded(key) == before
    assert backfill.step_retries() == 0


def test_completed_job_whose_file_is_gone(simulator_factory, tmp_path):
    """6. The first job of every request completes but its file answers 404: the job is
    re-created once, the log says so, and the partition loads from the second job."""
    sim = simulator_factory(**SIM_ARGS)
    sim.set_faults("file-gone")
    backfill = Backfill(sim, tmp_path)
    backfill.run_all()

    backfill.assert_complete(jobs_per_partition=2)
    ledger = backfill.ledger
    for key in ALL_KEYS:
        jobs = backfill.jobs_by_partition()[key]
        assert by_status(jobs) == {"Completed": 2}
        statuses = [e.status for e in ledger.entries(None, key)]
        assert statuses == ["expired", "loaded"], (key, statuses)
        logs = backfill.messages(key)
        assert sum("file is gone" in m and "re-creating the job once" in m for m in logs) == 1
    assert _injected(sim)["file_gone_404"] >= len(ALL_KEYS)
    assert backfill.step_retries() == 0


def test_queue_full_of_other_clients_jobs(simulator_factory, tmp_path):
    """7. Other clients' jobs fill Marketo's queue (2 processing + 8 queued = 10), three times
    during the backfill; each time they leave only after our client has been refused for a
    second. The client waits for a slot along its backoff schedule: every refused enqueue is
    followed by a wait (no spinning), the calls stay bounded, the queue never exceeds 10."""
    sim = simulator_factory(**SIM_ARGS)
    backfill = Backfill(sim, tmp_path, queue_full_backoff=[0.5] * 12)
    releases: list[threading.Thread] = []

    def refused() -> int:
        return sim.state()["requests"]["by_code"].get("1029", 0)

    def release_after_refusal(seen: int) -> None:
        deadline = time.monotonic() + 120
        while refused() == seen and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        sim.clear_foreign_jobs()

    def fill_queue(i: int, key: str) -> None:
        if i not in (0, 5, 10):
            return
        if i == 0:
            sim.set_faults({"busy-queue": {"busy_seconds": 600}})
        else:
            sim.add_foreign_jobs(2, "Processing", seconds=600)
            sim.add_foreign_jobs(8, "Queued", seconds=600)
        thread = threading.Thread(target=release_after_refusal, args=(refused(),), daemon=True)
        thread.start()
        releases.append(thread)

    backfill.run_all(before_each=fill_queue)
    for thread in releases:
        thread.join(10)

    backfill.assert_complete()
    state = backfill.assert_no_limit_broken()
    assert state["max_queue_seen"] <= 10, state["max_queue_seen"]
    refusals = state["requests"]["by_code"].get("1029", 0)
    assert refusals >= 3 * 2, state["requests"]["by_code"]  # it met each full queue a while
    assert refusals <= 3 * 12, refusals  # bounded by the backoff schedule, not a loop
    enqueues = state["requests"]["by_path"]["/bulk/v1/leads/export/{exportId}/enqueue.json"]
    assert enqueues == len(ALL_KEYS) + refusals
    waits = [m for m in backfill.messages() if "Marketo enqueue_wait" in m]
    assert len(waits) == refusals  # every refusal was followed by a wait
    assert backfill.step_retries() == 0


def test_daily_quota_runs_out_halfway(simulator_factory, tmp_path):
    """8. The daily export quota runs out halfway: the rest fail at once naming the reset time
    (midnight America/Chicago), creating no job; once the simulator's clock has passed that
    midnight, re-running the failed partitions completes the backfill without duplicates."""
    # ~135 KB per month, ~1.7 MB in all: a 1 MB quota is used up after 7 or 8 partitions,
    # and the rest fits into the next day's quota.
    sim = simulator_factory(**{**SIM_ARGS, "leads": 3600}, quota_mb=1)
    # The whole quota is the budget (test_quota_autopilot covers a budget below it).
    backfill = Backfill(sim, tmp_path, daily_quota_mb=1, quota_budget_mb=1)
    calls_before: dict[str, int] = {}
    results = backfill.run_all(
        before_each=lambda i, key: calls_before.update({key: sim.state()["requests"]["marketo"]})
    )
    calls_before["end"] = sim.state()["requests"]["marketo"]

    failed = [key for key, result in results.items() if not result.success]
    done = [key for key in ALL_KEYS if key not in failed]
    assert 4 <= len(done) <= 10 and done == ALL_KEYS[: len(done)], done
    reset = chicago_reset_after(sim.state()["now"])
    for key in failed:
        (message,) = backfill.failures(key)
        assert "quota" in message.lower() and "America/Chicago" in message, message
        assert reset.isoformat() in message, (reset, message)
        following = [*ALL_KEYS, "end"][ALL_KEYS.index(key) + 1]
        # Fails fast: describe and the quota check (the job lists of leads, activities and
        # program members: one quota for all), no create, no retry storm.
        assert calls_before[following] - calls_before[key] <= 5
    assert set(backfill.jobs_by_partition()) == set(done)  # no job created for a failed one
    assert backfill.step_retries() == 0  # a used-up quota is not retried

    sim.advance(seconds_past_reset(sim.state()))
    for key in failed:
        backfill.run(key)
    backfill.assert_complete()
    assert backfill.step_retries() == 0


def test_corrupted_download_detected_and_downloaded_again(simulator_factory, tmp_path):
    """9. The first download of every file has flipped bytes: the SHA-256 check catches it, the
    file is downloaded again, and only the verified file is loaded."""
    sim = simulator_factory(**SIM_ARGS)
    sim.set_faults("corrupt")
    backfill = Backfill(sim, tmp_path)
    backfill.run_all()

    backfill.assert_complete()
    state = sim.state()
    assert len(state["file_requests"]) == len(ALL_KEYS)
    for requests in state["file_requests"].values():
        assert [r["corrupt"] for r in requests] == [True, False]
    for key in ALL_KEYS:
        logs = backfill.messages(key)
        assert sum("checksum mismatch, downloading again" in m for m in logs) == 1, key
        assert backfill.export_metadata(key)["checksum_verified"] is True
    assert _injected(sim)["corrupt_download"] == len(ALL_KEYS)
    # Only the verified bytes were loaded: every column of every row equals a load of the
    # file fetched once more now (the simulator corrupts only the first download).
    backfill.assert_loaded_bytes_are_the_verified_files()
    assert backfill.step_retries() == 0
