"""NUL bytes in export files: where they are, and removing them.

Loads never keep NUL bytes (docs/DATA-TYPES.md): a file loads as if its NUL bytes had been
taken out before reading it. DuckDB's CSV reader keeps NUL bytes inside values, so when every
NUL byte of a file lies inside a value the DuckDB load removes them in its query (`nul_free`,
on text columns; a typed value with one fails its cast and the load reads a copy); a file with
NUL bytes elsewhere (`NulBytes.OUTSIDE_VALUES`) is read from a NUL-free copy (`strip_nul`).
The same scan tells whether a value could read as NULL once its NUL bytes are gone (`nu\0ll`,
a value of NUL bytes only): if none can, the query leaves out its NULL tests (`nul_free`).
PostgreSQL's COPY refuses NUL bytes anywhere, so it always reads the copy.
"""

from __future__ import annotations

import enum
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 8 * 1024 * 1024
# Past this many NUL runs in one chunk, a regular expression checks the rest of it in C.
RUNS_IN_PYTHON = 2048
QUOTE, CR, LF = 0x22, 0x0D, 0x0A
LINE_ENDS = (CR, LF)
# A NUL run outside values (see nul_scan): after a quote, or before a quote or a UTF-8
# continuation byte, or alone on its line (a run that reaches the chunk's end after a line end
# counts as alone: `\Z` is the chunk's end).
NOT_NUL = re.compile(rb"[^\x00]")
OUTSIDE = re.compile(rb'\x00(?:(?<="\x00)|(?<=[\r\n]\x00)\x00*(?:[\r\n]|\Z)|\x00*["\x80-\xbf])')
# What the reader reads as NULL (nullstr 'null' and ''): a value holding NUL bytes can only
# become that if it holds nothing but these letters besides its NUL bytes.
NULL_LETTERS = frozenset(b"nul")
# Bytes that can end a value: every delimiter (files.DELIMITERS, files.SSV_DELIMITERS), the
# quote and line ends. Any other byte next to a value's NUL bytes belongs to that value.
VALUE_ENDS = frozenset(b',\t; "\r\n')
NULL_TAIL = re.compile(rb"(?:\x00*[nul]){0,4}\x00*")


class NulBytes(enum.Enum):
    NONE = "none"
    IN_VALUES = "in values"  # the query can remove them from the values it reads
    OUTSIDE_VALUES = "outside values"  # removing them changes how the file parses: copy first


@dataclass(frozen=True)
class NulScan:
    """What `nul_scan` found: where the NUL bytes are (`kind`) and whether a value holding
    some may read as NULL ('' or 'null') once they are gone (`may_leave_null`; True unless
    the scan could rule it out for every run of NUL bytes)."""

    kind: NulBytes
    may_leave_null: bool = True


def nul_scan(path: Path) -> NulScan:
    """Where the file's NUL bytes are. In a value, a NUL byte is an ordinary character to
    DuckDB's reader, so removing it from the value read gives what reading the file without it
    gives. Not so for a run of NUL bytes next to a quote (it can turn a quote into text or an
    escape into two quotes), between CR and LF or alone on a line (an extra line), or before a
    UTF-8 continuation byte (inside a character): those are OUTSIDE_VALUES. A writer puts a
    NUL byte inside a value, so the only real case is a quoted value starting or ending with one.

    One pass in chunks into one reused buffer: memchr finds the NUL bytes, then each run's
    neighbours are looked at (a regular expression takes over in a chunk with many runs; a
    chunk that many runs, or a run ending the file, counts as `may_leave_null`)."""
    buf = bytearray(CHUNK + 2)
    view = memoryview(buf)
    buf[0], kept = LF, 1  # buf[:kept]: the byte before the chunk (a line end at the start)
    found = may_null = False
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(view[kept : kept + CHUNK]):
            end = kept + n
            i, runs = buf.find(0, 1, end), 0
            found = found or i >= 0
            while i >= 0:
                if runs == RUNS_IN_PYTHON:
                    if OUTSIDE.search(buf, i, end):
                        return NulScan(NulBytes.OUTSIDE_VALUES)
                    may_null = True
                    i = _trailing_run(view, i, end)
                    break
                j = i + 1
                if j < end and buf[j] == 0:
                    m = NOT_NUL.search(buf, j, end)
                    j = m.start() if m else end
                if j == end:
                    break
                if _outside(buf[i - 1], buf[j]):
                    return NulScan(NulBytes.OUTSIDE_VALUES)
                if not may_null and (buf[j] in NULL_LETTERS or buf[j] in VALUE_ENDS):
                    may_null = _may_leave_null(buf, i, j, end)
                i, runs = buf.find(0, j, end), runs + 1
            if i >= 0:  # a run reaches the chunk's end: carry the byte before it and one NUL
                buf[0], buf[1], kept = buf[i - 1], 0, 2
            else:
                buf[0], kept = buf[end - 1], 1
    if kept == 2:  # a run ends the file: as if a line end followed
        if _outside(buf[0], LF):
            return NulScan(NulBytes.OUTSIDE_VALUES)
        may_null = True
    return NulScan(NulBytes.IN_VALUES, may_null) if found else NulScan(NulBytes.NONE, False)


