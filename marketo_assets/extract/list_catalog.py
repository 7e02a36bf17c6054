"""The catalog of Marketo lists (`marketo.lists`): every static and smart list, read from
Marketo first, then written in one transaction that also deletes the member rows of lists
Marketo no longer has. Smart lists that cannot be read (the API user lacks Asset API
permission) leave a catalog of static lists only, and the smart members alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marketo_assets.marketo import MarketoClient, errors
from marketo_assets.warehouse import CatalogResult, WarehouseSession

from .checks import Check
from .list_plan import list_partition_key

__all__ = ["CHECK_CATALOG_UNIQUE", "ListCatalog", "read_catalog"]

CHECK_CATALOG_UNIQUE = "list_ids_unique"


@dataclass(frozen=True)
class ListCatalog:
    statics: list[Any]
    smarts: list[Any]
    smart_error: str | None = None  # why smart lists could not be read

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "list_id": lst.id,
                "list_type": kind,
                "partition_key": list_partition_key(kind, lst.id),
                "name": lst.name,
                "description": lst.description,
                "program_name": getattr(lst, "program_name", None),  # smart lists have none
                "workspace_name": lst.workspace_name,
                "created_at": lst.created_at,
                "updated_at": lst.updated_at,
            }
            for kind, found in (("static", self.statics), ("smart", self.smarts))
            for lst in found
        ]

    def duplicates(self) -> int:
        keys = [(r["list_type"], r["list_id"]) for r in self.rows()]
        return len(keys) - len(set(keys))

    def checked(self, result: CatalogResult) -> tuple[list[Check], dict[str, Any]]:
        """One row per (list_type, list_id), and what was read and pruned."""
        metadata: dict[str, Any] = {
            "static_lists": len(self.statics),
            "smart_lists": len(self.smarts),
            "pruned_member_rows": result.pruned_member_rows,
        }
        if self.smart_error:
            metadata["smart_lists_error"] = self.smart_error
        duplicates = self.duplicates()
        return [Check(CHECK_CATALOG_UNIQUE, duplicates == 0, {"duplicates": duplicates})], metadata

    def save(
        self, wh: WarehouseSession, table: str, member_tables: Mapping[str, str]
    ) -> CatalogResult:
        """Replace `table` and delete member rows (`member_tables` by kind) of gone lists."""
        prune = {member_tables["static"]: ("static", [lst.id for lst in self.statics])}
        if self.smart_error is None:
            prune[member_tables["smart"]] = ("smart", [lst.id for lst in self.smarts])
        return wh.replace_list_catalog(
            table=table, rows=self.rows(), loaded_at=datetime.now(UTC), prune=prune
        )


def read_catalog(client: MarketoClient, warn: Callable[[str], None]) -> ListCatalog:
    statics = list(client.iter_static_lists())
    try:
        return ListCatalog(statics, list(client.iter_smart_lists()))
    except errors.MarketoAPIError as exc:
        if isinstance(exc, errors.QuotaExceededError | errors.DailyCallLimitError):
            raise
        warn(f"Cannot read smart lists ({exc}); cataloging static lists only")
        return ListCatalog(statics, [], str(exc))
