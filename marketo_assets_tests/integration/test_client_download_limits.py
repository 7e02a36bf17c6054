"""A file response longer than the job's fileSize is corruption: the client never reads past
the announced size and gives up after a bounded number of downloads (simulator fault
`oversize` over loopback HTTP)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from marketo_assets.marketo import Event, errors
from marketo_assets_tests.support.client import finished_job, make_client

EXTRA = 50 << 20  # what the server streams after the file


def count_reads(monkeypatch) -> dict[str, int]:
    """Bytes this thread receives from any socket (httpx's reads and the direct socket path)."""
    me = threading.get_ident()
    seen = {"bytes": 0}
    recv, recv_into = socket.socket.recv, socket.socket.recv_into

    def spy_recv(self, *args, **kwargs):
        data = recv(self, *args, **kwargs)
        if threading.get_ident() == me:
            seen["bytes"] += len(data)
        return data

    def spy_recv_into(self, *args, **kwargs):
        n = recv_into(self, *args, **kwargs)
        if threading.get_ident() == me:
            seen["bytes"] += n
        return n

    monkeypatch.setattr(socket.socket, "recv", spy_recv)
    monkeypatch.setattr(socket.socket, "recv_into", spy_recv_into)
    return seen


def test_a_body_longer_than_file_size_is_not_read_and_fails_bounded(sim, tmp_path, monkeypatch):
    events: list[Event] = []
    with make_client(sim, events) as client:
        done = finished_job(client)
        sim.set_faults({"oversize": {"oversize_bytes": EXTRA}})
        reads = count_reads(monkeypatch)
        started = time.monotonic()
        with pytest.raises(errors.ChecksumMismatchError) as info:
            client.download_export(done, tmp_path / "f.csv")
        elapsed = time.monotonic() - started
        attempts = client.settings.checksum_retries + 1
    served = sim.state()["file_requests"][done.export_id]
    assert len(served) == attempts  # bounded: no endless re-downloads
    # Never more than the announced size per download (+ headers and one socket read).
    assert reads["bytes"] <= attempts * (done.file_size + (1 << 20) + 4096), reads
    message = str(info.value)
    assert done.export_id in message
    assert f"{done.file_size} bytes" in message  # the announced size
    assert f"{done.file_size + EXTRA} bytes" in message  # what the server was sending
    assert f"after {attempts} download(s)" in message
    assert info.value.attempts == attempts
    assert not list(tmp_path.iterdir())  # no partial file left
    mismatches = [e for e in events if e.kind == "checksum_mismatch"]
    assert len(mismatches) == attempts
    assert elapsed < 30
