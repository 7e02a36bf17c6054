"""The load step: the staged file(s) of a partition into a warehouse table, in one transaction.

The partition's rows are replaced, the ledger entries marked loaded and the staged files
(personal data) deleted once the load is committed. A staged file of another machine is
downloaded again by export id first (refetch.py). A load that fails keeps the files, so it is
retried without exporting again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from marketo_assets.warehouse import (
    CastError,
    HeaderMismatchError,
    LoadResult,
    SchemaConflictError,
    WarehouseSession,
    columns_for,
    count_where,
)

from .checks import CHECK_ROWS, Check
from .claims import RunStatus, claim_partition
from .errors import ExportFailed
from .events import Notice, OnEvent, ignore
from .export import clean_staging_area
from .ledger_base import Ledger, LedgerEntry
from .quota import QUOTA_USAGE_COLUMNS, QUOTA_USAGE_TABLE, usage_rows
from .refetch import FileClient, fetch_again
from .staging import Staging, discard_staged, staged_ok

__all__ = ["LoadOutcome", "LoadedPartition", "header_columns", "load", "staged_exports"]

T = TypeVar("T")


@dataclass(frozen=True)
class LoadedPartition:
    """What the load hands to the caller's `inspect` (inside the open session)."""

    entry: LedgerEntry
    result: LoadResult
    stats: dict
    id_column: str
    timestamp_column: str | None
    # Every export loaded (several when the window was exported as several jobs).
    entries: tuple[LedgerEntry, ...] = ()


@dataclass(frozen=True)
class LoadOutcome(Generic[T]):
    loaded: LoadedPartition
    # Rows Marketo said the export(s) hold (numberOfRecords, summed over the parts).
    records: int
    # What `inspect` returned (None without one).
    inspected: T | None = None
    staged_deleted: int = 0  # staged files deleted after the load (personal data)

    @property
    def export_ids(self) -> list[str]:
        return [e.export_id for e in self.loaded.entries]

    def checks(self, unique_check: str) -> list[Check]:
        """Rows = numberOfRecords, and no id twice (or NULL) in the partition."""
        rows, stats = self.loaded.result.rows, self.loaded.stats
        ids = {"duplicate_ids": stats["duplicate_ids"], "null_ids": stats["null_ids"]}
        counts = {"loaded_rows": rows, "marketo_records": self.records}
        return [
            Check(CHECK_ROWS, rows == self.records, counts),
            Check(unique_check, ids["duplicate_ids"] == 0 and ids["null_ids"] == 0, ids),
        ]

    def metadata(self) -> dict[str, Any]:
        """The export id(s), Marketo's record count and the load's seconds."""
        entries = self.loaded.entries
        exports: dict[str, Any] = (
            {"export_id": entries[0].export_id}
            if len(entries) == 1
            else {"export_ids": self.export_ids}
        )
        seconds = round(self.loaded.result.seconds, 3)
        deleted = {"staged_files_deleted": self.staged_deleted}
        return {**exports, "marketo_records": self.records, "load_seconds": seconds, **deleted}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def staged_exports(
    ledger: Ledger,
    asset: str,
    partition_key: str,
    fetch: Callable[[LedgerEntry], LedgerEntry] | None = None,
    shared: bool = False,
) -> list[LedgerEntry]:
    """The staged files of the partition's newest export: one, or every part of an export
    sent as several jobs (each part's ledger record lists the request hashes of all parts).
    `shared`: the newest export holding the partition's rows not loaded yet (its ledger
    members, see batch.py). A file that is not on this machine is `fetch`ed (downloaded again)
    when given."""
    if shared:
        entry = ledger.pending_export(asset, partition_key)
    else:
        entry = ledger.latest_downloaded(asset, partition_key)
    hashes = entry.request.get("parts") if entry else None
    if entry is None or (not hashes and not staged_ok(entry) and fetch is None):
        raise ExportFailed(
            f"No downloaded export is staged for {asset} partition {partition_key}. "
            "Materialize the export step of this partition first (it reattaches to its "
            "Marketo job if one is still usable).",
            retryable=False,
        )
    found = (
        [ledger.latest_downloaded(asset, partition_key, request_hash=h) for h in hashes]
        if hashes
        else [entry]
    )
    missing = [
        str(i + 1) for i, e in enumerate(found) if e is None or (not staged_ok(e) and fetch is None)
    ]
    if hashes and missing:
        raise ExportFailed(
            f"{asset} partition {partition_key} is exported as {len(hashes)} Marketo jobs "
            f"(its window is longer than Marketo's 31 days) and part(s) "
            f"{', '.join(missing)} are not downloaded. Materialize the export step of this "
            "partition first (it reuses the parts already staged); nothing was loaded.",
            retryable=False,
        )
    entries = [e for e in found if e is not None]
    if fetch is None:
        return entries
    return [e if staged_ok(e) else fetch(e) for e in entries]


