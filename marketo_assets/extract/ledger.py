"""Durable export ledger: every Marketo export job we create, in a small SQLite file.

Why SQLite and not DuckDB or the Dagster instance: export steps run in parallel processes
(two Marketo slots) while DuckDB allows one writer per file; SQLite in WAL mode gives
transactional, concurrent, crash-safe writes from many processes, and the ledger must be
readable before any Dagster event is written (a run killed right after `create` must still
find its export id when it is re-launched).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .local_paths import create_private_file, path_error, private_dirs, require_writable

# Ledger states. Marketo's own statuses plus our stages after Completed.
ACTIVE = ("created", "queued", "processing", "completed", "downloaded")
TERMINAL = ("loaded", "failed", "cancelled", "expired", "superseded")

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
"""

_COLUMNS = (
    "export_id",
    "asset",
    "partition_key",
    "request_hash",
    "request_json",
    "status",
    "run_id",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "downloaded_at",
    "loaded_at",
    "records",
    "bytes",
    "checksum",
    "staged_file",
    "error",
    "updated_at",
)
_UPDATABLE = set(_COLUMNS) - {"export_id", "asset", "partition_key", "request_hash", "created_at"}


class ExportIdConflictError(ValueError):
    """Marketo handed out an export id the ledger already records (another instance's ledger)."""


@dataclass(frozen=True)
class LedgerEntry:
    export_id: str
    asset: str
    partition_key: str
    request_hash: str
    request_json: str
    status: str
    run_id: str | None
    created_at: str
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    downloaded_at: str | None
    loaded_at: str | None
    records: int | None
    bytes: int | None
    checksum: str | None
    staged_file: str | None
    error: str | None
    updated_at: str

    @property
    def request(self) -> dict:
        return json.loads(self.request_json)


@dataclass(frozen=True)
class Claim:
    """Who works on a partition now: one run at a time exports and loads it.

    `state` is "working" while a step of the run executes in process `pid` on `host`, and
    "handed_over" between the export step and the load step (no process holds it then)."""

    asset: str
    partition_key: str
    run_id: str
    host: str
    pid: int
    pid_start: str
    state: str
    claimed_at: str
    touched_at: float

    def describe(self) -> str:
        where = f"process {self.pid} on {self.host}" if self.state == "working" else "between steps"
        return f"run {self.run_id} ({where}, since {self.claimed_at})"


