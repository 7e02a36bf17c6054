"""DuckDB loading layer: typed, partition-replacing loads of Marketo export files."""

from .catalog import LIST_COLUMNS, CatalogResult, replace_list_catalog
from .loader import (
    CastError,
    HeaderMismatchError,
    LoadError,
    LoadResult,
    SchemaConflictError,
    load_partition,
)
from .queries import (
    duplicate_ids,
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
    "CastError",
    "CatalogResult",
    "Column",
    "HeaderMismatchError",
    "LoadError",
    "LoadResult",
    "SchemaConflictError",
    "columns_for",
    "duckdb_type",
    "duplicate_ids",
    "list_member_counts",
    "load_partition",
    "partition_stats",
    "quote_ident",
    "replace_list_catalog",
    "rows_outside_window",
    "table_schema",
]
