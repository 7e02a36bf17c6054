"""The warehouse as the export steps see it: before an export creates a Marketo job, fail if
the load could not write its rows (instead of after the export spent quota); a load whose
DuckDB file is held fails within seconds, naming the holder. Neither is retried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from marketo_assets.settings import DATA_DIR
from marketo_assets.warehouse import (
    WarehouseLockedError,
    WarehouseUnavailableError,
    check_warehouse,
    connect_for_write,
)

from .errors import ExportFailed
from .events import Notice, OnEvent
from .ledger_base import Ledger

__all__ = ["check_before_export", "open_for_load", "unavailable"]

NOT_EXPORTED = "No Marketo export job was created."
NOT_LOADED = (
    "Nothing was loaded; the staged export is kept: once fixed, re-run the load step of this "
    "partition (no new export is needed)."
)


def unavailable(exc: WarehouseUnavailableError, outcome: str) -> ExportFailed:
    metadata: dict[str, int | str] = {}
    if isinstance(exc, WarehouseLockedError):
        metadata = {"lock_holder_pid": exc.holder.pid, "lock_holder": exc.holder.name}
    return ExportFailed(f"{exc} {outcome}", retryable=False, metadata=metadata)


def check_before_export(
    kind: str, database: str, config: dict, ledger: Callable[[], Ledger], on_event: OnEvent
) -> None:
    """A missing folder is created only for the default DUCKDB_PATH (the project's data/). A
    DuckDB file held by a step of another run (its claim in the ledger) is not an error."""
    try:
        holder = check_warehouse(
            kind,
            database,
            config,
            create_folder=Path(database).parent.resolve() == DATA_DIR,
            is_ours=lambda h: h.pid in ledger().working_pids(),
        )
    except WarehouseUnavailableError as exc:
        raise unavailable(exc, NOT_EXPORTED) from exc
    if holder is not None:
        on_event(
            Notice(
                "warehouse_busy",
                f"The DuckDB file is in use by another run's step ({holder.name}, PID "
                f"{holder.pid}): the load step takes its turn in the `duckdb` pool.",
            )
        )


def open_for_load(database: str, config: dict) -> duckdb.DuckDBPyConnection:
    """The DuckDB file opened for writing within seconds (see warehouse.duckdb_file)."""
    try:
        return connect_for_write(database, config)
    except WarehouseUnavailableError as exc:
        raise unavailable(exc, NOT_LOADED) from exc
