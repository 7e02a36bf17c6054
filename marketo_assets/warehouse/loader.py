"""Load one partition of a Marketo export file into a DuckDB table, in one transaction.

Reading: every data column is read as VARCHAR by DuckDB's CSV reader (explicit `columns=`,
no sniffing, strict mode so a row with a wrong number of fields fails instead of being cut),
then cast to its target type inside the INSERT ... SELECT: one pass over the file.

NUL bytes: DuckDB 2.0.1 keeps NUL bytes inside values, but they are not wanted downstream
(PostgreSQL text cannot hold them) and Marketo clients strip them (tap-marketo 2.4.2,
airbyte 1.2.3). A chunked scan (memchr speed) looks for them first; only if the file has
some, a streaming pre-pass writes a NUL-free copy into the file's own (private) directory
and that copy is loaded. So NUL bytes are always removed, never kept.
CR / LF inside quoted values are kept as they are (RFC-4180 quoting; DuckDB handles them).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from .files import delimiter_for, has_nul, read_header, strip_nul
from .sql import qualified, quote_ident, split_table
from .types import Column

BASE_LINEAGE = (("_partition_key", "VARCHAR NOT NULL"), ("_export_id", "VARCHAR"))
LOADED_AT = "_loaded_at"
EXAMPLE_CHARS = 80
CAST_MARK = "cannot load"
INTEGER_TYPES = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"}


class LoadError(Exception):
    """The file could not be loaded; the table is unchanged."""


class HeaderMismatchError(LoadError):
    """The file's header row is not the expected column list."""


class SchemaConflictError(LoadError):
    """A column exists in the table with another type."""


class CastError(LoadError):
    """A value does not convert to its column's type."""


@dataclass(frozen=True)
class LoadResult:
    rows: int
    table: str
    columns: list[tuple[str, str]]
    seconds: float