def header_columns(ledger: Ledger, asset: str) -> dict[str, str]:
    """{header: field} of every header the asset's exports gave a field: loads before header
    names stopped naming columns made such columns, renamed back to the field's name. A header
    that is also some field's name is left out (that column may be the field's own)."""
    out: dict[str, str] = {}
    named = ledger.requests_mentioning(asset, "columnHeaderNames")
    if not named:
        return out  # the usual case: no export gave header names (nothing more to read)
    for request_json in named:
        headers = json.loads(request_json).get("payload", {}).get("columnHeaderNames") or {}
        out.update({header: field for field, header in headers.items() if header != field})
    fields = {
        name.casefold()
        for listed in ledger.field_lists(asset)
        for name in json.loads(listed or "[]")
    }
    return {header: field for header, field in out.items() if header.casefold() not in fields}


def load(
    ledger: Ledger,
    staging: Staging,
    session: Callable[[], AbstractContextManager[WarehouseSession]],
    *,
    asset: str,
    partition_key: str,
    table: str,
    run_id: str,
    run_status: RunStatus | None = None,
    lease_seconds: float = 3600.0,
    lineage: dict[str, object] | None = None,
    timestamp_field: str | None = None,
    inspect: Callable[[WarehouseSession, LoadedPartition], T] | None = None,
    on_event: OnEvent = ignore,
    now: Callable[[], datetime] = _utc_now,
    id_column: str = "id",
    client: Callable[[], AbstractContextManager[FileClient]] | None = None,
    quota_budget_bytes: int | None = None,
    shared_column: str | None = None,
) -> LoadOutcome[T]:
    """Load the staged export of `partition_key` (ledger slot `asset`) into `table`, replacing
    the partition's rows in one transaction. `session()` opens the warehouse only around the
    SQL; `inspect(session, loaded)` runs in it after the load (checks that need the table).
    The partition is claimed for `run_id` and released at the end. A staged file that is not
    on this machine (its export ran on another one) is downloaded again by export id through
    `client()`, opened only then; without `client` the load fails asking for the export step.
    `id_column` is the key the stats count (duplicates, NULLs): `id`, or e.g. `marketoGUID`.
    With `quota_budget_bytes`, the table QUOTA_USAGE_TABLE (bytes exported per day and asset)
    is refreshed too. `shared_column`: the partition's export may be one file for several
    partitions (batch.py); only the rows whose `shared_column` is the partition key are loaded,
    checked against their count in the file, and the file is deleted once every partition of
    it is loaded."""
    clean_staging_area(staging, ledger, on_event)
    claim_partition(
        ledger,
        asset,
        partition_key,
        run_id,
        lease_seconds=lease_seconds,
        run_status=run_status,
    )
    try:
        return _load(
            ledger,
            _staged_here(
                ledger, staging, asset, partition_key, client, on_event, bool(shared_column)
            ),
            session,
            asset=asset,
            partition_key=partition_key,
            table=table,
            lineage=lineage,
            timestamp_field=timestamp_field,
            inspect=inspect,
            on_event=on_event,
            now=now,
            id_column=id_column,
            quota_budget_bytes=quota_budget_bytes,
            shared_column=shared_column,
        )
    finally:
        ledger.release(asset, partition_key, run_id)


