"""The project's files on this machine: the export ledger, the staging folder and the filter
capabilities file, from the Marketo resource's paths. A path that cannot work fails the step at
once (`ExportFailed`, not retryable), naming the setting and the fix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .capabilities import FilterCapabilities
from .errors import ExportFailed
from .ledger_base import Ledger
from .ledgers import LedgerKind, open_ledger
from .local_paths import LocalPathError
from .staging import Staging, staging_root

__all__ = ["LEDGER_SETTING", "STAGING_SETTING", "LocalState", "capabilities_at"]

LEDGER_SETTING = "MARKETO_LEDGER_PATH (ledger_path)"
STAGING_SETTING = "MARKETO_STAGING_DIR (staging_dir)"


@dataclass(frozen=True)
class LocalState:
    ledger_path: str
    staging_dir: str
    staging_max_age_hours: float
    capabilities_path: str = ""  # empty: filter_capabilities.json next to the ledger
    ledger_store: LedgerKind = "sqlite"  # or "postgres": ledger_schema of the PG* database
    ledger_schema: str = "marketo_ledger"

    def ledger(self) -> Ledger:
        """The SQLite file ledger_path, or the PostgreSQL schema ledger_schema."""
        with _not_transient():
            return open_ledger(
                self.ledger_store,
                self.ledger_path,
                setting=LEDGER_SETTING,
                schema=self.ledger_schema,
            )

    def staging(self) -> Staging:
        """The project's own folder inside staging_dir (see staging.staging_root)."""
        with _not_transient():
            root = staging_root(Path(self.staging_dir), STAGING_SETTING)
        return Staging(root, self.staging_max_age_hours)

    def capabilities(self) -> FilterCapabilities:
        return capabilities_at(self.ledger_path, self.capabilities_path)


def capabilities_at(ledger_path: str | Path, path: str | Path = "") -> FilterCapabilities:
    """The capabilities file `path`, by default filter_capabilities.json next to the ledger."""
    return FilterCapabilities(path or Path(ledger_path).with_name("filter_capabilities.json"))


@contextmanager
def _not_transient() -> Iterator[None]:
    try:
        yield
    except LocalPathError as exc:
        raise ExportFailed(str(exc), retryable=False) from exc