def _process_start(pid: int) -> str | None:
    """A token that changes when a pid is reused ('' where /proc is not available); None when
    the process does not exist or is a zombie (killed, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # starttime (field 22 of /proc/<pid>/stat)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


# SQLite errors that say the file or its folder cannot work as a ledger (not transient).
_DAMAGED = ("SQLITE_NOTADB", "SQLITE_CORRUPT")
_UNUSABLE = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")


class ExportLedger:
    """Records export jobs per (asset, partition) so a re-launched run can reattach.

    Opening it checks the path first: LocalPathError (naming `setting`, the variable that sets
    the path, and the fix) when it is a folder, lies under a file, is not writable, or is not a
    ledger. A new ledger file is created 0600 (SQLite gives its -wal/-shm files the same mode);
    missing folders 0700; an existing file or folder keeps its mode."""

    def __init__(self, path: str | Path, setting: str = "MARKETO_LEDGER_PATH"):
        self.path = Path(path)
        self.setting = setting
        self._check_path()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

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
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
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
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def record_created(
        self,
        *,
        export_id: str,
        asset: str,
        partition_key: str,
        request_hash: str,
        request: dict,
        run_id: str | None = None,
        status: str = "created",
    ) -> None:
        now = _now()
        with self._write() as conn:
            known = conn.execute(
                "SELECT asset, partition_key, status, created_at FROM exports WHERE export_id = ?",
                (export_id,),
            ).fetchone()
            if known is not None:
                raise ExportIdConflictError(
                    f"Marketo answered the new export job for {asset} {partition_key} with "
                    f"export id {export_id}, which the export ledger {self.path} already holds "
                    f"for {known['asset']} {known['partition_key']} (status {known['status']}, "
                    f"created {known['created_at']}). Marketo export ids are unique, so this "
                    "ledger belongs to another Marketo instance (MARKETO_BASE_URL changed, or a "
                    "simulator that repeats ids). Nothing was exported; the new job was not "
                    "enqueued (no quota used). Give each Marketo instance its own ledger: set "
                    "MARKETO_LEDGER_PATH to a new file."
                )
            conn.execute(
                "INSERT INTO exports (export_id, asset, partition_key, request_hash, request_json,"
                " status, run_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    export_id,
                    asset,
                    partition_key,
                    request_hash,
                    json.dumps(request, sort_keys=True),
                    status,
                    run_id,
                    now,
                    now,
                ),
            )

    def update(self, export_id: str, **values: object) -> None:
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown ledger columns: {sorted(unknown)}")
        values["updated_at"] = _now()
        names = sorted(values)
        assignments = ", ".join(f"{name} = ?" for name in names)
        with self._write() as conn:
            conn.execute(
                f"UPDATE exports SET {assignments} WHERE export_id = ?",
                [_iso(values[n]) for n in names] + [export_id],
            )

    def get(self, export_id: str) -> LedgerEntry | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM exports WHERE export_id = ?", (export_id,)).fetchone()
        return LedgerEntry(**dict(row)) if row else None

    def entries(
        self, asset: str | None = None, partition_key: str | None = None
    ) -> list[LedgerEntry]:
        sql, params = "SELECT * FROM exports WHERE 1=1", []
        if asset is not None:
            sql += " AND asset = ?"
            params.append(asset)
        if partition_key is not None:
            sql += " AND partition_key = ?"
            params.append(partition_key)
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY created_at, rowid", params).fetchall()
        return [LedgerEntry(**dict(r)) for r in rows]

    def active(self, asset: str, partition_key: str, request_hash: str) -> LedgerEntry | None:
        """The newest job for this partition and request that may still be reused."""
        placeholders = ",".join("?" * len(ACTIVE))
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM exports WHERE asset = ? AND partition_key = ? AND request_hash = ?"
                f" AND status IN ({placeholders}) ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (asset, partition_key, request_hash, *ACTIVE),
            ).fetchone()
        return LedgerEntry(**dict(row)) if row else None

    def latest_downloaded(
        self, asset: str, partition_key: str, request_hash: str | None = None
    ) -> LedgerEntry | None:
        """The newest downloaded export of the partition (of this request, if given: one part
        of a partition exported as several jobs)."""
        sql = "SELECT * FROM exports WHERE asset = ? AND partition_key = ?"
        sql += " AND status = 'downloaded'"
        params: list[str] = [asset, partition_key]
        if request_hash is not None:
            sql += " AND request_hash = ?"
            params.append(request_hash)
        with self._connect() as conn:
            row = conn.execute(
                sql + " ORDER BY downloaded_at DESC, rowid DESC LIMIT 1", params
            ).fetchone()
        return LedgerEntry(**dict(row)) if row else None

    # ---------------------------------------------------------------------- quota stops
    def record_stop(
        self,
        asset: str,
        partition_key: str,
        *,
        reason: str,
        resets_at: datetime,
        predicted_bytes: int | None,
        run_id: str | None,
    ) -> None:
        """The partition was not exported because of the quota or the budget ("quota" or
        "budget"): it is due again at `resets_at` (see extract.quota)."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO quota_stops (asset, partition_key, reason, resets_at,"
                " predicted_bytes, run_id, stopped_at) VALUES (?,?,?,?,?,?,?)",
                (asset, partition_key, reason, resets_at.isoformat(), predicted_bytes, run_id,
                 _now()),
            )  # fmt: skip

    def clear_stop(self, asset: str, partition_key: str) -> None:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM quota_stops WHERE asset = ? AND partition_key = ?",
                (asset, partition_key),
            )

    def stops(self) -> list[dict]:
        """Every partition stopped by the quota or the budget and not exported since."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM quota_stops ORDER BY stopped_at").fetchall()
        return [dict(r) for r in rows]

    # ---------------------------------------------------------------------- claims
    def claim(
        self,
        asset: str,
        partition_key: str,
        run_id: str,
        *,
        lease_seconds: float = 3600.0,
        run_status: Callable[[str], str | None] | None = None,
    ) -> Claim | None:
        """Claim the partition for `run_id` (re-entrant for the same run). Returns None when the
        claim is ours now, else the other run's live claim (and changes nothing).

        `run_status(run_id)` says what the orchestrator knows of a run: "finished", "active" or
        None (unknown to it). Another run's claim is stale, and taken over, when its run is
        finished; when it is "working" in a process of this host that no longer exists
        (SIGKILL); when it was handed over between steps by a run the orchestrator does not
        know, from a process that is gone or is this one; and in any case after
        `lease_seconds` (handed over, or held on another host)."""
        host, pid = socket.gethostname(), os.getpid()
        pid_start, now = _process_start(pid) or "", time.time()
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM claims WHERE asset = ? AND partition_key = ?",
                (asset, partition_key),
            ).fetchone()
            if row is not None:
                other = Claim(**dict(row))
                if other.run_id != run_id and self._claim_live(other, lease_seconds, run_status):
                    return other
            conn.execute(
                "INSERT OR REPLACE INTO claims (asset, partition_key, run_id, host, pid,"
                " pid_start, state, claimed_at, touched_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (asset, partition_key, run_id, host, pid, pid_start, "working", _now(), now),
            )
        return None

    @staticmethod
    def _claim_live(
        claim: Claim, lease_seconds: float, run_status: Callable[[str], str | None] | None
    ) -> bool:
        status = run_status(claim.run_id) if run_status is not None else None
        if status == "finished":
            return False
        if claim.host == socket.gethostname():
            start = _process_start(claim.pid)
            alive = start is not None and (not claim.pid_start or start == claim.pid_start)
            if claim.state == "working":
                return alive
            if status is None and (not alive or claim.pid == os.getpid()):
                return False
        return time.time() - claim.touched_at < lease_seconds

    def hand_over(self, asset: str, partition_key: str, run_id: str) -> None:
        """The export step is done; the same run's load step takes the claim next."""
        with self._write() as conn:
            conn.execute(
                "UPDATE claims SET state = 'handed_over', touched_at = ? WHERE asset = ?"
                " AND partition_key = ? AND run_id = ?",
                (time.time(), asset, partition_key, run_id),
            )

    def release(self, asset: str, partition_key: str, run_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM claims WHERE asset = ? AND partition_key = ? AND run_id = ?",
                (asset, partition_key, run_id),
            )

    def current_claim(self, asset: str, partition_key: str) -> Claim | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM claims WHERE asset = ? AND partition_key = ?",
                (asset, partition_key),
            ).fetchone()
        return Claim(**dict(row)) if row else None

    def working_pids(self) -> set[int]:
        """The live processes of this host running a step that claimed a partition (an export
        or a load of some run)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT pid, pid_start FROM claims WHERE host = ? AND state = 'working'",
                (socket.gethostname(),),
            ).fetchall()
        live = {pid: _process_start(pid) for pid, _ in rows}
        return {pid for pid, start in rows if live[pid] is not None and live[pid] in ("", start)}

    def supersede_others(
        self, asset: str, partition_key: str, keep: str, siblings: Sequence[str] = ()
    ) -> None:
        """Older still-active jobs of a partition will never be used again. `siblings`: the
        request hashes of the other parts of a partition exported as several jobs, whose
        active jobs are kept."""
        placeholders = ",".join("?" * len(ACTIVE))
        kept = ",".join("?" * len(siblings))
        spare = f" AND request_hash NOT IN ({kept})" if siblings else ""
        with self._write() as conn:
            conn.execute(
                f"UPDATE exports SET status = 'superseded', updated_at = ? WHERE asset = ?"
                f" AND partition_key = ? AND export_id != ? AND status IN ({placeholders})" + spare,
                (_now(), asset, partition_key, keep, *ACTIVE, *siblings),
            )
