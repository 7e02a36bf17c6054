"""Streaming, resumable, verified download of an export file."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

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
        with os.fdopen(fd, "wb", buffering=s.download_chunk_size) as fh:
            while True:
                try:
                    self._transfer(fh)
                    return
                except _Restart:
                    fh.seek(0)
                    fh.truncate()
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
                    client._sleep(
                        min(
                            s.retry_initial_wait * (2 ** min(self.resumes - 1, 6)), s.retry_max_wait
                        )
                    )

    def _transfer(self, fh) -> None:  # type: ignore[no-untyped-def]
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
            self._copy(resp, fh)

    def _copy(self, resp, fh) -> None:  # type: ignore[no-untyped-def]
        client = self.client
        export_id = self.job.export_id
        update = self.hasher.update
        write = fh.write
        total = self.job.file_size
        next_progress = self.have + PROGRESS_EVERY
        started = time.monotonic()
        # Pieces come as the network delivers them (so a broken connection loses nothing that
        # arrived); the file object buffers them into >= download_chunk_size writes.
        encoded = resp.headers.get("content-encoding", "identity").lower() != "identity"
        chunks = resp.iter_bytes() if resp.is_stream_consumed or encoded else resp.iter_raw()
        for chunk in chunks:
            update(chunk)
            write(chunk)
            self.have += len(chunk)
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
