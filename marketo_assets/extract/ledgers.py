"""Which export ledger a deployment uses: SQLite on one machine, PostgreSQL across machines."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .ledger import ExportLedger
from .ledger_base import Ledger
from .ledger_postgres import DEFAULT_SCHEMA, PostgresLedger

__all__ = ["LedgerKind", "open_ledger"]

LedgerKind = Literal["sqlite", "postgres"]


def open_ledger(
    kind: LedgerKind,
    path: str | Path,
    *,
    setting: str = "MARKETO_LEDGER_PATH",
    schema: str = DEFAULT_SCHEMA,
) -> Ledger:
    """`sqlite`: the file `path` (`setting` names it in errors); `postgres`: `schema` of the
    database the PG* variables of this process name (`path` is not used)."""
    if kind == "postgres":
        return PostgresLedger(schema=schema)
    return ExportLedger(path, setting=setting)
