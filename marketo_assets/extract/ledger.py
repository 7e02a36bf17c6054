"""The export ledger in a small SQLite file: the local default (MARKETO_LEDGER=sqlite).

Why SQLite and not DuckDB or the Dagster instance: export steps run in parallel processes
(two Marketo slots) while DuckDB allows one writer per file; SQLite in WAL mode gives
transactional, concurrent, crash-safe writes from many processes, and the ledger must be
readable before any Dagster event is written (a run killed right after `create` must still
find its export id when it is re-launched). Runs on several machines without a shared disk use
`PostgresLedger` instead (ledger_postgres.py); both implement `Ledger` (ledger_base.py).

Durability: a commit survives the crash or kill of any process (SQLite's WAL with
synchronous=NORMAL: the commit is in the WAL file before COMMIT returns), not necessarily a power
loss or OS crash, which may roll back the last commits since a checkpoint (the file stays
consistent). The worst that costs is a partition exported or downloaded again (quota): the
partition replace is idempotent and a lost claim is taken again. Syncing every commit
(synchronous=FULL, and a checkpoint each time a connection closed) cost ~40 fsyncs per
partition (issue 17).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .ledger_base import (
    ACTIVE,
    TERMINAL,
    Claim,
    ExportIdConflictError,
    Ledger,
    LedgerEntry,
    rows_of,
)
from .local_paths import create_private_file, path_error, private_dirs, require_writable

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Claim",
    "ExportIdConflictError",
    "ExportLedger",
    "Ledger",
    "LedgerEntry",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exports (
    export_id      TEXT PRIMARY KEY,
    asset          TEXT NOT NULL,
    partition_key  TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    request_json   TEXT NOT NULL,
    status         TEXT NOT NULL,
    run_id         TEXT,
    created_at     TEXT NOT NULL,
    queued_at      TEXT,
    started_at     TEXT,
    finished_at    TEXT,
    downloaded_at  TEXT,
    loaded_at      TEXT,
    records        INTEGER,
    bytes          INTEGER,
    checksum       TEXT,
    staged_file    TEXT,
    error          TEXT,
    updated_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exports_partition ON exports (asset, partition_key, created_at);
CREATE INDEX IF NOT EXISTS exports_status ON exports (status);
CREATE TABLE IF NOT EXISTS claims (
    asset          TEXT NOT NULL,
    partition_key  TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    pid_start      TEXT NOT NULL,
    state          TEXT NOT NULL,
    claimed_at     TEXT NOT NULL,
    touched_at     REAL NOT NULL,
    PRIMARY KEY (asset, partition_key)
);
CREATE TABLE IF NOT EXISTS quota_stops (
    asset           TEXT NOT NULL,
    partition_key   TEXT NOT NULL,
    reason          TEXT NOT NULL,
    resets_at       TEXT NOT NULL,
    predicted_bytes INTEGER,
    run_id          TEXT,
    stopped_at      TEXT NOT NULL,
    PRIMARY KEY (asset, partition_key)
);
CREATE TABLE IF NOT EXISTS export_members (
    export_id      TEXT NOT NULL,
    asset          TEXT NOT NULL,
    partition_key  TEXT NOT NULL,
    status         TEXT NOT NULL,
    row_count      INTEGER,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (export_id, partition_key)
);
CREATE INDEX IF NOT EXISTS export_members_partition ON export_members (asset, partition_key);
"""


# SQLite errors that say the file or its folder cannot work as a ledger (not transient).
_DAMAGED = ("SQLITE_NOTADB", "SQLITE_CORRUPT")
_UNUSABLE = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")


