"""download_export: streaming, Range resume, verification, re-download, 404, file mode."""

from __future__ import annotations

import hashlib
import stat

import httpx
import pytest

from marketo_assets.marketo import ExportJob, errors
from marketo_assets_tests.support.client_fakes import (
    EXPORT_ID,
    FakeMarketo,
    file_body,
    job,
    make_client,
    sha,
)

FILE = f"/bulk/v1/leads/export/{EXPORT_ID}/file.json"
BODY = file_body(3 * 1024 * 1024 + 17)


def completed(body: bytes = BODY, checksum: str | None = None) -> ExportJob:
    return ExportJob.from_api(
        job("Completed", numberOfRecords=10, fileSize=len(body), fileChecksum=checksum or sha(body))
    )


class Broken(httpx.SyncByteStream):
    """Yields `data` in 256 KiB pieces, then breaks the connection."""

    def __init__(self, data: bytes, fail: bool = True):
        self.data = data
        self.fail = fail

    def __iter__(self):
        for i in range(0, len(self.data), 256 * 1024):
            yield self.data[i : i + 256 * 1024]
        if self.fail:
            raise httpx.ReadError("connection reset by peer")


def ranged(body: bytes, cut_first: int | None = None, honour_range: bool = True):
    state = {"n": 0, "ranges": []}

    def handler(request: httpx.Request) -> httpx.Response:
        state["n"] += 1
        rng = request.headers.get("range")
        state["ranges"].append(rng)
        start = 0
        if rng and honour_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
        data = body[start:]
        if state["n"] == 1 and cut_first is not None:
            return httpx.Response(
                200, stream=Broken(body[:cut_first]), headers={"Content-Length": str(len(body))}
            )
        if rng and honour_range:
            return httpx.Response(
                206,
                stream=Broken(data, fail=False),
                headers={
                    "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}",
                    "Content-Length": str(len(data)),
                },
            )
        return httpx.Response(
            200, stream=Broken(data, fail=False), headers={"Content-Length": str(len(data))}
        )

    return handler, state


def test_download_plain(tmp_path):
    fake = FakeMarketo()
    events: list = []
    handler, state = ranged(BODY)
    fake.script(FILE, handler)
    dest = tmp_path / "out.csv"
    with make_client(fake, events) as client:
        res = client.download_export(completed(), dest)
    assert dest.read_bytes() == BODY
    assert res.bytes == len(BODY) and res.sha256 == hashlib.sha256(BODY).hexdigest()
    assert res.resumes == 0 and res.attempts == 1 and res.path == dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert not (tmp_path / "out.csv.part").exists()
    assert state["ranges"] == [None]
    assert events[-1].kind == "download_progress" and events[-1].data["done"]


def test_download_resumes_with_range_after_reset(tmp_path):
    fake = FakeMarketo()
    events: list = []
    handler, state = ranged(BODY, cut_first=1024 * 1024 + 5)
    fake.script(FILE, handler)
    with make_client(fake, events) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert res.resumes == 1 and res.attempts == 1
    assert state["ranges"][1].startswith("bytes=") and state["ranges"][1] != "bytes=0-"
    resumed = [e for e in events if e.kind == "download_resumed"]
    assert len(resumed) == 1 and resumed[0].data["offset"] > 0


def test_download_restarts_when_server_ignores_range(tmp_path):
    fake = FakeMarketo()
    handler, _state = ranged(BODY, cut_first=512 * 1024, honour_range=False)
    fake.script(FILE, handler)
    with make_client(fake) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY and res.resumes == 1


