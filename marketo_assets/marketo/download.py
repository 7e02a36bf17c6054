"""Streaming, resumable, verified download of an export file."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from .errors import (
    ChecksumMismatchError,
    ExportFileExpiredError,
    InvalidRequestError,
    MarketoError,
    TransientError,
)
from .exports import ExportJob
from .models import DownloadResult

if TYPE_CHECKING:
    from .client import MarketoClient

__all__ = ["PROGRESS_EVERY", "download_export"]

log = logging.getLogger("marketo_assets.marketo")
PROGRESS_EVERY = 8 << 20  # emit download_progress at most every 8 MiB
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Restart(Exception):
    """The server ignored our Range request: start over from byte 0."""


class _Attempt:
    """One full pass (with resumes) writing `part`; the hash is built while writing."""

    def __init__(self, client: MarketoClient, job: ExportJob, part: Path):
        self.client = client
        self.job = job
        self.part = part
        self.have = 0
        self.resumes = 0
        self.hasher = hashlib.sha256()

    def run(self) -> None:
        client, s = self.client, self.client.settings
        export_id = self.job.export_id
        fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        stalled = 0  # breaks in a row that brought no new bytes
        try:
            while True:
                before = self.have
                try:
                    self._transfer(fd)
                    return
                except _Restart:
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.ftruncate(fd, 0)
                    self.have = 0
                    self.hasher = hashlib.sha256()
                    continue
                except TransientError as exc:
                    if self.resumes >= s.download_max_resumes:
                        raise TransientError(
                            f"Download of export {export_id} broke {self.resumes + 1} times "
                            f"(last: {exc}); giving up after {s.download_max_resumes} resumes. "
                            "Retry later: the job's file stays available for 7 days"
                        ) from None
                    self.resumes += 1
                    client._emit(
                        "download_resumed",
                        export_id,
                        {"offset": self.have, "resumes": self.resumes, "error": str(exc)},
                    )
                    log.info(
                        "marketo: download of %s broke at %d bytes: resuming", export_id, self.have
                    )
                    # A transfer that broke after bringing new bytes resumes at once (the
                    # server answers; waiting would only slow a big download). Breaks without
                    # progress back off exponentially.
                    stalled = 0 if self.have > before else stalled + 1
                    if stalled:
                        client._sleep(
                            min(s.retry_initial_wait * (2 ** min(stalled - 1, 6)), s.retry_max_wait)
                        )
        finally:
            os.close(fd)

    def _transfer(self, fd: int) -> None:
        client = self.client
        export_id = self.job.export_id
        total = self.job.file_size
        if total is not None and self.have >= total and self.have > 0:
            return
        range_header = f"bytes={self.have}-" if self.have > 0 else None
        with client._open_file(export_id, range_header) as resp:
            status = resp.status_code
            if status == 404 or status == 410:
                detail = resp.read().decode("utf-8", "replace")[:200].strip() or None
                raise ExportFileExpiredError(export_id, detail)
            if status == 416:
                if total is not None and self.have == total:
                    return
                raise _Restart()
            if status >= 500 or status in (408, 429):
                raise TransientError(f"file download: HTTP {status}", http_status=status)
            if status not in (200, 206):
                raise MarketoError(f"Unexpected HTTP {status} while downloading export {export_id}")
            if self.have > 0:
                if status == 200:
                    log.info("marketo: server ignored Range for %s; restarting at 0", export_id)
                    raise _Restart()
                m = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
                if not m or int(m.group(1)) != self.have:
                    raise _Restart()
            elif status == 206:
                m = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
                if not m or int(m.group(1)) != 0:
                    raise _Restart()
            self._copy(resp, fd)

    def _copy(self, resp: httpx.Response, fd: int) -> None:
        """This thread reads the network and hashes each piece as soon as it arrives (still in
        the CPU cache; hashlib releases the GIL); one writer thread writes ~1 MiB batches
        (os.writev releases the GIL) from a small bounded queue (constant memory). Two busy
        threads, not more: measured faster than separate hash and write workers on two cores
        (fewer GIL hand-offs and cache misses; see README, Performance). Pieces are handed
        over as the network delivers them, so a broken connection loses nothing that arrived."""
        client = self.client
        export_id = self.job.export_id
        total = self.job.file_size
        batch_size = client.settings.download_chunk_size
        hasher = self.hasher
        failure: list[BaseException] = []
        writer = _Writer(fd, failure, export_id)
        batch: list[bytes] = []
        pending = 0
        next_progress = self.have + PROGRESS_EVERY
        started = time.monotonic()
        try:
            encoded = resp.headers.get("content-encoding", "identity").lower() != "identity"
            chunks = resp.iter_bytes() if resp.is_stream_consumed or encoded else resp.iter_raw()
            for chunk in chunks:
                hasher.update(chunk)
                batch.append(chunk)
                pending += len(chunk)
                if pending >= batch_size:
                    writer.put(batch)
                    self.have += pending
                    batch, pending = [], 0
                    if failure:
                        break
                    if self.have >= next_progress:
                        next_progress = self.have + PROGRESS_EVERY
                        client._emit(
                            "download_progress",
                            export_id,
                            {
                                "bytes": self.have,
                                "total": total,
                                "seconds": round(time.monotonic() - started, 3),
                            },
                        )
        finally:
            if batch and not failure:
                writer.put(batch)
                self.have += pending
            writer.close()
        if failure:
            raise failure[0]


class _Writer:
    """A thread writing batches from a bounded queue to `fd`; errors land in `failure`."""

    def __init__(self, fd: int, failure: list[BaseException], name: str):
        self.fd = fd
        self.failure = failure
        self.queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=4)
        self.thread = threading.Thread(target=self._run, name=f"marketo-download-{name}")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.failure:
                continue
            try:
                _write_all(self.fd, batch)
            except BaseException as exc:  # reported to the reading thread
                self.failure.append(exc)

    def put(self, batch: list[bytes]) -> None:
        self.queue.put(batch)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def _write_all(fd: int, pieces: list[bytes]) -> None:
    views = [memoryview(p) for p in pieces if p]
    while views:
        n = os.writev(fd, views[:1024])
        while n and views:
            if n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][n:]
                n = 0


def download_export(client: MarketoClient, job: ExportJob, dest: Path) -> DownloadResult:
    """Stream the file of a Completed job to `dest` (mode 0600), constant memory.

    Writes `<dest>.part`, resumes a broken transfer with `Range: bytes=<have>-` (restarts from
    0 if the server answers 200), verifies the size against fileSize and SHA-256 against
    fileChecksum, re-downloads on mismatch up to checksum_retries times, then renames atomically.
    404 -> ExportFileExpiredError.
    """
    if job.status != "Completed":
        raise InvalidRequestError(
            f"Export job {job.export_id} is {job.status or 'in an unknown state'}, not Completed: "
            "wait for it with wait_for_export() before downloading"
        )
    s = client.settings
    dest = Path(dest)
    part = dest.with_suffix(dest.suffix + ".part")
    started = time.monotonic()
    attempts = 0
    resumes = 0
    expected_sha = job.sha256
    while True:
        attempts += 1
        attempt = _Attempt(client, job, part)
        try:
            attempt.run()
        except BaseException:
            with contextlib.suppress(OSError):
                part.unlink()
            raise
        resumes += attempt.resumes
        digest = attempt.hasher.hexdigest()
        size_ok = job.file_size is None or attempt.have == job.file_size
        sha_ok = expected_sha is None or digest == expected_sha
        if size_ok and sha_ok:
            os.replace(part, dest)
            seconds = time.monotonic() - started
            client._emit(
                "download_progress",
                job.export_id,
                {
                    "bytes": attempt.have,
                    "total": job.file_size,
                    "seconds": round(seconds, 3),
                    "done": True,
                },
            )
            return DownloadResult(
                path=dest,
                bytes=attempt.have,
                sha256=digest,
                resumes=resumes,
                attempts=attempts,
                seconds=seconds,
            )
        with contextlib.suppress(OSError):
            part.unlink()
        client._emit(
            "checksum_mismatch",
            job.export_id,
            {
                "attempt": attempts,
                "expected_size": job.file_size,
                "actual_size": attempt.have,
                "expected_sha256": expected_sha,
                "actual_sha256": digest,
            },
        )
        if attempts > s.checksum_retries:
            raise ChecksumMismatchError(
                job.export_id,
                expected_size=job.file_size,
                actual_size=attempt.have,
                expected_sha256=expected_sha,
                actual_sha256=digest,
                attempts=attempts,
            )
