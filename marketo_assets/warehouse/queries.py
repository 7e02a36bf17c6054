"""Read-side helpers for the Dagster layer (metadata and asset checks)."""

from __future__ import annotations

from typing import Any

import duckdb

from .sql import qualified, quote_ident, scalar, split_table

# partition_stats counts distinct integer ids with a bitmap of one bit per id from the least to
# the greatest (at most this many: 2 MiB per thread), ~10x faster than count(DISTINCT) at 2M ids.
BITMAP_MAX_IDS = 1 << 24


def table_schema(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(column name, DuckDB type) of `table` in column order; [] if the table does not exist."""
    schema, name = split_table(table)
    return [
        (n, t)
        for n, t in conn.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = $1 "
            "AND table_name = $2 ORDER BY column_index",
            [schema, name],
        ).fetchall()
    ]


def duplicate_ids(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    id_column: str = "id",
    group_by: str | None = None,
) -> int:
    """Number of rows beyond the first for each `id_column` value (0 = ids unique), within each
    `group_by` value if given (e.g. "_partition_key"), across the whole table otherwise."""
    keys = quote_ident(id_column)
    if group_by:
        keys = f"{quote_ident(group_by)}, {keys}"
    sql = (
        f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {qualified(table, conn)} "
        f"WHERE {quote_ident(id_column)} IS NOT NULL GROUP BY {keys} HAVING count(*) > 1)"
    )
    return int(scalar(conn.execute(sql)))


def partition_stats(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    partition_key: str,
    id_column: str = "id",
    timestamp_column: str | None = "createdAt",
) -> dict:
    """rows, distinct_ids, duplicate_ids (rows - distinct non-null ids - null ids), null_ids,
    and min_ / max_ / null_<timestamp_column> for one partition's rows."""
    target, ident = qualified(table, conn), quote_ident(id_column)
    key = quote_ident("_partition_key")
    sql = f"SELECT min({ident}), max({ident}) FROM {target} WHERE {key} = $1"
    low, high = conn.execute(sql, [partition_key]).fetchone() or (None, None)
    distinct = None  # integer ids in a narrow range: a bitmap instead of a hash of every id
    if type(low) is int and type(high) is int and high - low < BITMAP_MAX_IDS:
        distinct = f"coalesce(bit_count(bitstring_agg({ident}, {low}, {high})), 0)"
    sql = partition_stats_sql(target, id_column, timestamp_column, "$1", distinct)
    return stats_from_row(conn.execute(sql, [partition_key]).fetchone(), timestamp_column)


def partition_stats_sql(
    target: str,
    id_column: str,
    timestamp_column: str | None,
    param: str,
    distinct: str | None = None,
) -> str:
    """The one query behind partition_stats (DuckDB and PostgreSQL): `param` is the
    placeholder of the partition key ($1 / %s); `distinct` counts the distinct ids
    (default count(DISTINCT id))."""
    ident = quote_ident(id_column)
    cols = ["count(*)", distinct or f"count(DISTINCT {ident})", f"count({ident})"]
    if timestamp_column:
        ts = quote_ident(timestamp_column)
        cols += [f"min({ts})", f"max({ts})", f"count({ts})"]
    return f"SELECT {', '.join(cols)} FROM {target} WHERE {quote_ident('_partition_key')} = {param}"


def stats_from_row(row, timestamp_column: str | None) -> dict:
    stats = {
        "rows": int(row[0]),
        "distinct_ids": int(row[1]),
        "duplicate_ids": int(row[2] - row[1]),
        "null_ids": int(row[0] - row[2]),
    }
    if timestamp_column:
        stats[f"min_{timestamp_column}"] = row[3]
        stats[f"max_{timestamp_column}"] = row[4]
        stats[f"null_{timestamp_column}"] = int(row[0] - row[5])
    return stats


def partition_keys(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The distinct `_partition_key` values of `table` (empty if the table does not exist)."""
    if not table_schema(conn, table):
        return set()
    sql = f"SELECT DISTINCT {quote_ident('_partition_key')} FROM {qualified(table, conn)}"
    return {row[0] for row in conn.execute(sql).fetchall()}


def rows_outside_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    partition_key: str,
    column: str,
    start: object,
    end: object,
) -> int:
    """Rows of one partition whose `column` is NULL or outside [start, end] (informational:
    Marketo's updatedAt filter matches the last change to any field, not the visible value)."""
    col = quote_ident(column)
    return int(
        scalar(
            conn.execute(
                f"SELECT count(*) FROM {qualified(table, conn)} "
                f"WHERE {quote_ident('_partition_key')} = $1 "
                f"AND ({col} IS NULL OR {col} < $2 OR {col} > $3)",
                [partition_key, start, end],
            )
        )
    )


def list_member_counts(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(partition key, list name or "?", rows) of every list loaded into
    marketo.static_list_members / marketo.smart_list_members (names from marketo.lists)."""
    present = {name for name, _ in _marketo_tables(conn)}
    names: dict[str, str] = {}
    if "lists" in present:
        names = dict(
            conn.execute(
                f"SELECT partition_key, name FROM {qualified('marketo.lists', conn)}"
            ).fetchall()
        )
    out: list[tuple[str, str, int]] = []
    for kind in ("static", "smart"):
        table = f"{kind}_list_members"
        if table not in present:
            continue
        for key, count in conn.execute(
            f"SELECT _partition_key, count(*) FROM {qualified('marketo.' + table, conn)} "
            "GROUP BY 1 ORDER BY min(_list_id)"
        ).fetchall():
            out.append((key, names.get(key, "?"), int(count)))
    return out


def _marketo_tables(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT table_name, schema_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'marketo'"
    ).fetchall()


def row_counts(cursor: Any, tables: list[str]) -> dict[str, int]:
    """Rows of each table, through any DB-API cursor (a DuckDB connection, a psycopg2 cursor)."""
    counts: dict[str, int] = {}
    for table in tables:
        cursor.execute(f"SELECT count(*) FROM {table}")
        counts[table] = int(scalar(cursor))
    return counts