def test_download_resumes_are_bounded(tmp_path):
    fake = FakeMarketo()
    ranges: list[str | None] = []

    def always_breaks(request: httpx.Request) -> httpx.Response:
        rng = request.headers.get("range")
        ranges.append(rng)
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        headers = {"Content-Range": f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"} if rng else {}
        return httpx.Response(
            206 if rng else 200, stream=Broken(BODY[start : start + 1000]), headers=headers
        )

    fake.script(FILE, always_breaks)
    with make_client(fake, download_max_resumes=3) as client, pytest.raises(errors.TransientError):
        client.download_export(completed(), tmp_path / "f.csv")
    assert ranges == [None, "bytes=1000-", "bytes=2000-", "bytes=3000-"]
    assert not list(tmp_path.iterdir())


def test_checksum_mismatch_redownloads_then_raises(tmp_path):
    fake = FakeMarketo()
    events: list = []
    fake.script(FILE, lambda r: httpx.Response(200, content=BODY))
    bad = completed(checksum="sha256:" + "ab" * 32)
    with (
        make_client(fake, events, checksum_retries=2) as client,
        pytest.raises(errors.ChecksumMismatchError) as info,
    ):
        client.download_export(bad, tmp_path / "f.csv")
    assert fake.calls(FILE) == 3 and info.value.attempts == 3
    assert len([e for e in events if e.kind == "checksum_mismatch"]) == 3
    assert not list(tmp_path.iterdir())


def test_checksum_mismatch_recovers_on_second_download(tmp_path):
    fake = FakeMarketo()
    corrupt = BODY[:100] + b"X" + BODY[101:]
    fake.script(FILE, httpx.Response(200, content=corrupt), httpx.Response(200, content=BODY))
    with make_client(fake) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert res.attempts == 2 and (tmp_path / "f.csv").read_bytes() == BODY


def test_size_mismatch_is_detected(tmp_path):
    fake = FakeMarketo()
    fake.script(FILE, httpx.Response(200, content=BODY[:-1]))
    j = ExportJob.from_api(job("Completed", fileSize=len(BODY)))  # no checksum announced
    with (
        make_client(fake, checksum_retries=0) as client,
        pytest.raises(errors.ChecksumMismatchError),
    ):
        client.download_export(j, tmp_path / "f.csv")


def test_404_is_file_expired(tmp_path):
    fake = FakeMarketo()
    fake.script(FILE, httpx.Response(404, text="Export file not found"))
    with make_client(fake) as client, pytest.raises(errors.ExportFileExpiredError) as info:
        client.download_export(completed(), tmp_path / "f.csv")
    assert "7 days" in str(info.value) and "re-create" in str(info.value)
    assert fake.calls(FILE) == 1 and not list(tmp_path.iterdir())


def test_download_refuses_unfinished_job(tmp_path):
    fake = FakeMarketo()
    with make_client(fake) as client, pytest.raises(errors.InvalidRequestError):
        client.download_export(ExportJob.from_api(job("Queued")), tmp_path / "f.csv")
    assert fake.requests == []


def test_download_reauths_on_601_envelope(tmp_path):
    fake = FakeMarketo()
    small = b"id\n1\n"

    def first(request):
        fake.valid_tokens.clear()
        return httpx.Response(
            200,
            json={"success": False, "errors": [{"code": "602", "message": "Access token expired"}]},
        )

    fake.script(FILE, first, httpx.Response(200, content=small))
    with make_client(fake) as client:
        res = client.download_export(completed(small), tmp_path / "f.csv")
        assert client.auth_calls == 2
    assert res.bytes == len(small)


def test_download_500_is_resumed(tmp_path):
    fake = FakeMarketo()
    fake.script(FILE, httpx.Response(503, text="busy"), httpx.Response(200, content=BODY))
    with make_client(fake) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert res.resumes == 1


class Endless(httpx.SyncByteStream):
    """A body without Content-Length that never ends (64 KiB pieces); counts what is pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self):
        while True:
            self.pulled += 64 * 1024
            yield b"x" * (64 * 1024)


def test_a_body_without_length_is_not_read_past_file_size(tmp_path):
    """The httpx path (chunked, encoded, HTTP/2): reading stops at fileSize."""
    fake = FakeMarketo()
    streams: list[Endless] = []

    def endless(request: httpx.Request) -> httpx.Response:
        streams.append(Endless())
        return httpx.Response(200, stream=streams[-1])

    fake.script(FILE, endless)
    small = ExportJob.from_api(job("Completed", fileSize=100, fileChecksum=sha(b"x" * 100)))
    with (
        make_client(fake, checksum_retries=1) as client,
        pytest.raises(errors.ChecksumMismatchError) as info,
    ):
        client.download_export(small, tmp_path / "f.csv")
    assert len(streams) == 2 and all(s.pulled == 64 * 1024 for s in streams)
    assert info.value.too_long and info.value.attempts == 2
    assert "announced 100 bytes (fileSize) but the server sent more" in str(info.value)
    assert not list(tmp_path.iterdir())
