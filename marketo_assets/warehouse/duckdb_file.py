"""Opening the DuckDB file for writing: at once, or an error naming the cause and the fix.

DuckDB lets one process write a file at a time (an OS lock on the file; a read-only reader
holds it too). Another process holding it (the DuckDB CLI, a notebook, a BI tool) makes
`duckdb.connect` fail with "Conflicting lock is held in <program> (PID <n>)".
`connect_for_write` retries that for `LOCK_WAIT_SECONDS` (another step's brief check of the
file), then raises `WarehouseLockedError` naming the holder: waiting longer cannot help, as
the holder is usually a program the user left open.

`check_writable` is the export step's check, before a Marketo job is created: the folder
exists and takes a new file, and the file (if any) opens for writing.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .loader import WarehouseLockedError, WarehouseUnavailableError

LOCK_WAIT_SECONDS = 5.0
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")
_INTERPRETERS = ("python", "node", "java", "ruby", "perl")
CLOSE_IT = (
    "Close that program (quit the DuckDB CLI, or disconnect the notebook or BI tool such as "
    "DBeaver from the file; a read-only connection blocks writes too), then re-run."
)


@dataclass(frozen=True)
class LockHolder:
    """The process that holds the DuckDB file's lock, as DuckDB reports it."""

    pid: int
    program: str

    @property
    def name(self) -> str:
        """A short, readable name: the program, and the script or module it runs (from
        /proc/<pid>/cmdline where there is one); never the other arguments."""
        return " ".join(_program(_argv(self.pid) or [self.program]))

    def in_dagster(self) -> bool | None:
        """Is the holder a Dagster process or started by one (a run worker loading, a dbt
        build)? None where processes cannot be inspected (no /proc)."""
        pid, seen = self.pid, 0
        while pid > 0 and seen < 20:
            argv = _argv(pid)
            if argv is None:
                return None if seen == 0 else False
            if any(p.startswith("dagster") or p == "dg" for p in _program(argv) if p != "-m"):
                return True
            pid, seen = _parent(pid), seen + 1
        return False


def _program(argv: list[str]) -> list[str]:
    """["duckdb"], ["python3", "-m", "dagster"], ["python3", "script.py"], ["python3", "-c …"]."""
    parts = [os.path.basename(argv[0])]
    if parts[0].startswith(_INTERPRETERS) and len(argv) > 1:
        if argv[1] == "-m" and len(argv) > 2:
            parts += ["-m", argv[2]]
        elif argv[1] == "-c":
            parts.append("-c …")
        elif not argv[1].startswith("-"):
            parts.append(os.path.basename(argv[1]))
    return parts


def _argv(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a] or None


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def lock_holder(error: Exception) -> LockHolder | None:
    """The holder named by DuckDB's "Conflicting lock" error, or None for any other error."""
    match = _LOCK_HOLDER.search(str(error))
    return LockHolder(int(match.group(2)), match.group(1)) if match else None


def locked_error(database: str | Path, holder: LockHolder, waited: float) -> WarehouseLockedError:
    return WarehouseLockedError(
        f"The DuckDB file {database} (DUCKDB_PATH) is locked by another process: "
        f"{holder.name} (PID {holder.pid}, {holder.program}); still locked after "
        f"{waited:.0f} s. DuckDB lets one process at a time use a file it writes to. "
        f"{CLOSE_IT}",
        holder,
    )


def connect_for_write(
    database: str | Path, config: dict | None = None, wait: float = LOCK_WAIT_SECONDS
) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the DuckDB file. A lock held by another process is retried
    for `wait` seconds, then WarehouseLockedError; a file that cannot be opened (no such
    folder, not a DuckDB file, no permission) raises WarehouseUnavailableError at once."""
    deadline = time.monotonic() + wait
    started = time.monotonic()
    while True:
        try:
            return duckdb.connect(str(database), read_only=False, config=config or {})
        except duckdb.IOException as exc:
            holder = lock_holder(exc)
            if holder is None:
                raise unavailable_error(database, exc) from exc
            if time.monotonic() >= deadline:
                raise locked_error(database, holder, time.monotonic() - started) from exc
            time.sleep(0.25)


def unavailable_error(database: str | Path, exc: Exception) -> WarehouseUnavailableError:
    return WarehouseUnavailableError(
        f"Cannot open the DuckDB file {database} (DUCKDB_PATH) for writing: {exc}. Point "
        "DUCKDB_PATH at a DuckDB file (or a new file name) in a folder this process can write."
    )


def check_writable(
    database: str | Path,
    config: dict | None = None,
    create_folder: bool = False,
    is_ours: Callable[[LockHolder], bool] | None = None,
) -> LockHolder | None:
    """Raise WarehouseUnavailableError / WarehouseLockedError if a load into `database` would
    fail: its folder is missing (created instead when `create_folder`, mode 0700), is not a
    folder or does not take a new file; the file exists but does not open for writing.

    A lock held by one of our own writers (another run's load or dbt build: they take turns in
    the `duckdb` pool) is not an error: that holder is returned, and the load waits its turn.
    Ours: a Dagster process or one it started, or what `is_ours` accepts; also any holder
    where processes cannot be inspected (the load step still fails fast if it must).
    """
    path = Path(database)
    folder = existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise WarehouseUnavailableError(
            f"DUCKDB_PATH is {database}, but {existing} is a file, not a folder. Fix "
            "DUCKDB_PATH (a typo?), then re-run."
        )
    if existing != folder:
        if not create_folder:
            raise WarehouseUnavailableError(
                f"DUCKDB_PATH is {database}, in a folder that does not exist ({folder}). Fix "
                "DUCKDB_PATH (a typo?) or create the folder, then re-run."
            )
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:  # DuckDB writes the file and its .wal next to it: the folder must take new files
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.check-"):
            pass
    except OSError as exc:
        raise WarehouseUnavailableError(
            f"DUCKDB_PATH is {database}, but this process cannot create files in {folder} "
            f"({exc.strerror}). Make the folder writable for this user or point DUCKDB_PATH "
            "at a writable folder, then re-run."
        ) from exc
    if not path.exists():
        return None
    try:
        connect_for_write(path, config, wait=0).close()
    except WarehouseLockedError as exc:
        holder = exc.holder
        if holder.in_dagster() is not False or (is_ours is not None and is_ours(holder)):
            return holder
        connect_for_write(path, config).close()  # a brief reader may let go; else raises
    return None