def _staged_here(
    ledger: Ledger,
    staging: Staging,
    asset: str,
    partition_key: str,
    client: Callable[[], AbstractContextManager[FileClient]] | None,
    on_event: OnEvent,
    shared: bool = False,
) -> list[LedgerEntry]:
    """The partition's staged files on this machine, downloaded again where missing (through
    one client, opened at the first file missing here) when `client` is given."""
    if client is None:
        return staged_exports(ledger, asset, partition_key, shared=shared)
    with ExitStack() as stack:
        opened: list[FileClient] = []

        def fetch(entry: LedgerEntry) -> LedgerEntry:
            if not opened:
                opened.append(stack.enter_context(client()))
            return fetch_again(opened[0], ledger, staging, entry, on_event)

        return staged_exports(ledger, asset, partition_key, fetch, shared=shared)


def _load(
    ledger: Ledger,
    entries: list[LedgerEntry],
    session: Callable[[], AbstractContextManager[WarehouseSession]],
    *,
    asset: str,
    partition_key: str,
    table: str,
    lineage: dict[str, object] | None,
    timestamp_field: str | None,
    inspect: Callable[[WarehouseSession, LoadedPartition], T] | None,
    on_event: OnEvent,
    now: Callable[[], datetime],
    id_column: str,
    quota_budget_bytes: int | None,
    shared_column: str | None = None,
) -> LoadOutcome[T]:
    entry = entries[0]
    record: dict[str, Any] = entry.request
    headers = record["payload"].get("columnHeaderNames") or {}
    columns = columns_for([(name, type_) for name, type_ in record["field_types"]], headers)
    # Table columns are the REST field names, whatever the file's headers (Column).
    id_col, ts_col = id_column, timestamp_field
    file_format = record["payload"].get("format", "CSV")
    rows_where = (shared_column, partition_key) if shared_column else None
    records = sum(e.records or 0 for e in entries)
    if shared_column:  # this partition's rows of the shared file, counted apart from the load
        header = [c.name for c in columns]
        column = next(c.name for c in columns if c.field == shared_column)
        records = sum(
            count_where(Path(e.staged_file or ""), file_format, header, column, partition_key)
            for e in entries
        )

    with session() as wh:
        try:
            for old, new in wh.rename_columns(table, header_columns(ledger, asset)):
                on_event(
                    Notice(
                        "column_renamed",
                        f"Renamed column {old!r} of {table} to {new!r} (its field)",
                        "warning",
                    )
                )
            result = wh.load_partition(
                table=table,
                files=[(e.staged_file or "", {"_export_id": e.export_id}) for e in entries],
                file_format=file_format,
                columns=columns,
                partition_key=partition_key,
                lineage={"_loaded_at": now(), **(lineage or {})},
                rows_where=rows_where,
            )
        except (SchemaConflictError, HeaderMismatchError, CastError) as exc:
            # The same file fails the same way: retrying would only wait. The table is
            # unchanged and the staged file is kept for the load once the cause is fixed.
            export_ids = ", ".join(e.export_id for e in entries)
            raise ExportFailed(
                f"{exc} The table is unchanged. The staged export {export_ids} is "
                "kept: once this is fixed, re-run the load step of this partition (no new "
                "export is needed).",
                retryable=False,
            ) from exc
        stats = wh.partition_stats(table, partition_key, id_column=id_col, timestamp_column=ts_col)
        loaded = LoadedPartition(entry, result, stats, id_col, ts_col, tuple(entries))
        inspected = inspect(wh, loaded) if inspect else None
        if quota_budget_bytes is not None:
            usage = usage_rows(ledger, quota_budget_bytes)
            wh.replace_table(
                table=QUOTA_USAGE_TABLE, columns=QUOTA_USAGE_COLUMNS, rows=usage, loaded_at=now()
            )

    deleted = 0
    for loaded_entry in entries:
        if shared_column:
            if not ledger.member_loaded(loaded_entry.export_id, partition_key, result.rows):
                on_event(
                    Notice(
                        "staged_kept",
                        "Kept the staged export file: other partitions load their rows from it",
                        export_id=loaded_entry.export_id,
                    )
                )
                continue
        else:
            ledger.update(loaded_entry.export_id, status="loaded", loaded_at=now())
        if discard_staged(loaded_entry.staged_file):
            deleted += 1
            on_event(
                Notice(
                    "staged_deleted",
                    "Deleted the staged export file after loading",
                    export_id=loaded_entry.export_id,
                )
            )
    return LoadOutcome(loaded, records, inspected, deleted)
