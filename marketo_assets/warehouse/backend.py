"""The warehouse interface the loaders use, and how to pick one.

A `Warehouse` opens `WarehouseSession`s; a session does what the Dagster load steps and their
checks need, each with the same semantics on every backend:

- `load_partition`: replace one partition's rows with a Marketo export file (or several:
  `files`, a window exported as several jobs), typed from describe, in one transaction (a
  failed load leaves the previous rows untouched);
- `rename_columns`: give columns named after a file header back their field's name, in one
  transaction (tables loaded while headers still named columns);
- `replace_list_catalog`: replace the list catalog and prune members of deleted lists, in one
  transaction;
- `partition_stats`, `ids_in_other_partitions`, `rows_outside_window`, `table_schema`,
  `partition_keys`: the reads behind the asset checks and metadata.

`DuckDBWarehouse` (the default: one file, one writing process at a time) and
`PostgresWarehouse` (`postgres.py`: many concurrent writers, for deployments that outgrow one
machine). `warehouse_from_config` picks one from `MARKETO_WAREHOUSE`-style settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import duckdb

from . import catalog as _catalog
from . import loader as _loader
from . import queries as _queries
from .catalog import CatalogResult
from .duckdb_file import LockHolder, check_writable, connect_for_write
from .loader import LoadResult, PartFiles
from .queries import SharedIds
from .types import Column

WAREHOUSE_KINDS = ("duckdb", "postgres")


@runtime_checkable
class WarehouseSession(Protocol):
    """One connection to the warehouse. Tables are named "schema.table"."""

    kind: str

    def load_partition(
        self,
        *,
        table: str,
        file_path: str | Path | None = None,
        file_format: str,
        columns: list[Column],
        partition_key: str,
        lineage: dict[str, object] | None = None,
        files: PartFiles | None = None,
        rows_where: tuple[str, str] | None = None,
    ) -> LoadResult: ...

    def replace_list_catalog(
        self,
        *,
        table: str,
        rows: Sequence[Mapping[str, object]],
        loaded_at: dt.datetime,
        prune: Mapping[str, tuple[str, Sequence[int]]] | None = None,
    ) -> CatalogResult: ...

    def replace_table(
        self,
        *,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Mapping[str, object]],
        loaded_at: dt.datetime,
    ) -> CatalogResult: ...

    def partition_stats(
        self,
        table: str,
        partition_key: str,
        id_column: str = "id",
        timestamp_column: str | None = "createdAt",
    ) -> dict: ...

    def ids_in_other_partitions(
        self, table: str, partition_key: str, id_column: str = "id", limit: int = 5
    ) -> SharedIds: ...

    def rows_outside_window(
        self, table: str, partition_key: str, column: str, start: object, end: object
    ) -> int: ...

    def table_schema(self, table: str) -> list[tuple[str, str]]: ...

    def partition_keys(self, table: str) -> set[str]: ...

    def rename_columns(self, table: str, renames: dict[str, str]) -> list[tuple[str, str]]: ...


class Warehouse(Protocol):
    kind: str

    def session(self) -> AbstractContextManager[WarehouseSession]: ...

    def check(self) -> None:
        """Raise WarehouseUnavailableError if a load could not write (run before exporting)."""


class DuckDBSession:
    """The DuckDB implementation over an open connection (the module-level functions)."""

    kind = "duckdb"

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn

    def load_partition(self, **kwargs) -> LoadResult:
        return _loader.load_partition(self.conn, **kwargs)

    def replace_list_catalog(self, **kwargs) -> CatalogResult:
        return _catalog.replace_list_catalog(self.conn, **kwargs)

    def replace_table(self, **kwargs) -> CatalogResult:
        return _catalog.replace_table(self.conn, **kwargs)

    def partition_stats(self, table, partition_key, id_column="id", timestamp_column="createdAt"):
        return _queries.partition_stats(
            self.conn, table, partition_key, id_column=id_column, timestamp_column=timestamp_column
        )

    def ids_in_other_partitions(self, table, partition_key, id_column="id", limit=5):
        return _queries.ids_in_other_partitions(self.conn, table, partition_key, id_column, limit)

    def rows_outside_window(self, table, partition_key, column, start, end) -> int:
        return _queries.rows_outside_window(self.conn, table, partition_key, column, start, end)

    def table_schema(self, table) -> list[tuple[str, str]]:
        return _queries.table_schema(self.conn, table)

    def partition_keys(self, table) -> set[str]:
        return _queries.partition_keys(self.conn, table)

    def rename_columns(self, table, renames) -> list[tuple[str, str]]:
        return _loader.rename_columns(self.conn, table, renames)


class DuckDBWarehouse:
    """A DuckDB file. DuckDB allows one writing process per file: keep writers in one pool."""

    kind = "duckdb"

    def __init__(self, database: str | Path):
        self.database = str(database)

    @contextmanager
    def session(self) -> Iterator[DuckDBSession]:
        with connect_for_write(self.database) as conn:
            yield DuckDBSession(conn)

    def check(self, create_folder: bool = False) -> None:
        """Raise WarehouseUnavailableError if a load would fail (see duckdb_file)."""
        check_writable(self.database, create_folder=create_folder)

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.database!r})"


def check_warehouse(
    kind: str,
    database: str,
    config: dict | None = None,
    *,
    create_folder: bool = False,
    is_ours: Callable[[LockHolder], bool] | None = None,
) -> LockHolder | None:
    """Raise WarehouseUnavailableError if a load into the `kind` warehouse ("postgres": the PG*
    variables; else the DuckDB file `database`) could not write; see duckdb_file.check_writable
    for `create_folder`, `is_ours` and the holder returned."""
    if kind == "postgres":
        from .postgres import PostgresWarehouse

        PostgresWarehouse().check()
        return None
    if database == ":memory:" or database.startswith("md:"):
        return None
    return check_writable(database, config, create_folder=create_folder, is_ours=is_ours)


class WarehouseConfigError(ValueError):
    """The warehouse settings are inconsistent (raised before anything is exported)."""


def warehouse_from_config(
    kind: str, *, duckdb_path: str | Path | None = None, postgres_dsn: str = ""
) -> Warehouse:
    """`kind` "duckdb" (needs `duckdb_path`) or "postgres" (`postgres_dsn`: a libpq connection
    string or URI; empty = the standard PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE variables)."""
    kind = (kind or "duckdb").strip().lower()
    if kind == "duckdb":
        if not duckdb_path:
            raise WarehouseConfigError("the duckdb warehouse needs a file: set DUCKDB_PATH")
        return DuckDBWarehouse(duckdb_path)
    if kind == "postgres":
        from .postgres import PostgresWarehouse

        return PostgresWarehouse(postgres_dsn)
    raise WarehouseConfigError(
        f"unknown warehouse {kind!r} (MARKETO_WAREHOUSE): expected one of {list(WAREHOUSE_KINDS)}"
    )
