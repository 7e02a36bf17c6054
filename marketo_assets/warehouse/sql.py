"""SQL identifier helpers."""

from __future__ import annotations

from typing import Any


def scalar(cursor: Any) -> Any:
    """The first column of the one row a query returns (count(*), a setting, ...)."""
    row = cursor.fetchone()
    if row is None:
        raise ValueError("the query returned no row")
    return row[0]


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes (embedded double quotes doubled)."""
    if "\x00" in name:
        raise ValueError(f"identifier contains a NUL byte: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def split_table(table: str) -> tuple[str, str]:
    """'schema.table' -> (schema, table); a bare name lives in schema 'main'."""
    schema, dot, name = table.partition(".")
    if not dot:
        schema, name = "main", table
    if not schema or not name:
        raise ValueError(f"table must be 'schema.table', got {table!r}")
    return schema, name


def qualified(table: str, conn) -> str:
    """catalog.schema.table, fully quoted.

    The catalog is spelled out because DuckDB names it after the file: in `marketo.duckdb` a
    schema `marketo` makes `marketo.leads` ambiguous ("catalog or schema?").
    """
    schema, name = split_table(table)
    return f"{quote_ident(current_catalog(conn))}.{quote_ident(schema)}.{quote_ident(name)}"


def qualified_schema(schema: str, conn) -> str:
    return f"{quote_ident(current_catalog(conn))}.{quote_ident(schema)}"


def current_catalog(conn) -> str:
    return conn.execute("SELECT current_database()").fetchone()[0]
