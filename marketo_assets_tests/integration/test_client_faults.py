"""Client behaviour under simulator faults and limits (real HTTP over loopback)."""

from __future__ import annotations

from datetime import datetime

import pytest

from marketo_assets.marketo import Event, MarketoClient, errors
from marketo_assets_tests.support.client import FEB, finished_job, ids_in, make_client, request


def test_range_resume_after_mid_file_resets(sim, tmp_path):
    sim.set_faults("download-resets")
    events: list[Event] = []
    with make_client(sim, events) as client:
        done = finished_job(client)
        result = client.download_export(done, tmp_path / "r.csv")
    assert result.resumes >= 1 and result.attempts == 1
    assert result.bytes == done.file_size
    resumed = [e for e in events if e.kind == "download_resumed"]
    assert len(resumed) == result.resumes and all(e.data["offset"] > 0 for e in resumed)
    assert set(ids_in(result.path, "CSV")) == set(
        sim.truth(request().filter.payload(), ids=True)["ids"]
    )


def test_corrupt_download_detected_and_redownloaded(sim, tmp_path):
    sim.set_faults("corrupt")
    events: list[Event] = []
    with make_client(sim, events) as client:
        done = finished_job(client)
        result = client.download_export(done, tmp_path / "c.csv")
    mismatches = [e for e in events if e.kind == "checksum_mismatch"]
    assert len(mismatches) == 1 and result.attempts == 2
    assert "sha256:" + result.sha256 == done.file_checksum


def test_corrupt_download_without_retries_raises(sim, tmp_path):
    sim.set_faults("corrupt")
    with make_client(sim, checksum_retries=0) as client:
        done = finished_job(client)
        with pytest.raises(errors.ChecksumMismatchError):
            client.download_export(done, tmp_path / "c.csv")
    assert not list(tmp_path.iterdir())


def test_token_revoked_mid_cycle(sim, tmp_path):
    events: list[Event] = []
    with make_client(sim, events) as client:
        job = client.create_export(request())
        first = client.auth_calls
        sim.revoke_tokens()
        done = client.wait_for_export(job.export_id)
        sim.revoke_tokens()
        result = client.download_export(done, tmp_path / "t.csv")
        assert client.auth_calls == first + 2
    assert result.bytes == done.file_size
    assert [e.data["reason"] for e in events if e.kind == "auth"][1:] == ["601", "601"]


def test_short_token_ttl(sim_factory, tmp_path):
    sim = sim_factory(extra_args=("--token-ttl", "2"))
    with make_client(sim, token_refresh_margin=1.0) as client:
        job = client.create_export(request())
        done = client.wait_for_export(job.export_id)
        import time

        time.sleep(2.2)  # the token is now expired server-side
        result = client.download_export(done, tmp_path / "ttl.csv")
        assert client.auth_calls >= 2
    assert result.bytes == done.file_size


def test_rate_bursts_606_615_are_retried(sim, tmp_path):
    sim.set_faults({"rate-bursts": {"burst_rate": 0.3, "burst_length": 3}})
    events: list[Event] = []
    with make_client(sim, events, max_attempts=10) as client:
        done = finished_job(client)
        client.download_export(done, tmp_path / "b.csv")
        client.describe_fields()
    codes = {e.data["code"] for e in events if e.kind == "rate_limited"}
    assert codes and codes <= {"606", "615"}
    by_code = sim.state()["requests"]["by_code"]
    assert any(c in by_code for c in ("606", "615"))


def test_queue_full_backs_off_then_raises_bounded(sim):
    sim.add_foreign_jobs(10)
    events: list[Event] = []
    with make_client(sim, events, queue_full_backoff=(0.2, 0.3)) as client:
        job = client.create_export(request())
        before = client.calls_made
        with pytest.raises(errors.QueueFullError) as info:
            client.enqueue_export(job.export_id)
        # 3 enqueue tries, then one listing per export type to count our own active jobs.
        assert client.calls_made - before == 3 + 3
    assert "this API user's jobs of all export types: none" in str(info.value)
    waits = [e for e in events if e.kind == "enqueue_wait"]
    assert [e.data["wait"] for e in waits] == [0.2, 0.3]
    assert info.value.waited_seconds == pytest.approx(0.5)


def test_queue_full_then_slot_frees(sim, tmp_path):
    sim.add_foreign_jobs(10)
    with make_client(sim, queue_full_backoff=(0.5, 1.0, 2.0)) as client:
        job = client.create_export(request())
        import threading

        import httpx

        timer = threading.Timer(
            0.3, lambda: httpx.delete(sim.base_url + "/_sim/jobs/foreign", timeout=5)
        )
        timer.start()
        try:
            done = client.wait_for_export(job.export_id)
        finally:
            timer.cancel()
        assert done.status == "Completed"


def test_daily_quota_exhausted_no_retry_storm(sim_factory, tmp_path):
    sim = sim_factory(quota_mb=0.01)  # ~10 KB: one January export uses it up
    with make_client(sim) as client:
        done = finished_job(client)
        client.download_export(done, tmp_path / "q.csv")
        before = sim.state()["requests"]["marketo"]
        with pytest.raises(errors.QuotaExceededError) as info:
            client.create_export(request(FEB))
        after = sim.state()["requests"]["marketo"]
    assert after - before == 1  # exactly the one create call: no retry storm
    state = sim.state()
    reset = datetime.fromisoformat(state["quota_resets_at"].replace("Z", "+00:00"))
    assert info.value.reset_at == MarketoClient.quota_reset_time()
    assert abs((info.value.reset_at - reset).total_seconds()) < 2
    assert "America/Chicago" in str(info.value)


def test_job_failed_carries_error_msg(sim):
    sim.set_faults("job-fail")
    with make_client(sim) as client:
        job = client.create_export(request())
        with pytest.raises(errors.ExportJobFailedError) as info:
            client.wait_for_export(job.export_id)
    assert info.value.error_msg and info.value.error_msg in str(info.value)
    assert info.value.export_id == job.export_id


def test_completed_but_file_gone(sim, tmp_path):
    sim.set_faults("file-gone")
    with make_client(sim) as client:
        done = finished_job(client)
        assert client.export_usable(done.export_id) is None
        with pytest.raises(errors.ExportFileExpiredError):
            client.download_export(done, tmp_path / "g.csv")
    assert not list(tmp_path.iterdir())


def test_flaky_server_cycle_completes(sim, tmp_path):
    sim.set_faults({"flaky": {"flaky_rate": 0.15}})
    with make_client(sim, max_attempts=12) as client:
        done = finished_job(client)
        result = client.download_export(done, tmp_path / "f.csv")
    assert result.bytes == done.file_size
