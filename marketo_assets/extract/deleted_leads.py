"""Deleted leads of one window into the warehouse: Marketo's REST paging (no bulk job, no
quota), written to a private staged CSV and loaded by the warehouse loader as one partition
(one transaction: the partition's previous rows are replaced, or kept when the load fails)."""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from marketo_assets.marketo import DeletedLead, errors
from marketo_assets.marketo.exports import format_marketo_datetime
from marketo_assets.warehouse import (
    LoadError,
    LoadResult,
    WarehouseSession,
    WarehouseUnavailableError,
    columns_for,
)

from .checks import CHECK_ROWS, Check
from .errors import ExportFailed
from .local_paths import LocalPathError
from .staging import private_dir, staging_root

__all__ = [
    "CHECK_DAY",
    "CHECK_UNIQUE",
    "DELETED_LEAD_FIELDS",
    "DeletedLeadsClient",
    "DeletedLeadsLoad",
    "load_deleted_leads",
]

# (column, Marketo data type): BIGINT, BIGINT, TIMESTAMPTZ in the warehouse.
PREFIX = ".deleted-leads-"  # the staged files' names
DELETED_LEAD_FIELDS = [("id", "integer"), ("leadId", "integer"), ("deletedAt", "datetime")]
CHECK_UNIQUE = "deleted_lead_ids_unique"
CHECK_DAY = "deleted_at_inside_day"


class DeletedLeadsClient(Protocol):
    def iter_deleted_leads(self, start: datetime, end: datetime) -> Iterable[DeletedLead]: ...


@dataclass(frozen=True)
class DeletedLeadsLoad:
    result: LoadResult
    fetched: int  # deletions Marketo returned for the window
    duplicate_lead_ids: int  # rows beyond the first per leadId (and rows without one)
    outside_window: int  # rows whose deletedAt is not in [start, end)

    def checks(self) -> list[Check]:
        """Rows = deletions read, no leadId twice, every deletedAt inside the window."""
        rows = self.result.rows
        return [
            Check(
                CHECK_ROWS,
                rows == self.fetched,
                {"loaded_rows": rows, "marketo_deletions": self.fetched},
            ),
            Check(
                CHECK_UNIQUE,
                self.duplicate_lead_ids == 0,
                {"duplicate_lead_ids": self.duplicate_lead_ids},
            ),
            Check(CHECK_DAY, self.outside_window == 0, {"rows_outside_day": self.outside_window}),
        ]


def write_csv(leads: Iterable[DeletedLead], folder: Path) -> tuple[Path, int]:
    """The deletions as a 0600 CSV file in `folder` (mkstemp), and how many. Files a killed
    run left behind (older than an hour) are deleted first."""
    for old in folder.glob(f"{PREFIX}*.csv"):
        with suppress(OSError):
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
    fd, name = tempfile.mkstemp(prefix=PREFIX, suffix=".csv", dir=folder)
    count = 0
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([name for name, _ in DELETED_LEAD_FIELDS])
        for lead in leads:
            writer.writerow([lead.id, lead.lead_id, format_marketo_datetime(lead.deleted_at)])
            count += 1
    return Path(name), count


def load_deleted_leads(
    client: DeletedLeadsClient,
    session_factory: Callable[[], AbstractContextManager[WarehouseSession]],
    staging_dir: Path,
    *,
    table: str,
    partition_key: str,
    start: datetime,
    end: datetime,
) -> DeletedLeadsLoad:
    """Replace `partition_key`'s rows of `table` with the leads deleted in [start, end), all
    read from Marketo before the warehouse is opened. They are staged in the project's private
    folder `deleted_leads/` of `staging_dir` (MARKETO_STAGING_DIR) and always deleted after.
    Failures are ExportFailed, retryable only when a retry can help (transient errors)."""
    try:
        folder = private_dir(staging_root(Path(staging_dir)), "deleted_leads")
    except LocalPathError as exc:
        raise ExportFailed(str(exc), retryable=False) from exc
    try:
        path, fetched = write_csv(client.iter_deleted_leads(start, end), folder)
    except errors.TransientError as exc:
        raise ExportFailed(
            f"Reading deleted leads from Marketo failed: {exc}", retryable=True
        ) from exc
    except errors.MarketoError as exc:
        raise ExportFailed(
            f"Reading deleted leads from Marketo failed: {exc}", retryable=False
        ) from exc
    try:
        with session_factory() as wh:
            result = wh.load_partition(
                table=table,
                file_path=path,
                file_format="CSV",
                columns=columns_for(DELETED_LEAD_FIELDS, {}),
                partition_key=partition_key,
            )
            stats = wh.partition_stats(table, partition_key, "leadId", "deletedAt")
            last = end - timedelta(microseconds=1)
            outside = wh.rows_outside_window(table, partition_key, "deletedAt", start, last)
    except WarehouseUnavailableError as exc:
        raise ExportFailed(str(exc), retryable=True) from exc
    except LoadError as exc:
        raise ExportFailed(
            f"Loading deleted leads into {table} failed: {exc}", retryable=False
        ) from exc
    finally:
        path.unlink(missing_ok=True)
    duplicates = stats["duplicate_ids"] + stats["null_ids"]
    return DeletedLeadsLoad(result, fetched, duplicates, outside)