def lineage_type(value: object) -> str:
    """DuckDB type for an extra lineage value."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float | Decimal):
        return "DOUBLE"
    if isinstance(value, dt.datetime):
        return "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    return "VARCHAR"


def lineage_name(key: str) -> str:
    return key if key.startswith("_") else f"_{key}"


def canonical_type(conn: duckdb.DuckDBPyConnection, type_sql: str) -> str:
    """DuckDB's own spelling of a type (TIMESTAMPTZ -> TIMESTAMP WITH TIME ZONE, TEXT ->
    VARCHAR, ...); also rejects anything that is not a type."""
    if not type_sql or any(ch in type_sql for ch in ";\"'\x00-/"):
        raise ValueError(f"not a column type: {type_sql!r}")
    try:
        return conn.execute(f"SELECT typeof(CAST(NULL AS {type_sql}))").fetchone()[0]
    except duckdb.Error as exc:
        raise ValueError(f"not a DuckDB type: {type_sql!r}") from exc


def check_header(header: list[str] | None, columns: list[Column], path: Path) -> None:
    expected = [c.name for c in columns]
    if header is None or header == expected:
        return
    missing = [n for n in expected if n not in header]
    unexpected = [n for n in header if n not in expected]
    if missing or unexpected:
        detail = f"missing headers: {missing}; unexpected headers: {unexpected}"
    else:
        detail = f"same names in another order or repeated: file has {header}"
    raise HeaderMismatchError(
        f"header row of {path.name} does not match the expected columns: {detail} "
        f"(expected, in order: {expected})"
    )


def check_names(columns: list[Column], lineage_cols: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in [c.name for c in columns] + lineage_cols:
        if not name:
            raise ValueError("empty column name")
        key = name.lower()  # DuckDB identifiers are case-insensitive, even quoted
        if key in seen:
            raise ValueError(
                f"column names {seen[key]!r} and {name!r} collide "
                "(DuckDB column names are case-insensitive; lineage names start with '_')"
            )
        seen[key] = name


def cast_expr(source: str, type_canon: str, type_sql: str, message: str, params: list) -> str:
    """SQL turning VARCHAR `source` into `type_sql`. A value that does not convert raises an
    error: `message` (passed as a parameter) followed by the value."""
    if type_canon == "VARCHAR":
        return source
    params.append(message)
    fail = f"error(${len(params)} || left({source}, {EXAMPLE_CHARS}))"
    if type_canon in INTEGER_TYPES:
        # CAST('1.5' AS BIGINT) rounds to 2: a fraction must fail, not be rounded away.
        as_double = f"TRY_CAST({source} AS DOUBLE)"
        return (
            f"CASE WHEN {source} IS NULL THEN NULL "
            f"WHEN contains({source}, '.') OR contains({source}, 'e') OR contains({source}, 'E') "
            f"THEN coalesce(TRY_CAST(CASE WHEN {as_double} = trunc({as_double}) "
            f"THEN {as_double} END AS {type_sql}), {fail}) "
            f"ELSE coalesce(TRY_CAST({source} AS {type_sql}), {fail}) END"
        )
    return (
        f"CASE WHEN {source} IS NULL THEN NULL "
        f"ELSE coalesce(TRY_CAST({source} AS {type_sql}), {fail}) END"
    )


def existing_columns(conn, schema: str, name: str) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = $1 AND table_name = $2 "
        "ORDER BY column_index",
        [schema, name],
    ).fetchall()
    return {n.lower(): (n, t) for n, t in rows}


def load_partition(
    conn: duckdb.DuckDBPyConnection,
    *,
    table: str,
    file_path: str | Path,
    file_format: str,
    columns: list[Column],
    partition_key: str,
    lineage: dict[str, object] | None = None,
) -> LoadResult:
    """Replace the rows of `partition_key` in `table` ("schema.table") with the rows of the
    export file, in one transaction: on any error the table keeps its previous rows."""
    started = time.perf_counter()
    path = Path(file_path)
    delim = delimiter_for(file_format)
    if not columns:
        raise ValueError("no columns given")
    if not partition_key:
        raise ValueError("partition_key must be a non-empty string")
    schema, name = split_table(table)
    target = qualified(table)

    extra = dict(lineage or {})
    export_id = extra.pop("export_id", extra.pop("_export_id", None))
    loaded_at = extra.pop("loaded_at", extra.pop("_loaded_at", None))
    if loaded_at is None:
        loaded_at = dt.datetime.now(dt.UTC)
    lineage_values: list[tuple[str, str, object]] = [
        ("_partition_key", "VARCHAR", partition_key),
        ("_export_id", "VARCHAR", None if export_id is None else str(export_id)),
        (LOADED_AT, "TIMESTAMPTZ", loaded_at),
    ] + [(lineage_name(k), lineage_type(v), v) for k, v in extra.items()]
    check_names(columns, [n for n, _, _ in lineage_values])

    types = {c.name: canonical_type(conn, c.type) for c in columns}
    check_header(read_header(path, delim), columns, path)

    load_path = strip_nul(path) if has_nul(path) else path
    try:
        rows = _load(conn, schema, name, target, load_path, delim, columns, types, lineage_values)
    finally:
        if load_path != path:
            load_path.unlink(missing_ok=True)
    schema_now = [(n, t) for n, t in existing_columns(conn, schema, name).values()]
    return LoadResult(rows, table, schema_now, time.perf_counter() - started)


def _load(conn, schema, name, target, path, delim, columns, types, lineage_values) -> int:
    wanted = [(c.name, c.type, types[c.name]) for c in columns] + [
        (n, t, canonical_type(conn, t)) for n, t, _ in lineage_values
    ]
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        defs = [f"{quote_ident(c.name)} {c.type}" for c in columns]
        defs += [f"{quote_ident(n)} {t}" for n, t in BASE_LINEAGE]
        defs += [f"{quote_ident(LOADED_AT)} TIMESTAMPTZ"]
        conn.execute(f"CREATE TABLE IF NOT EXISTS {target} ({', '.join(defs)})")

        have = existing_columns(conn, schema, name)
        for col, type_sql, canon in wanted:
            found = have.get(col.lower())
            if found is None:
                conn.execute(f"ALTER TABLE {target} ADD COLUMN {quote_ident(col)} {type_sql}")
            elif found[1] != canon:
                raise SchemaConflictError(
                    f"column {col!r} of {schema}.{name} is {found[1]} in the table but this "
                    f"load makes it {canon}. Fix: convert or drop the table column "
                    f"(ALTER TABLE {target} ALTER {quote_ident(found[0])} TYPE {canon}, or "
                    f"drop the table and reload every partition), or give the field the "
                    f"old type / another header name in this export."
                )

        conn.execute(
            f"DELETE FROM {target} WHERE {quote_ident('_partition_key')} = $1",
            [lineage_values[0][2]],
        )

        params: list = [str(path)]
        exprs = []
        for c in columns:
            message = (
                f"{CAST_MARK} {path.name}: column {c.name!r} ({types[c.name]}) "
                "has a value that does not convert: "
            )
            exprs.append(cast_expr(quote_ident(c.name), types[c.name], c.type, message, params))
        for _name, t, v in lineage_values:
            params.append(v)
            exprs.append(f"CAST(${len(params)} AS {t})")
        params.append({c.name: "VARCHAR" for c in columns})
        read = (
            f"read_csv($1, header = true, auto_detect = false, strict_mode = true, "
            f"delim = '{delim}', quote = '\"', escape = '\"', nullstr = ['null', ''], "
            f"encoding = 'utf-8', parallel = true, columns = ${len(params)})"
        )
        collist = ", ".join(quote_ident(c) for c, _, _ in wanted)
        try:
            rows = conn.execute(
                f"INSERT INTO {target} ({collist}) SELECT {', '.join(exprs)} FROM {read}", params
            ).fetchone()[0]
        except duckdb.InvalidInputException as exc:
            msg = str(exc)
            if CAST_MARK in msg:
                raise CastError(msg[msg.index(CAST_MARK) :]) from None
            raise LoadError(f"cannot read {path.name}: {msg}") from exc
        except duckdb.Error as exc:
            raise LoadError(f"cannot load {path.name} into {schema}.{name}: {exc}") from exc
        conn.execute("COMMIT")
        return int(rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