class ExportLedger(Ledger):
    """The SQLite ledger (see `Ledger`) in the file `path`.

    Opening it checks the path first: LocalPathError (naming `setting`, the variable that sets
    the path, and the fix) when it is a folder, lies under a file, is not writable, or is not a
    ledger. A new ledger file is created 0600 (SQLite gives its -wal/-shm files the same mode);
    missing folders 0700; an existing file or folder keeps its mode."""

    def __init__(self, path: str | Path, setting: str = "MARKETO_LEDGER_PATH"):
        self.path = Path(path)
        self.setting = setting
        self.where = str(self.path)
        self.new_ledger_hint = "set MARKETO_LEDGER_PATH to a new file"
        self.order_column = "rowid"
        self.fields_sql = "json_extract(request_json, '$.payload.fields')"
        self.kind_sql = "json_extract(request_json, '$.export_type')"
        self._check_path()
        # One idle connection for this object's life: SQLite checkpoints and deletes the WAL
        # whenever its last connection closes (two fsyncs and two files each time); with this
        # one open, the short connections below close without that. It holds no lock.
        keeper = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        weakref.finalize(self, keeper.close)
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a new file: now WAL

    def _check_path(self) -> None:
        path, setting = self.path, self.setting
        if path.is_dir():
            raise path_error(
                setting,
                path,
                "that is a folder; it must name the ledger's SQLite file",
                f"Set {setting} to a file path, e.g. {path / 'export_ledger.sqlite'} (the file "
                "is created if missing).",
            )
        private_dirs(path.parent, setting, configured=path)
        try:
            created = create_private_file(path)
        except OSError as exc:
            raise path_error(
                setting,
                path,
                f"the file cannot be created ({exc.strerror}): {path.parent} is not writable",
                f"Make {path.parent} writable for the user running Dagster, or set {setting} "
                "to a file in another folder.",
            ) from exc
        # SQLite writes -wal and -shm files next to the ledger: the folder must be writable too.
        require_writable(path.parent, setting, path)
        if not created and not os.access(path, os.R_OK | os.W_OK):
            raise path_error(
                setting,
                path,
                "the file is not readable and writable for this user",
                f"Give the user running Dagster read and write access to it, or set {setting} "
                "to another file.",
            )
        self._check_contents()

    def _check_contents(self) -> None:
        """The file is an SQLite database that is a ledger (or empty): never add tables to
        someone else's database, never work on a damaged one."""
        try:
            conn = sqlite3.connect(self.path, timeout=60)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "")
            if name in _UNUSABLE:
                raise path_error(
                    self.setting,
                    self.path,
                    f"SQLite cannot open it for writing ({exc})",
                    "Give the user running Dagster write access to it and its folder, or set "
                    f"{self.setting} to another file.",
                ) from exc
            if name not in _DAMAGED:
                raise  # e.g. busy: transient
            tables, check = set(), str(exc)
        if check != "ok":
            raise path_error(
                self.setting,
                self.path,
                f"it is not a readable export ledger (SQLite: {check}); it was not changed",
                f"If {self.setting} names the wrong file, correct it. If the ledger is "
                f"damaged, move it aside (e.g. `mv {self.path} {self.path}.damaged`): the next "
                "run starts a new ledger (exports that were in flight are created again).",
            )
        if tables and "exports" not in tables:
            raise path_error(
                self.setting,
                self.path,
                "it is an SQLite database of something else (it has no `exports` table); it "
                "was not changed",
                f"Set {self.setting} to the export ledger's file, or to a new file name.",
            )

    @contextmanager
    def budget_lock(self) -> Iterator[None]:
        """A file lock next to the ledger (`<ledger>.budget-lock`, 0600)."""
        path = self.path.with_name(self.path.name + ".budget-lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # see the module's docstring
            conn.execute("PRAGMA busy_timeout=60000")
            yield conn
        finally:
            conn.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._connect() as conn:
            return rows_of(conn.execute(sql, params))

    @contextmanager
    def _write(self) -> Iterator[_SqliteTx]:
        with self._connect() as conn:
            for attempt in range(50):
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
            try:
                yield _SqliteTx(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return rows_of(self._conn.execute(sql, params))

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, params)
