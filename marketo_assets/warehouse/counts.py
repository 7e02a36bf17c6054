"""Row counts of built tables (the dbt models), read after `dbt build` has exited."""

from collections.abc import Iterable
from pathlib import Path

import duckdb

from .queries import row_counts


class CountError(Exception):
    """The tables could not be counted (e.g. someone holds the DuckDB file open for writing)."""


def count_rows(database: Path | None, tables: Iterable[str]) -> dict[str, int]:
    """Rows of each `schema.table`: in the DuckDB file `database` (one read-only connection),
    or with None in the PostgreSQL warehouse (PG* variables)."""
    wanted = sorted(set(tables))
    if not wanted:
        return {}
    if database is None:
        return _count_postgres(wanted)
    try:
        with duckdb.connect(str(database), read_only=True) as conn:
            return row_counts(conn, wanted)
    except duckdb.Error as exc:
        raise CountError(str(exc)) from exc


def _count_postgres(tables: list[str]) -> dict[str, int]:
    import psycopg2

    from .loader import LoadError
    from .postgres import PostgresWarehouse

    try:
        with PostgresWarehouse().session() as session, session.conn.cursor() as cur:
            return row_counts(cur, tables)
    except (psycopg2.Error, LoadError) as exc:
        raise CountError(str(exc)) from exc
