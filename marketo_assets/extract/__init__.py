"""The export engine (no Dagster): a Marketo export job's life from request to loaded table.

`export` creates or reattaches a job, checks the quota, waits, downloads and verifies the file
and stages it; `load` loads a partition's staged file(s) into a warehouse session (downloading
them again by export id when the export ran on another machine). Both record every step in the
export ledger (which also holds the partition claims: SQLite, or PostgreSQL across machines),
report progress through a plain `on_event` callback and fail with `ExportFailed`.
"""

from .batch import MAX_BATCH, Batch, batch_for, open_members, plan_batches
from .capabilities import FilterCapabilities, FilterStatus, capability_for
from .claims import RunStatus, claim_partition
from .errors import ExportFailed
from .events import EventLines, Notice, OnEvent
from .export import ExportClient, ExportLimits, ExportOutcome, clean_staging_area, export
from .ledger import ExportLedger
from .ledger_base import Claim, Ledger, LedgerEntry
from .ledger_postgres import PostgresLedger
from .ledgers import LedgerKind, open_ledger
from .load import LoadedPartition, LoadOutcome, header_columns, load, staged_exports
from .spec import (
    NOT_EXPORTABLE,
    RESERVED_COLUMNS,
    ExportPart,
    ExportSpec,
    check_columns,
    safe_name,
    select_fields,
)
from .staging import Staging, clean_staging, private_dir

__all__ = [
    "MAX_BATCH",
    "NOT_EXPORTABLE",
    "RESERVED_COLUMNS",
    "Batch",
    "Claim",
    "EventLines",
    "ExportClient",
    "ExportFailed",
    "ExportLedger",
    "ExportLimits",
    "ExportOutcome",
    "ExportPart",
    "ExportSpec",
    "FilterCapabilities",
    "FilterStatus",
    "Ledger",
    "LedgerEntry",
    "LedgerKind",
    "LoadOutcome",
    "LoadedPartition",
    "Notice",
    "OnEvent",
    "PostgresLedger",
    "RunStatus",
    "Staging",
    "batch_for",
    "capability_for",
    "check_columns",
    "claim_partition",
    "clean_staging",
    "clean_staging_area",
    "export",
    "header_columns",
    "load",
    "open_ledger",
    "open_members",
    "plan_batches",
    "private_dir",
    "safe_name",
    "select_fields",
    "staged_exports",
]
