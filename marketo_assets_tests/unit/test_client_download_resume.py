"""download_export resume pacing: at once after progress, back-off only when nothing arrives."""

from __future__ import annotations

import httpx

from marketo_assets.marketo import ExportJob
from marketo_assets_tests.support.client_fakes import (
    EXPORT_ID,
    FakeClock,
    FakeMarketo,
    file_body,
    job,
    make_client,
    sha,
)

FILE = f"/bulk/v1/leads/export/{EXPORT_ID}/file.json"
BODY = file_body(2 * 1024 * 1024 + 5)


def completed() -> ExportJob:
    return ExportJob.from_api(
        job("Completed", numberOfRecords=10, fileSize=len(BODY), fileChecksum=sha(BODY))
    )


class Cut(httpx.SyncByteStream):
    def __init__(self, data: bytes):
        self.data = data

    def __iter__(self):
        yield self.data
        raise httpx.ReadError("connection reset by peer")


def partial(start: int, end: int | None) -> httpx.Response:
    """Bytes [start, end) of BODY, then a reset (end None: the rest, complete)."""
    headers = {"Content-Length": str(len(BODY) - start)}
    if start:
        headers["Content-Range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
    status = 206 if start else 200
    if end is None:
        return httpx.Response(status, content=BODY[start:], headers=headers)
    return httpx.Response(status, stream=Cut(BODY[start:end]), headers=headers)


def test_breaks_after_progress_resume_without_sleeping(tmp_path):
    fake = FakeMarketo()
    fake.script(FILE, partial(0, 1000), partial(1000, 500_000), partial(500_000, None))
    clock = FakeClock()
    with make_client(fake, clock=clock) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert res.resumes == 2
    assert clock.sleeps == []


def test_breaks_without_progress_back_off(tmp_path):
    fake = FakeMarketo()
    fake.script(
        FILE,
        partial(0, 1000),
        httpx.Response(503, text="busy"),
        httpx.Response(503, text="busy"),
        partial(1000, None),
    )
    clock = FakeClock()
    with make_client(fake, clock=clock, retry_initial_wait=1.0, retry_max_wait=60.0) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert res.resumes == 3
    # first break brought 1000 bytes: no wait; then two empty tries: 1 s, 2 s
    assert clock.sleeps == [1.0, 2.0]


def _ranges(fake: FakeMarketo) -> list[str | None]:
    return [r.headers.get("range") for r in fake.requests if r.url.path == FILE]


def test_a_part_file_left_by_a_killed_run_is_continued_with_range(tmp_path):
    """A run killed mid-download leaves `<file>.part`; the next run (same export, same staged
    name) hashes those bytes and fetches only the rest."""
    (tmp_path / "f.csv.part").write_bytes(BODY[:700_000])
    fake = FakeMarketo()
    fake.script(FILE, partial(700_000, None))
    with make_client(fake) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert _ranges(fake) == ["bytes=700000-"]
    assert res.resumes == 1
    assert not (tmp_path / "f.csv.part").exists()


def test_a_bad_leftover_part_is_caught_by_the_checksum_and_downloaded_again(tmp_path):
    (tmp_path / "f.csv.part").write_bytes(b"x" * 700_000)  # not the file's first bytes
    fake = FakeMarketo()
    fake.script(FILE, partial(700_000, None), partial(0, None))
    with make_client(fake) as client:
        res = client.download_export(completed(), tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert _ranges(fake) == ["bytes=700000-", None]
    assert res.attempts == 2


def test_a_leftover_part_longer_than_the_file_is_discarded(tmp_path):
    (tmp_path / "f.csv.part").write_bytes(BODY + b"extra")
    fake = FakeMarketo()
    fake.script(FILE, partial(0, None))
    with make_client(fake) as client:
        client.download_export(completed(), tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert _ranges(fake) == [None]
