"""Streaming, resumable, verified download of an export file."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import time
from collections.abc import Generator
from pathlib import Path
from typing import NoReturn, cast

import httpx
import tenacity

from .core import RequestCore
from .error_map import transient
from .errors import (
    ChecksumMismatchError,
    ExportFileExpiredError,
    InvalidRequestError,
    MarketoError,
    TransientError,
)
from .exports import ExportJob, checked_export_id
from .models import DownloadResult
from .retry import DOWNLOAD_RESUME
from .writer import Writer

__all__ = ["PROGRESS_EVERY", "download_export"]

log = logging.getLogger("marketo_assets.marketo")
PROGRESS_EVERY = 8 << 20  # emit download_progress at most every 8 MiB
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Restart(Exception):
    """The server ignored our Range request: start over from byte 0."""


class _TooLong(Exception):
    """The response holds more than the job's fileSize: corrupt; nothing past it is read.
    `sending`: the size the response announced (Content-Length / Content-Range), if it did."""

    def __init__(self, sending: int | None):
        super().__init__(sending)
        self.sending = sending


class _Pass:
    """One full pass (with resumes, retry policy DOWNLOAD_RESUME) writing `part`; the hash is
    built while writing."""

    def __init__(self, core: RequestCore, job: ExportJob, part: Path, adopt: bool = False):
        self.core = core
        self.job = job
        self.part = part
        self.adopt = adopt  # continue a `.part` left by a process that was killed mid-download
        self.have = 0
        self.resumes = 0
        self.stalled = 0  # breaks in a row that brought no new bytes
        self.paths: set[str] = set()  # how bodies were read: "socket" (fast path), "httpx"
        self.hasher = hashlib.sha256()
        self.too_long: _TooLong | None = None  # set when the server sent more than fileSize

    def run(self) -> None:
        fd = os.open(self.part, os.O_RDWR | os.O_CREAT | (0 if self.adopt else os.O_TRUNC), 0o600)
        os.fchmod(fd, 0o600)
        try:
            if self.adopt:
                self._adopt(fd)
            for attempt in DOWNLOAD_RESUME(self.core.settings, self, sleep=self.core.sleep):
                with attempt:
                    self._until_done(fd)
        finally:
            os.close(fd)

    def _until_done(self, fd: int) -> None:
        """One try: transfer until the end (restarting at 0 when the server ignores Range);
        a TransientError is a break (resumed by DOWNLOAD_RESUME)."""
        before = self.have
        while True:
            try:
                self._transfer(fd)
                return
            except _TooLong as exc:
                self.too_long = exc
                return
            except _Restart:
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                self.have = 0
                before = 0
                self.hasher = hashlib.sha256()
            except TransientError:
                self.stalled = 0 if self.have > before else self.stalled + 1
                raise

    def resuming(self, rs: tenacity.RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        self.resumes += 1
        self.core.emit(
            "download_resumed",
            self.job.export_id,
            {"offset": self.have, "resumes": self.resumes, "error": str(exc)},
        )
        log.info(
            "marketo: download of %s broke at %d bytes: resuming", self.job.export_id, self.have
        )

    def give_up(self, rs: tenacity.RetryCallState) -> NoReturn:
        exc = rs.outcome.exception() if rs.outcome else None
        raise TransientError(
            f"Download of export {self.job.export_id} broke {self.resumes + 1} times "
            f"(last: {exc}); giving up after {self.core.settings.download_max_resumes} resumes. "
            "Retry later: the job's file stays available for 7 days"
        ) from None

    def _adopt(self, fd: int) -> None:
        """Take over the bytes a killed process left in `part`: hash them and resume after them
        with Range (the checksum at the end still covers every byte; a bad leftover is caught
        there and downloaded again). A leftover longer than the file is discarded."""
        size = os.fstat(fd).st_size
        total = self.job.file_size
        if size == 0 or (total is not None and size > total):
            os.ftruncate(fd, 0)
            return
        with open(self.part, "rb") as leftover:
            while chunk := leftover.read(min(8 * 1024 * 1024, size - self.have)):
                self.hasher.update(chunk)
                self.have += len(chunk)
        os.lseek(fd, self.have, os.SEEK_SET)
        os.ftruncate(fd, self.have)
        self.resumes += 1
        self.core.emit(
            "download_resumed",
            self.job.export_id,
            {"offset": self.have, "resumes": self.resumes, "error": "left by a stopped process"},
        )
        log.info(
            "marketo: resuming %s after %d bytes left by a stopped process",
            self.job.export_id,
            self.have,
        )

    def _transfer(self, fd: int) -> None:
        export_id = self.job.export_id
        total = self.job.file_size
        if total is not None and self.have >= total and self.have > 0:
            return
        range_header = f"bytes={self.have}-" if self.have > 0 else None
        with self.core.open_file(export_id, range_header, self.job.export_type) as resp:
            status = resp.status_code
            if status == 404 or status == 410:
                detail = resp.read().decode("utf-8", "replace")[:200].strip() or None
                raise ExportFileExpiredError(export_id, detail)
            if status == 416:
                if total is not None and self.have == total:
                    return
                raise _Restart()
            if transient(status):
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
            if total is not None:
                sending = _announced_end(resp, self.have)
                if sending is not None and sending > total:
                    raise _TooLong(sending)  # not a byte of the body is read
            self._copy(resp, fd, None if total is None else total - self.have)

    def _copy(self, resp: httpx.Response, fd: int, limit: int | None) -> None:
        """Stream the body into `fd`, hashing it on the way; at most `limit` bytes (what is
        left of fileSize): a body going past it raises _TooLong, without reading further.

        This thread reads the network and hashes each piece as soon as it arrives (still in the
        CPU cache; hashlib releases the GIL); one writer thread writes it (os.writev releases the
        GIL). Two busy threads, not more: measured faster than separate hash and write workers on
        two cores. Memory stays constant (a few 1 MiB buffers). Pieces are handed to the writer
        as they arrive, so a broken connection loses nothing that arrived.

        The one fast path: plain HTTP/1.1 bodies with a Content-Length are read straight from
        the connection's socket into reused buffers (`recv_into`), after httpx has handed over
        what it already buffered: httpx/h11 would copy every byte two more times into fresh
        memory, which costs more CPU than the SHA-256 (measured 1.3-1.6x curl instead of 0.9x).
        The socket comes from public httpcore APIs: the `network_stream` response extension and
        its `get_extra_info("socket")`. The connection is then closed, never reused. Other
        responses (chunked, encoded, HTTP/2, test transports) go through httpx; which path read
        the bodies is reported as DownloadResult.direct.
        """
        sock = _direct_socket(resp)
        writer = Writer(fd, self.job.export_id)
        try:
            if sock is None:
                self.paths.add("httpx")
                self._copy_httpx(resp, writer, limit)
            else:
                self.paths.add("socket")
                self._copy_socket(resp, sock, writer)
        finally:
            writer.close()
        if writer.failure:
            raise writer.failure[0]

    def _handed(self, n: int, started: float) -> None:
        """`n` more bytes are hashed and queued for writing."""
        before = self.have
        self.have += n
        if self.have // PROGRESS_EVERY != before // PROGRESS_EVERY:
            self.core.emit(
                "download_progress",
                self.job.export_id,
                {
                    "bytes": self.have,
                    "total": self.job.file_size,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )

    def _copy_httpx(self, resp: httpx.Response, writer: Writer, limit: int | None) -> None:
        batch_size = self.core.settings.download_chunk_size
        hasher = self.hasher
        batch: list[bytes] = []
        pending = 0
        started = time.monotonic()
        encoded = resp.headers.get("content-encoding", "identity").lower() != "identity"
        chunks = resp.iter_bytes() if resp.is_stream_consumed or encoded else resp.iter_raw()
        room = limit
        try:
            for chunk in chunks:
                if room is not None:
                    if len(chunk) > room:
                        chunk = chunk[:room]  # the part of fileSize still missing, no more
                        room = -1
                    else:
                        room -= len(chunk)
                hasher.update(chunk)
                batch.append(chunk)
                pending += len(chunk)
                if pending >= batch_size:
                    writer.put(batch)
                    self._handed(pending, started)
                    batch, pending = [], 0
                    if writer.failure:
                        return
                if room is not None and room < 0:
                    break
        finally:
            if batch and not writer.failure:
                writer.put(batch)
                self._handed(pending, started)
        if room is not None and room < 0:
            raise _TooLong(None)

    def _copy_socket(self, resp: httpx.Response, sock: socket.socket, writer: Writer) -> None:
        hasher = self.hasher
        started = time.monotonic()
        remaining = int(resp.headers["content-length"])
        chunks = cast(Generator[bytes, None, None], resp.iter_raw())
        try:
            # What h11 already holds (the start of the body, read with the headers): taking
            # one chunk empties its buffer, so the rest of the body is still in the socket.
            first = next(chunks, b"")
            if first:
                hasher.update(first)
                writer.put([first])
                self._handed(len(first), started)
                remaining -= len(first)
            sock.settimeout(self.core.settings.request_timeout)
            while remaining > 0 and not writer.failure:
                buf = writer.buffer()
                view = memoryview(buf)[: min(len(buf), remaining)]
                filled, error = 0, None
                try:
                    while filled < len(view):
                        n = sock.recv_into(view[filled:])
                        if not n:
                            error = TransientError(
                                f"file download: connection closed with {remaining - filled} "
                                "bytes of the body missing"
                            )
                            break
                        hasher.update(view[filled : filled + n])
                        filled += n
                except OSError as exc:  # reset, timeout, TLS error: resumable
                    error = TransientError(f"file download: {type(exc).__name__}: {exc}")
                if filled:
                    writer.put([view[:filled]], buf)
                    self._handed(filled, started)
                    remaining -= filled
                else:
                    writer.recycle(buf)
                if error is not None:
                    raise error
        finally:
            chunks.close()  # h11 sees an unfinished body: httpcore closes the connection


def _announced_end(resp: httpx.Response, offset: int) -> int | None:
    """The file size a response starting at `offset` announces: offset + Content-Length, or
    the total of its Content-Range if larger; None if it announces neither."""
    length = resp.headers.get("content-length", "")
    end = offset + int(length) if length.isdigit() else None
    m = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
    if m and m.group(3).isdigit():
        end = max(end or 0, int(m.group(3)))
    return end


def _direct_socket(resp: httpx.Response) -> socket.socket | None:
    """The connection's socket if the body can be read from it directly: HTTP/1.1 through
    httpcore (its documented `network_stream` extension), identity encoding, a Content-Length
    and no transfer coding."""
    if resp.is_stream_consumed or resp.extensions.get("http_version") != b"HTTP/1.1":
        return None
    headers = resp.headers
    if headers.get("content-encoding", "identity").lower() != "identity":
        return None
    if "transfer-encoding" in headers or not headers.get("content-length", "").isdigit():
        return None
    stream = resp.extensions.get("network_stream")
    try:
        sock = stream.get_extra_info("socket") if stream is not None else None
    except Exception:  # any stream without that info
        return None
    return sock if isinstance(sock, socket.socket) else None


def download_export(core: RequestCore, job: ExportJob, dest: Path) -> DownloadResult:
    """Stream the file of a Completed job to `dest` (mode 0600), constant memory.

    Writes `<dest>.part`, resumes a broken transfer with `Range: bytes=<have>-` (restarts from
    0 if the server answers 200), and continues a `.part` a killed process left behind; verifies
    the size against fileSize and SHA-256 against fileChecksum, re-downloads on mismatch up to
    checksum_retries times, then renames atomically. Never reads past fileSize: a response
    announcing or sending more is a corrupt download (ChecksumMismatchError, too_long).
    404 -> ExportFileExpiredError.
    """
    checked_export_id(job.export_id, "the job to download")
    if job.status != "Completed":
        raise InvalidRequestError(
            f"Export job {job.export_id} is {job.status or 'in an unknown state'}, not Completed: "
            "wait for it with wait_for_export() before downloading"
        )
    s = core.settings
    dest = Path(dest)
    part = dest.with_suffix(dest.suffix + ".part")
    started = time.monotonic()
    attempts = 0
    resumes = 0
    paths: set[str] = set()
    expected_sha = job.sha256
    while True:
        attempts += 1
        # First pass: continue a `.part` a killed run left behind (same export, same file).
        one_pass = _Pass(core, job, part, adopt=attempts == 1 and part.exists())
        try:
            one_pass.run()
        except BaseException:
            with contextlib.suppress(OSError):
                part.unlink()
            raise
        resumes += one_pass.resumes
        paths |= one_pass.paths
        digest = one_pass.hasher.hexdigest()
        too_long = one_pass.too_long
        actual_size = one_pass.have
        if too_long is not None and too_long.sending is not None:
            actual_size = too_long.sending
        size_ok = too_long is None and (job.file_size is None or one_pass.have == job.file_size)
        sha_ok = expected_sha is None or digest == expected_sha
        if size_ok and sha_ok:
            os.replace(part, dest)
            seconds = time.monotonic() - started
            core.emit(
                "download_progress",
                job.export_id,
                {
                    "bytes": one_pass.have,
                    "total": job.file_size,
                    "seconds": round(seconds, 3),
                    "done": True,
                },
            )
            return DownloadResult(
                path=dest,
                bytes=one_pass.have,
                sha256=digest,
                resumes=resumes,
                attempts=attempts,
                seconds=seconds,
                direct=paths == {"socket"},
            )
        with contextlib.suppress(OSError):
            part.unlink()
        core.emit(
            "checksum_mismatch",
            job.export_id,
            {
                "attempt": attempts,
                "expected_size": job.file_size,
                "actual_size": actual_size,
                "too_long": too_long is not None,
                "expected_sha256": expected_sha,
                "actual_sha256": digest,
            },
        )
        if attempts > s.checksum_retries:
            raise ChecksumMismatchError(
                job.export_id,
                expected_size=job.file_size,
                actual_size=actual_size,
                expected_sha256=expected_sha,
                actual_sha256=digest,
                attempts=attempts,
                too_long=too_long is not None,
            )
