"""download_export over real loopback HTTP: the direct socket path (the one fast path; the
tests fail if it is silently not used) and prompt Range resumes."""

from __future__ import annotations

import hashlib
import time

from marketo_assets.marketo import ClientSettings, Event, MarketoClient
from marketo_assets.marketo import writer as writer_module
from marketo_assets_tests.support.client import client_settings, finished_job, request


def _client(sim, sleeps: list[float], events: list[Event] | None = None, **kw) -> MarketoClient:
    settings: ClientSettings = client_settings(sim, **kw)

    def sleep(seconds: float) -> None:  # recorded, and real (status polls pace on it)
        sleeps.append(seconds)
        time.sleep(seconds)

    return MarketoClient(
        settings, on_event=events.append if events is not None else None, sleep=sleep
    )


def test_body_is_read_from_the_socket_and_verified(sim, tmp_path, monkeypatch):
    sleeps: list[float] = []
    with _client(sim, sleeps) as client:
        done = finished_job(client)
        # tiny chunks: the body arrives in many socket reads, across buffer boundaries
        monkeypatch.setattr(writer_module, "READ_BUFFER", 4096)
        result = client.download_export(done, tmp_path / "d.csv")
    data = (tmp_path / "d.csv").read_bytes()
    assert result.direct  # the default client read the body through the fast path
    assert len(data) == result.bytes == done.file_size
    assert "sha256:" + hashlib.sha256(data).hexdigest() == done.file_checksum
    assert result.resumes == 0


def test_resets_resume_at_once_and_lose_nothing(sim, tmp_path):
    sim.set_faults({"download-resets": {"resets_per_file": 3}})
    sleeps: list[float] = []
    events: list[Event] = []
    with _client(sim, sleeps, events, retry_initial_wait=5.0) as client:
        done = client.wait_for_export(
            client.create_export(request(fields=("id", "email", "address", "notes__c"))).export_id
        )
        sleeps.clear()
        result = client.download_export(done, tmp_path / "r.csv")
    data = (tmp_path / "r.csv").read_bytes()
    assert result.resumes == 3 and result.attempts == 1
    assert "sha256:" + hashlib.sha256(data).hexdigest() == done.file_checksum
    # every broken transfer had brought bytes: no back-off sleep before resuming
    assert sleeps == []
    offsets = [e.data["offset"] for e in events if e.kind == "download_resumed"]
    assert len(offsets) == 3 and offsets == sorted(offsets) and offsets[0] > 0
    assert result.direct  # every resumed transfer too
