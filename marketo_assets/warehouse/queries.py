"""Read-side helpers for the Dagster layer (metadata and asset checks)."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class SharedIds:
    """A partition's ids that other partitions of the table hold too."""

    ids: int  # distinct ids of the partition found in another partition
    partitions: int  # other partitions holding any of them
    examples: list[tuple[str, int]]  # (other partition, its rows with such ids), most first


def ids_in_other_partitions(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    partition_key: str,
    id_column: str = "id",
    limit: int = 5,
) -> SharedIds:
    """The ids of partition `partition_key` that other partitions of `table` hold too (NULL
    ids match nothing; ids twice within the partition are partition_stats'). A probe for this
    partition's ids, not an aggregate of the table: DuckDB skips the row groups whose key or id
    range misses them (PostgreSQL, without indexes, scans the table twice but aggregates none
    of it). `examples`: up to `limit` (at least 1) of those other partitions."""
    sql = ids_in_other_partitions_sql(qualified(table, conn), id_column, "$1", limit)
    return shared_ids_from_rows(conn.execute(sql, [partition_key]).fetchall())


def ids_in_other_partitions_sql(target: str, id_column: str, param: str, limit: int) -> str:
    """The one query behind ids_in_other_partitions (DuckDB and PostgreSQL): `param` is the
    placeholder of the partition key ($1, or %s given twice), one row per other partition."""
    key, ident = quote_ident("_partition_key"), quote_ident(id_column)
    return (
        f"WITH hits AS (SELECT {key} AS k, {ident} AS i FROM {target} WHERE {key} <> {param} "
        f"AND {ident} IN (SELECT {ident} FROM {target} WHERE {key} = {param})) "
        "SELECT k, count(*) AS n, count(*) OVER () AS parts, "
        "(SELECT count(DISTINCT i) FROM hits) AS ids "
        f"FROM hits GROUP BY k ORDER BY n DESC, k LIMIT {max(int(limit), 1)}"
    )


def shared_ids_from_rows(rows: list) -> SharedIds:
    if not rows:
        return SharedIds(0, 0, [])
    return SharedIds(int(rows[0][3]), int(rows[0][2]), [(str(k), int(n)) for k, n, *_ in rows])


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
