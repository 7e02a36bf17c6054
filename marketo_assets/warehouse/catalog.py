"""The list catalog table (`marketo.lists`): a full replace in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from .loader import existing_columns, rollback
from .sql import qualified, qualified_schema, quote_ident, scalar, split_table

LIST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("list_id", "BIGINT NOT NULL"),
    ("list_type", "VARCHAR NOT NULL"),
    ("partition_key", "VARCHAR NOT NULL"),
    ("name", "VARCHAR"),
    ("description", "VARCHAR"),
    ("program_name", "VARCHAR"),
    ("workspace_name", "VARCHAR"),
    ("created_at", "TIMESTAMPTZ"),
    ("updated_at", "TIMESTAMPTZ"),
    ("_loaded_at", "TIMESTAMPTZ"),
)


@dataclass(frozen=True)
class CatalogResult:
    rows: int
    pruned_member_rows: dict[str, int]
    columns: list[tuple[str, str]]


def replace_list_catalog(
    conn: duckdb.DuckDBPyConnection,
    *,
    table: str,
    rows: Sequence[Mapping[str, object]],
    loaded_at: dt.datetime,
    prune: Mapping[str, tuple[str, Sequence[int]]] | None = None,
) -> CatalogResult:
    """Replace every row of `table` with `rows` (dicts keyed by LIST_COLUMNS names, without
    `_loaded_at`) in one transaction.

    `prune` maps a membership table ("schema.table") to (list_type, ids of lists that still
    exist): rows of other lists (deleted in Marketo) are removed in the same transaction.
    Tables that do not exist yet are skipped.
    """
    schema, name = split_table(table)
    target = qualified(table, conn)
    names = [c for c, _ in LIST_COLUMNS]
    values = [[row.get(c) for c in names[:-1]] + [loaded_at] for row in rows]
    pruned: dict[str, int] = {}
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {qualified_schema(schema, conn)}")
        defs = ", ".join(f"{quote_ident(c)} {t}" for c, t in LIST_COLUMNS)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {target} ({defs})")
        conn.execute(f"DELETE FROM {target}")
        if values:
            marks = ", ".join(f"${i + 1}" for i in range(len(names)))
            cols = ", ".join(quote_ident(c) for c in names)
            conn.executemany(f"INSERT INTO {target} ({cols}) VALUES ({marks})", values)
        for member_table, (_list_type, keep) in (prune or {}).items():
            m_schema, m_name = split_table(member_table)
            if "_list_id" not in existing_columns(conn, m_schema, m_name):
                continue
            m_target = qualified(member_table, conn)
            keep_ids = sorted({int(i) for i in keep})
            count = scalar(
                conn.execute(
                    f"SELECT count(*) FROM {m_target} WHERE NOT list_contains($1, _list_id)",
                    [keep_ids],
                )
            )
            if count:
                conn.execute(
                    f"DELETE FROM {m_target} WHERE NOT list_contains($1, _list_id)", [keep_ids]
                )
            pruned[member_table] = int(count)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    columns = [(n, t) for n, t in existing_columns(conn, schema, name).values()]
    return CatalogResult(len(values), pruned, columns)


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Mapping[str, object]],
) -> int:
    """Replace every row of a small summary table (created with `columns`, (name, DuckDB type)
    pairs) with `rows`, in one transaction."""
    schema, _ = split_table(table)
    target = qualified(table, conn)
    names = [c for c, _ in columns]
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {qualified_schema(schema, conn)}")
        defs = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {target} ({defs})")
        conn.execute(f"DELETE FROM {target}")
        if rows:
            marks = ", ".join(f"${i + 1}" for i in range(len(names)))
            cols = ", ".join(quote_ident(c) for c in names)
            conn.executemany(
                f"INSERT INTO {target} ({cols}) VALUES ({marks})",
                [[row.get(c) for c in names] for row in rows],
            )
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return len(rows)
