"""Warehouse loading layer: typed, partition-replacing loads of Marketo export files into
DuckDB (default) or PostgreSQL (`postgres.PostgresWarehouse`), behind `backend.Warehouse`."""

from .backend import (
    WAREHOUSE_KINDS,
    DuckDBSession,
    DuckDBWarehouse,
    Warehouse,
    WarehouseConfigError,
    WarehouseSession,
    check_warehouse,
    warehouse_from_config,
)
from .catalog import LIST_COLUMNS, CatalogResult, replace_list_catalog
from .duckdb_file import LockHolder, check_writable, connect_for_write
from .files import count_where
from .loader import (
    CastError,
    HeaderMismatchError,
    LoadError,
    LoadResult,
    SchemaConflictError,
    WarehouseLockedError,
    WarehouseUnavailableError,
    load_partition,
)
from .queries import (
    SharedIds,
    ids_in_other_partitions,
    list_member_counts,
    partition_stats,
    rows_outside_window,
    table_schema,
)
from .sql import quote_ident
from .types import DUCKDB_TYPES, Column, columns_for, duckdb_type

__all__ = [
    "DUCKDB_TYPES",
    "LIST_COLUMNS",
    "WAREHOUSE_KINDS",
    "CastError",
    "CatalogResult",
    "Column",
    "DuckDBSession",
    "DuckDBWarehouse",
    "HeaderMismatchError",
    "LoadError",
    "LoadResult",
    "LockHolder",
    "SchemaConflictError",
    "SharedIds",
    "Warehouse",
    "WarehouseConfigError",
    "WarehouseLockedError",
    "WarehouseSession",
    "WarehouseUnavailableError",
    "check_warehouse",
    "check_writable",
    "columns_for",
    "connect_for_write",
    "count_where",
    "duckdb_type",
    "ids_in_other_partitions",
    "list_member_counts",
    "load_partition",
    "partition_stats",
    "quote_ident",
    "replace_list_catalog",
    "rows_outside_window",
    "table_schema",
    "warehouse_from_config",
]
