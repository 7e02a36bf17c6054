"""The export ledger's interface: what it records, the claims, and the SQL both stores share.

`Ledger` holds every query; a store (SQLite `ExportLedger`, `PostgresLedger`) only opens
connections: `_rows` reads, `_write` runs a transaction that no other writer of the same
ledger interleaves with (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock). Queries use
`?` placeholders; a store translates them when its driver wants another style.
"""

from __future__ import annotations

import json
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "ACTIVE",
    "COLUMNS",
    "TERMINAL",
    "Claim",
    "ExportIdConflictError",
    "Ledger",
    "LedgerEntry",
    "Tx",
    "process_start",
    "rows_of",
]

# Ledger states. Marketo's own statuses plus our stages after Completed.
ACTIVE = ("created", "queued", "processing", "completed", "downloaded")
TERMINAL = ("loaded", "failed", "cancelled", "expired", "superseded")

COLUMNS = (
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
CLAIM_COLUMNS = (
    "asset",
    "partition_key",
    "run_id",
    "host",
    "pid",
    "pid_start",
    "state",
    "claimed_at",
    "touched_at",
)
_UPDATABLE = set(COLUMNS) - {"export_id", "asset", "partition_key", "request_hash", "created_at"}
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM exports"
_SELECT_CLAIM = f"SELECT {', '.join(CLAIM_COLUMNS)} FROM claims"
_SIZED = "records IS NOT NULL AND bytes IS NOT NULL"  # a job of known size


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


def process_start(pid: int) -> str | None:
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


class Tx(Protocol):
    """One write transaction of a store."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...
    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...


class Ledger(ABC):
    """Records export jobs per (asset, partition) so a re-launched run, on this machine or
    another, can reattach to its Marketo job; and holds the partition claims (one run at a
    time exports and loads a partition). `asset` is any name the caller keys its exports by."""

    # Where the ledger is, for messages (a file path, a database schema).
    where: str
    # What to set to start a new, empty ledger (for ExportIdConflictError).
    new_ledger_hint: str
    # The column that orders rows created in the same second (insertion order).
    order_column: str

    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _write(self) -> AbstractContextManager[Tx]: ...

    def reading(self) -> AbstractContextManager[None]:
        """The reads inside (of this thread) share one connection, where opening one is
        costly (PostgreSQL: ~5 ms each); writes keep their own."""
        return nullcontext()

    # ---------------------------------------------------------------------- exports
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
        with self._write() as tx:
            known = tx.rows(
                "SELECT asset, partition_key, status, created_at FROM exports WHERE export_id = ?",
                (export_id,),
            )
            if known:
                row = known[0]
                raise ExportIdConflictError(
                    f"Marketo answered the new export job for {asset} {partition_key} with "
                    f"export id {export_id}, which the export ledger {self.where} already holds "
                    f"for {row['asset']} {row['partition_key']} (status {row['status']}, "
                    f"created {row['created_at']}). Marketo export ids are unique, so this "
                    "ledger belongs to another Marketo instance (MARKETO_BASE_URL changed, or a "
                    "simulator that repeats ids). Nothing was exported; the new job was not "
                    "enqueued (no quota used). Give each Marketo instance its own ledger: "
                    f"{self.new_ledger_hint}."
                )
            tx.run(
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
        with self._write() as tx:
            tx.run(
                f"UPDATE exports SET {assignments} WHERE export_id = ?",
                [_iso(values[n]) for n in names] + [export_id],
            )

    def _entry(self, sql: str, params: Sequence[Any]) -> LedgerEntry | None:
        rows = self._rows(sql, params)
        return LedgerEntry(**rows[0]) if rows else None

    def get(self, export_id: str) -> LedgerEntry | None:
        return self._entry(f"{_SELECT} WHERE export_id = ?", (export_id,))

    def entries(
        self, asset: str | None = None, partition_key: str | None = None
    ) -> list[LedgerEntry]:
        sql, params = f"{_SELECT} WHERE 1=1", []
        if asset is not None:
            sql += " AND asset = ?"
            params.append(asset)
        if partition_key is not None:
            sql += " AND partition_key = ?"
            params.append(partition_key)
        rows = self._rows(f"{sql} ORDER BY created_at, {self.order_column}", params)
        return [LedgerEntry(**r) for r in rows]

    def file_states(
        self, export_ids: Collection[str] | None = None, outside: str | None = None
    ) -> dict[str, tuple[str, str | None]]:
        """{export id (lower case): (status, staged file)}: what the staging cleaner needs. With
        `export_ids` (lower case), only those exports and the finished ones whose staged file
        lies outside the folder `outside` (a file inside it is found by its name), so a long
        history is not read: every export otherwise."""
        sql = "SELECT export_id, status, staged_file FROM exports"
        if export_ids is None:
            return _states(self._rows(sql))
        with self.reading():
            return self._file_states(export_ids, outside)

    def _file_states(
        self, export_ids: Collection[str], outside: str | None
    ) -> dict[str, tuple[str, str | None]]:
        sql = "SELECT export_id, status, staged_file FROM exports"
        marks = ",".join("?" * len(ACTIVE))
        prefix = os.path.join(outside, "") if outside else ""
        where = f" WHERE staged_file IS NOT NULL AND status NOT IN ({marks})"
        if prefix:
            where += " AND substr(staged_file, 1, ?) != ?"
        params = (*ACTIVE, len(prefix), prefix) if prefix else ACTIVE
        states = _states(self._rows(sql + where, params))
        ids = sorted(export_ids)
        for start in range(0, len(ids), 500):  # within any driver's limit of parameters
            chunk = ids[start : start + 500]
            where = f" WHERE lower(export_id) IN ({','.join('?' * len(chunk))})"
            states.update(_states(self._rows(sql + where, chunk)))
        return states

    # ---------------------------------------------------------------------- history, summed
    # What the quota reads of the whole history, in rows that do not grow with it (issue 17).
    # A store names the SQL of a recorded request's payload fields (JSON text; NULL without)
    # and of its export type.
    fields_sql: str
    kind_sql: str

    def sized_totals(self) -> list[dict[str, Any]]:
        """Per asset and recorded field list (`fields`, JSON text or None) the jobs of known
        size: jobs, bytes, records, widest (largest file), full_bytes and full_records (those
        of the jobs with rows)."""
        rows = self._rows(
            f"SELECT asset, {self.fields_sql} AS fields, COUNT(*) AS jobs, SUM(bytes) AS bytes,"
            " SUM(records) AS records, MAX(bytes) AS widest,"
            " SUM(CASE WHEN records > 0 THEN bytes ELSE 0 END) AS full_bytes,"
            " SUM(CASE WHEN records > 0 THEN records ELSE 0 END) AS full_records"
            f" FROM exports WHERE {_SIZED} GROUP BY asset, {self.fields_sql}"
        )
        numbers = ("jobs", "bytes", "records", "widest", "full_bytes", "full_records")
        return [{**r, **{n: int(r[n]) for n in numbers}} for r in rows]  # PostgreSQL: Decimal

    def last_sized_records(self, asset: str, partition_key: str, request_hash: str) -> int | None:
        """The rows of the newest job of known size of the partition, of this request if it
        has one; None when the partition has none."""
        rows = self._rows(
            f"SELECT records FROM exports WHERE asset = ? AND partition_key = ? AND {_SIZED}"
            " ORDER BY CASE WHEN request_hash = ? THEN 0 ELSE 1 END, created_at DESC,"
            f" {self.order_column} DESC LIMIT 1",
            (asset, partition_key, request_hash),
        )
        return int(rows[0]["records"]) if rows else None

    def _last_sized(self) -> str:
        """Each partition's newest job of known size: asset, partition_key, rows (its records,
        at least 1) and fields (as in `sized_totals`, '' without)."""
        return (  # the request's fields read from the newest jobs only
            f"SELECT asset, partition_key, rows, COALESCE({self.fields_sql}, '') AS fields"
            " FROM (SELECT asset, partition_key, request_json,"
            " CASE WHEN records < 1 THEN 1 ELSE records END AS rows, ROW_NUMBER() OVER"
            f" (PARTITION BY asset, partition_key ORDER BY created_at DESC, {self.order_column}"
            f" DESC) AS newest FROM exports WHERE {_SIZED}) AS sized WHERE newest = 1"
        )

    def fewest_last_rows(self) -> list[dict[str, Any]]:
        """Per asset and field list (`fields`, '' without), the fewest rows (at least 1) of a
        partition's newest job of known size (`rows`)."""
        return self._rows(
            f"SELECT asset, fields, MIN(rows) AS rows FROM ({self._last_sized()}) AS last"
            " GROUP BY asset, fields"
        )

    def last_rows_up_to(self, asset: str, fields: str, rows: int) -> list[dict[str, Any]]:
        """partition_key and rows of the asset's partitions whose newest job of known size,
        of this field list, has at most `rows` rows."""
        return self._rows(
            f"SELECT partition_key, rows FROM ({self._last_sized()}) AS last"
            " WHERE asset = ? AND fields = ? AND rows <= ?",
            (asset, fields, rows),
        )

    def with_status(self, statuses: Sequence[str]) -> list[LedgerEntry]:
        """The exports in one of `statuses` (e.g. the jobs in flight), oldest first."""
        marks = ",".join("?" * len(statuses))
        rows = self._rows(
            f"{_SELECT} WHERE status IN ({marks}) ORDER BY created_at, {self.order_column}",
            tuple(statuses),
        )
        return [LedgerEntry(**r) for r in rows]

    def finished_sizes(self) -> list[dict[str, Any]]:
        """asset, export type (`kind`, None when the request does not say), finished_at and
        bytes of every job that finished with a known size (the quota usage table)."""
        return self._rows(
            f"SELECT asset, {self.kind_sql} AS kind, finished_at, bytes FROM exports"
            " WHERE finished_at IS NOT NULL AND bytes IS NOT NULL"
        )

    def field_lists(self, asset: str) -> list[str | None]:
        """The distinct field lists (as in `sized_totals`) the asset's exports requested."""
        rows = self._rows(
            f"SELECT DISTINCT {self.fields_sql} AS fields FROM exports WHERE asset = ?", (asset,)
        )
        return [r["fields"] for r in rows]

    def requests_mentioning(self, asset: str, text: str) -> list[str]:
        """The recorded requests (JSON) of the asset's exports that contain `text`, oldest
        first."""
        rows = self._rows(
            "SELECT request_json FROM exports WHERE asset = ? AND request_json LIKE ?"
            f" ORDER BY created_at, {self.order_column}",
            (asset, f"%{text}%"),
        )
        # LIKE ignores case in SQLite, and `_`/`%` in `text` are wildcards: check exactly.
        return [r["request_json"] for r in rows if text in r["request_json"]]

    def active(self, asset: str, partition_key: str, request_hash: str) -> LedgerEntry | None:
        """The newest job for this partition and request that may still be reused."""
        placeholders = ",".join("?" * len(ACTIVE))
        return self._entry(
            f"{_SELECT} WHERE asset = ? AND partition_key = ? AND request_hash = ?"
            f" AND status IN ({placeholders})"
            f" ORDER BY created_at DESC, {self.order_column} DESC LIMIT 1",
            (asset, partition_key, request_hash, *ACTIVE),
        )

    def latest_downloaded(
        self, asset: str, partition_key: str, request_hash: str | None = None
    ) -> LedgerEntry | None:
        """The newest downloaded export of the partition (of this request, if given: one part
        of a partition exported as several jobs)."""
        sql = f"{_SELECT} WHERE asset = ? AND partition_key = ? AND status = 'downloaded'"
        params: list[str] = [asset, partition_key]
        if request_hash is not None:
            sql += " AND request_hash = ?"
            params.append(request_hash)
        order = f" ORDER BY downloaded_at DESC, {self.order_column} DESC LIMIT 1"
        return self._entry(sql + order, params)

    # ---------------------------------------------------------------------- shared exports
    def add_members(self, export_id: str, asset: str, partition_keys: Sequence[str]) -> None:
        """The export's file holds the rows of these partitions of `asset` (one job for several
        partitions: each partition's load reads its own rows). Pending memberships of the same
        partitions in other exports are superseded (this export is newer), and an export left
        with no pending member is finished (see `_finish`)."""
        now = _now()
        keys = list(dict.fromkeys(partition_keys))
        marks = ",".join("?" * len(keys))
        with self._write() as tx:
            older = tx.rows(
                f"SELECT DISTINCT export_id FROM export_members WHERE asset = ? AND"
                f" partition_key IN ({marks}) AND export_id != ? AND status = 'pending'",
                (asset, *keys, export_id),
            )
            tx.run(
                f"UPDATE export_members SET status = 'superseded', updated_at = ? WHERE asset = ?"
                f" AND partition_key IN ({marks}) AND export_id != ? AND status = 'pending'",
                (now, asset, *keys, export_id),
            )
            for key in keys:
                tx.run(
                    "INSERT INTO export_members (export_id, asset, partition_key, status,"
                    " created_at, updated_at) VALUES (?,?,?,'pending',?,?)"
                    " ON CONFLICT (export_id, partition_key) DO NOTHING",
                    (export_id, asset, key, now, now),
                )
            for row in older:
                _finish(tx, row["export_id"], now)

    def members(
        self,
        asset: str | None = None,
        partition_key: str | None = None,
        export_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Memberships (export_id, asset, partition_key, status, row_count, created_at, slot: the
        export's own ledger partition key), oldest first."""
        sql = (
            "SELECT m.export_id, m.asset, m.partition_key, m.status, m.row_count, m.created_at,"
            " e.partition_key AS slot FROM export_members m JOIN exports e"
            " ON e.export_id = m.export_id WHERE 1=1"
        )
        params: list[str] = []
        for column, value in (("asset", asset), ("partition_key", partition_key),
                              ("export_id", export_id)):  # fmt: skip
            if value is not None:
                sql += f" AND m.{column} = ?"
                params.append(value)
        return self._rows(sql + f" ORDER BY m.created_at, m.{self.order_column}", params)

    def pending_export(self, asset: str, partition_key: str) -> LedgerEntry | None:
        """The newest export whose file holds the partition's rows, not loaded yet."""
        pending = [m for m in self.members(asset, partition_key) if m["status"] == "pending"]
        return self.get(pending[-1]["export_id"]) if pending else None

    def member_loaded(self, export_id: str, partition_key: str, rows: int) -> bool:
        """The partition's rows are loaded from the export; True when no partition of the
        export is pending any more (the export is then marked loaded: its file may go)."""
        now = _now()
        with self._write() as tx:
            tx.run(
                "UPDATE export_members SET status = 'loaded', row_count = ?, updated_at = ?"
                " WHERE export_id = ? AND partition_key = ?",
                (rows, now, export_id, partition_key),
            )
            return _finish(tx, export_id, now)

    def supersede_others(
        self, asset: str, partition_key: str, keep: str, siblings: Sequence[str] = ()
    ) -> None:
        """Older still-active jobs of a partition will never be used again. `siblings`: the
        request hashes of the other parts of a partition exported as several jobs, whose
        active jobs are kept."""
        placeholders = ",".join("?" * len(ACTIVE))
        kept = ",".join("?" * len(siblings))
        spare = f" AND request_hash NOT IN ({kept})" if siblings else ""
        with self._write() as tx:
            tx.run(
                f"UPDATE exports SET status = 'superseded', updated_at = ? WHERE asset = ?"
                f" AND partition_key = ? AND export_id != ? AND status IN ({placeholders})" + spare,
                (_now(), asset, partition_key, keep, *ACTIVE, *siblings),
            )

    # ---------------------------------------------------------------------- quota stops
    @abstractmethod
    def budget_lock(self) -> AbstractContextManager[None]:
        """Held while one export step checks the daily budget and creates its job, so two
        steps (on any machine using this ledger) never both fit into the same bytes."""

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
        with self._write() as tx:
            tx.run(
                "INSERT INTO quota_stops (asset, partition_key, reason, resets_at,"
                " predicted_bytes, run_id, stopped_at) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (asset, partition_key) DO UPDATE SET reason = excluded.reason,"
                " resets_at = excluded.resets_at, predicted_bytes = excluded.predicted_bytes,"
                " run_id = excluded.run_id, stopped_at = excluded.stopped_at",
                (asset, partition_key, reason, resets_at.isoformat(), predicted_bytes, run_id,
                 _now()),
            )  # fmt: skip

    def clear_stop(self, asset: str, partition_key: str) -> None:
        with self._write() as tx:
            tx.run(
                "DELETE FROM quota_stops WHERE asset = ? AND partition_key = ?",
                (asset, partition_key),
            )

    def stops(self) -> list[dict[str, Any]]:
        """Every partition stopped by the quota or the budget and not exported since."""
        return self._rows(
            "SELECT asset, partition_key, reason, resets_at, predicted_bytes, run_id, stopped_at"
            " FROM quota_stops ORDER BY stopped_at"
        )

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
        pid_start, now = process_start(pid) or "", time.time()
        with self._write() as tx:
            rows = tx.rows(
                f"{_SELECT_CLAIM} WHERE asset = ? AND partition_key = ?", (asset, partition_key)
            )
            if rows:
                other = Claim(**rows[0])
                if other.run_id != run_id and _claim_live(other, lease_seconds, run_status):
                    return other
            tx.run(
                "INSERT INTO claims (asset, partition_key, run_id, host, pid, pid_start, state,"
                " claimed_at, touched_at) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (asset, partition_key) DO UPDATE SET run_id = excluded.run_id,"
                " host = excluded.host, pid = excluded.pid, pid_start = excluded.pid_start,"
                " state = excluded.state, claimed_at = excluded.claimed_at,"
                " touched_at = excluded.touched_at",
                (asset, partition_key, run_id, host, pid, pid_start, "working", _now(), now),
            )
        return None

    def hand_over(self, asset: str, partition_key: str, run_id: str) -> None:
        """The export step is done; the same run's load step takes the claim next."""
        with self._write() as tx:
            tx.run(
                "UPDATE claims SET state = 'handed_over', touched_at = ? WHERE asset = ?"
                " AND partition_key = ? AND run_id = ?",
                (time.time(), asset, partition_key, run_id),
            )

    def release(self, asset: str, partition_key: str, run_id: str) -> None:
        with self._write() as tx:
            tx.run(
                "DELETE FROM claims WHERE asset = ? AND partition_key = ? AND run_id = ?",
                (asset, partition_key, run_id),
            )

    def current_claim(self, asset: str, partition_key: str) -> Claim | None:
        rows = self._rows(
            f"{_SELECT_CLAIM} WHERE asset = ? AND partition_key = ?", (asset, partition_key)
        )
        return Claim(**rows[0]) if rows else None

    def working_pids(self) -> set[int]:
        """The live processes of this host running a step that claimed a partition (an export
        or a load of some run)."""
        rows = self._rows(
            "SELECT pid, pid_start FROM claims WHERE host = ? AND state = 'working'",
            (socket.gethostname(),),
        )
        pids = [(r["pid"], r["pid_start"]) for r in rows]
        live = {pid: process_start(pid) for pid, _ in pids}
        return {pid for pid, start in pids if live[pid] is not None and live[pid] in ("", start)}


def _states(rows: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {r["export_id"].lower(): (r["status"], r["staged_file"]) for r in rows}


def _finish(tx: Tx, export_id: str, now: str) -> bool:
    """Mark a shared export with no pending member loaded (or superseded when none of its
    members was loaded from it); True when it is finished."""
    counts = {
        r["status"]: r["n"]
        for r in tx.rows(
            "SELECT status, COUNT(*) AS n FROM export_members WHERE export_id = ? GROUP BY status",
            (export_id,),
        )
    }
    if counts.get("pending"):
        return False
    status = "loaded" if counts.get("loaded") else "superseded"
    tx.run(
        "UPDATE exports SET status = ?, loaded_at = COALESCE(?, loaded_at), updated_at = ?"
        " WHERE export_id = ? AND status = 'downloaded'",
        (status, now if status == "loaded" else None, now, export_id),
    )
    return True


def _claim_live(
    claim: Claim, lease_seconds: float, run_status: Callable[[str], str | None] | None
) -> bool:
    status = run_status(claim.run_id) if run_status is not None else None
    if status == "finished":
        return False
    if claim.host == socket.gethostname():
        start = process_start(claim.pid)
        alive = start is not None and (not claim.pid_start or start == claim.pid_start)
        if claim.state == "working":
            return alive
        if status is None and (not alive or claim.pid == os.getpid()):
            return False
    return time.time() - claim.touched_at < lease_seconds


def rows_of(cursor: Any) -> list[dict[str, Any]]:
    """A DB-API cursor's result as dicts (column name -> value)."""
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
