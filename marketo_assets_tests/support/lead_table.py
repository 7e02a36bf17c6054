"""Load a lead partition into a real warehouse and evaluate its `lead_ids_unique_in_table`
check, as the load step does (unit/test_lead_table_check.py; postgres/ on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from marketo_assets.extract.checks import CHECK_TABLE_UNIQUE, lead_checks
from marketo_assets.extract.load import LoadedPartition
from marketo_assets.warehouse import Warehouse, columns_for

TABLE = "marketo.leads"
COLUMNS = columns_for([("id", "integer"), ("createdAt", "datetime")], {})
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def load_and_check(warehouse: Warehouse, tmp_path: Path, key: str, ids: list[int]) -> Any:
    """Load partition `key` with these lead ids and return its CHECK_TABLE_UNIQUE result."""
    path = tmp_path / f"{key}.csv"
    path.write_text("id,createdAt\n" + "".join(f"{i},2025-03-01T00:00:00Z\n" for i in ids))
    with warehouse.session() as wh:
        result = wh.load_partition(
            table=TABLE, file_path=path, file_format="CSV", columns=COLUMNS,
            partition_key=key, lineage={"export_id": key},
        )  # fmt: skip
        stats = wh.partition_stats(TABLE, key)
        loaded = LoadedPartition(None, result, stats, "id", "createdAt")  # type: ignore[arg-type]
        checks, _ = lead_checks(wh, loaded, TABLE, key, START, END)
    return next(c for c in checks if c.name == CHECK_TABLE_UNIQUE)