def _outside(before: int, after: int) -> bool:
    """Is a run of NUL bytes between the bytes `before` and `after` outside values?"""
    return (
        before == QUOTE
        or after == QUOTE
        or 0x80 <= after <= 0xBF
        or (before in LINE_ENDS and after in LINE_ENDS)
    )


def _may_leave_null(buf: bytearray, i: int, j: int, end: int) -> bool:
    """Could the value holding the run of NUL bytes buf[i:j] be '' or 'null' without them?
    Only if the bytes around the run, up to the value's ends, are NUL bytes and at most four
    of the letters of `null`. A value's end is not known here (a delimiter may be quoted), so
    any delimiter, quote or line end counts as one, and so do the buffer's ends: a yes may be
    wrong, a no never is."""
    m = NULL_TAIL.match(buf, j, end)
    k = m.end() if m else j
    if k < end and buf[k] not in VALUE_ENDS:
        return False
    letters, p = k - j - buf.count(0, j, k), i - 1
    while p >= 0 and buf[p] in NULL_LETTERS and letters <= 4:
        p, letters = p - 1, letters + 1
    return letters <= 4 and (p < 0 or buf[p] in VALUE_ENDS or buf[p] == 0)


def _trailing_run(view: memoryview, start: int, end: int) -> int:
    """Where the run of NUL bytes ending the chunk begins (at or after `start`), or -1."""
    if view[end - 1] != 0:
        return -1
    return start + len(view[start:end].tobytes().rstrip(b"\x00"))


def nul_free(column_sql: str, may_leave_null: bool = True) -> str:
    """SQL: the VARCHAR `column_sql` without its NUL bytes, NULL when what remains is what the
    reader reads as NULL (`nullstr`: '' and 'null'), as if the file had had no NUL bytes.
    Without `may_leave_null` (the scan ruled that out) the two NULL tests are left out: they
    run on the few values holding NUL bytes, but in nearly every vector of the read, and cost
    about a quarter of the removal's CPU on the benchmark file (0.2 of 0.8 CPU-s)."""
    removed = f"replace({column_sql}, chr(0), '')"
    if may_leave_null:
        removed = f"nullif(nullif({removed}, ''), 'null')"
    return f"CASE WHEN contains({column_sql}, chr(0)) THEN {removed} ELSE {column_sql} END"


class _NulFreeRaw(io.RawIOBase):
    """A binary file read without its NUL bytes."""

    def __init__(self, path: Path):
        self._fh = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while data := self._fh.read(len(b)):
            data = data.replace(b"\x00", b"")
            if data:
                b[: len(data)] = data
                return len(data)
        return 0

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_nul_free_text(path: Path) -> io.TextIOWrapper:
    """The file as text (UTF-8, a BOM skipped, line ends kept: newline='') read as if it had
    no NUL bytes: what the load reads, for Python's csv module (header, row counts)."""
    raw = io.BufferedReader(_NulFreeRaw(path), buffer_size=1024 * 1024)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def has_nul(path: Path) -> bool:
    """True if the file holds a NUL byte: chunked scan into one reused buffer (memchr speed,
    constant memory; ~2% of the load time of a large file, the pages stay cached for DuckDB)."""
    buf = bytearray(CHUNK)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            if buf.find(b"\x00", 0, n) >= 0:
                return True
    return False


def strip_nul(path: Path) -> Path:
    """Copy `path` without its NUL bytes into a new private (0600) temp file in the same
    directory and return it; streamed in chunks, constant memory. The caller deletes it.

    One reused buffer: each chunk is read into it and the NUL-free spans between NUL bytes are
    written straight from it (os.writev), so no byte is copied in Python (the earlier
    read + bytes.replace made two fresh 8 MiB objects per chunk: half the time of the copy)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".nonul", dir=path.parent)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    try:
        with open(path, "rb", buffering=0) as src:
            while n := src.readinto(buf):
                spans, start = [], 0
                while (i := buf.find(b"\x00", start, n)) >= 0:
                    if i > start:
                        spans.append(view[start:i])
                    start = i + 1
                if start < n:
                    spans.append(view[start:n])
                _write_spans(fd, spans)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    os.close(fd)
    return Path(tmp)


def _write_spans(fd: int, spans: list[memoryview]) -> None:
    """Write every span in order (os.writev may write less than asked, and takes <= 1024)."""
    while spans:
        n = os.writev(fd, spans[:1024])
        while n and spans:
            if n >= len(spans[0]):
                n -= len(spans[0])
                spans.pop(0)
            else:
                spans[0] = spans[0][n:]
                n = 0
