"""Load one partition of a Marketo export file into a DuckDB table, in one transaction.

Reading: every data column is read as VARCHAR by DuckDB's CSV reader (explicit `columns=`,
no sniffing, strict mode so a row with a wrong number of fields fails instead of being cut),
then cast to its target type inside the INSERT ... SELECT: one pass over the file.

NUL bytes: DuckDB 2.0.1 keeps NUL bytes inside values, but they are not wanted downstream
(PostgreSQL text cannot hold them) and Marketo clients strip them (tap-marketo 2.4.2,
airbyte 1.2.3). A chunked scan (memchr speed) looks for them first; only if the file has
some, a streaming pre-pass writes a NUL-free copy into the file's own (private) directory
and that copy is loaded. So NUL bytes are always removed, never kept.
Memory: during the load DuckDB's memory_limit is lowered (never raised) to 64 MiB + 48 MiB per
thread and insertion order is not preserved, so the INSERT streams the file into row groups
written as they fill instead of buffering it: peak memory stays flat from a 100 MB to a 1 GB
export (README, Performance). The connection's settings are restored afterwards.
CR / LF inside quoted values are kept as they are (RFC-4180 quoting; DuckDB handles them;
CRLF and LF line ends both work). A bare CR in an *unquoted* value is not RFC-4180 (Marketo and
the simulator quote such values): DuckDB rejects the row, so the load fails (LoadError) rather
than splitting the row. Values are never silently changed except for the NUL removal.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from .files import delimiter_for, has_nul, read_header, strip_nul
from .sql import qualified, qualified_schema, quote_ident, split_table
from .types import Column

BASE_LINEAGE = (("_partition_key", "VARCHAR NOT NULL"), ("_export_id", "VARCHAR"))
LOADED_AT = "_loaded_at"
EXAMPLE_CHARS = 80
CAST_MARK = "cannot load"
# A CSV-reading thread needs ~32 MiB of buffers; 100 MiB for two threads fails, 150 MiB works.
LOAD_MEMORY_BASE = 64 * 1024 * 1024
LOAD_MEMORY_PER_THREAD = 48 * 1024 * 1024
_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
INTEGER_TYPES = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"}


class LoadError(Exception):
    """The file could not be loaded; the table is unchanged."""


class WarehouseUnavailableError(LoadError):
    """The warehouse cannot be written to (a setting, the file's folder, a server); nothing
    was loaded."""


class WarehouseLockedError(WarehouseUnavailableError):
    """Another process holds the DuckDB file (`holder`: a duckdb_file.LockHolder)."""

    def __init__(self, message: str, holder: object):
        super().__init__(message)
        self.holder = holder


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


def lineage_columns(
    partition_key: str, lineage: dict[str, object] | None
) -> list[tuple[str, str, object]]:
    """(column, DuckDB type, value) of the lineage columns every loaded row gets:
    `_partition_key`, `_export_id`, `_loaded_at` (now unless given), then the extra ones."""
    extra = dict(lineage or {})
    export_id = extra.pop("export_id", extra.pop("_export_id", None))
    loaded_at = extra.pop("loaded_at", extra.pop("_loaded_at", None))
    if loaded_at is None:
        loaded_at = dt.datetime.now(dt.UTC)
    return [
        ("_partition_key", "VARCHAR", partition_key),
        ("_export_id", "VARCHAR", None if export_id is None else str(export_id)),
        (LOADED_AT, "TIMESTAMPTZ", loaded_at),
    ] + [(lineage_name(k), lineage_type(v), v) for k, v in extra.items()]


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
    """SQL turning VARCHAR `source` into `type_sql`. A plain CAST (fastest): a value that does
    not convert fails the INSERT and `find_bad_value` then names the column and the value.
    Integers are guarded, since CAST('1.5' AS BIGINT) rounds to 2 instead of failing: a
    value with a fraction raises `message` (a parameter) followed by the value."""
    if type_canon == "VARCHAR":
        return source
    if type_canon not in INTEGER_TYPES:
        return f"CAST({source} AS {type_sql})"
    params.append(message)
    as_double = f"TRY_CAST({source} AS DOUBLE)"
    return (
        f"CASE WHEN contains({source}, '.') OR contains({source}, 'e') "
        f"OR contains({source}, 'E') "
        f"THEN coalesce(TRY_CAST(CASE WHEN {as_double} = trunc({as_double}) "
        f"THEN {as_double} END AS {type_sql}), "
        f"error(${len(params)} || left({source}, {EXAMPLE_CHARS}))) "
        f"ELSE CAST({source} AS {type_sql}) END"
    )


def find_bad_value(conn, read_sql: str, params: list, columns, types) -> tuple[str, str] | None:
    """(column, example value) of the first typed column holding a value that does not
    convert; only run after a failed load (a second pass over the file)."""
    typed = [c for c in columns if types[c.name] != "VARCHAR"]
    if not typed:
        return None
    picks = []
    for c in typed:
        src = quote_ident(c.name)
        picks.append(
            f"left(first({src}) FILTER (WHERE {src} IS NOT NULL "
            f"AND TRY_CAST({src} AS {c.type}) IS NULL), {EXAMPLE_CHARS})"
        )
    row = conn.execute(f"SELECT {', '.join(picks)} FROM {read_sql}", params).fetchone()
    for c, value in zip(typed, row, strict=True):
        if value is not None:
            return c.name, value
    return None


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
    target = qualified(table, conn)

    lineage_values = lineage_columns(partition_key, lineage)
    check_names(columns, [n for n, _, _ in lineage_values])

    types = {c.name: canonical_type(conn, c.type) for c in columns}
    try:
        header = read_header(path, delim)
    except ValueError as exc:
        raise HeaderMismatchError(str(exc)) from exc
    check_header(header, columns, path)

    load_path = strip_nul(path) if has_nul(path) else path
    try:
        with bounded_memory(conn):
            rows = _load(
                conn, schema, name, target, load_path, path.name, delim, columns, types,
                lineage_values,
            )  # fmt: skip
    finally:
        if load_path != path:
            load_path.unlink(missing_ok=True)
    schema_now = [(n, t) for n, t in existing_columns(conn, schema, name).values()]
    return LoadResult(rows, table, schema_now, time.perf_counter() - started)


def _bytes(text: str) -> int | None:
    """DuckDB's spelling of a size ('18.7 GiB', '150.0 MiB', '512 bytes') in bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text or "")
    if not m or m.group(2).upper() not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


@functools.cache
def _default_memory_limit() -> str:
    with duckdb.connect() as fresh:
        return fresh.execute("SELECT current_setting('memory_limit')").fetchone()[0]


@contextmanager
def bounded_memory(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Lower memory_limit (never raise it) and drop insertion order for the load; restore both
    afterwards. Without this DuckDB may use up to 80% of RAM on a large file."""
    settings = dict(
        conn.execute(
            "SELECT name, value FROM duckdb_settings() "
            "WHERE name IN ('memory_limit', 'preserve_insertion_order', 'threads')"
        ).fetchall()
    )
    old_limit, old_order = settings.get("memory_limit"), settings.get("preserve_insertion_order")
    threads = int(settings.get("threads") or 1)
    wanted = LOAD_MEMORY_BASE + LOAD_MEMORY_PER_THREAD * threads
    current = _bytes(old_limit) if old_limit else None
    lower = current is None or wanted < current
    if lower:
        conn.execute(f"SET memory_limit = '{wanted // 1024}KiB'")
    conn.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        if lower and old_limit:
            if old_limit == _default_memory_limit():
                conn.execute("RESET memory_limit")  # exact default (the text is rounded)
            else:
                conn.execute(f"SET memory_limit = '{old_limit}'")
        if old_order is not None:
            conn.execute(f"SET preserve_insertion_order = {old_order}")


def _load(conn, schema, name, target, path, source, delim, columns, types, lineage_values) -> int:
    """The transaction. `path` is the file DuckDB reads, `source` the export file's name."""
    wanted = [(c.name, c.type, types[c.name]) for c in columns] + [
        (n, t, canonical_type(conn, t)) for n, t, _ in lineage_values
    ]
    conn.execute("BEGIN TRANSACTION")
    rolled_back = False
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {qualified_schema(schema, conn)}")
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

        # $1 = file, $2 = column names (exactly the header) all read as VARCHAR.
        params: list = [str(path), {c.name: "VARCHAR" for c in columns}]
        exprs = []
        for c in columns:
            message = (
                f"{CAST_MARK} {source}: column {c.name!r} ({types[c.name]}) "
                "has a value that does not convert: "
            )
            exprs.append(cast_expr(quote_ident(c.name), types[c.name], c.type, message, params))
        for _name, t, v in lineage_values:
            params.append(v)
            exprs.append(f"CAST(${len(params)} AS {t})")
        read = (
            f"read_csv($1, header = true, auto_detect = false, strict_mode = true, "
            f"delim = '{delim}', quote = '\"', escape = '\"', nullstr = ['null', ''], "
            f"encoding = 'utf-8', parallel = true, columns = $2)"
        )
        collist = ", ".join(quote_ident(c) for c, _, _ in wanted)
        try:
            rows = conn.execute(
                f"INSERT INTO {target} ({collist}) SELECT {', '.join(exprs)} FROM {read}", params
            ).fetchone()[0]
        except duckdb.ConversionException as exc:
            conn.execute("ROLLBACK")
            rolled_back = True
            bad = find_bad_value(conn, read, params[:2], columns, types)
            if bad is None:
                raise LoadError(f"cannot load {source} into {schema}.{name}: {exc}") from exc
            col, value = bad
            raise CastError(
                f"{CAST_MARK} {source}: column {col!r} ({types[col]}) has a value that "
                f"does not convert: {value!r}"
            ) from None
        except duckdb.InvalidInputException as exc:
            msg = str(exc)
            if CAST_MARK in msg:
                raise CastError(msg[msg.index(CAST_MARK) :]) from None
            raise LoadError(f"cannot read {source}: {msg}") from exc
        except duckdb.Error as exc:
            raise LoadError(f"cannot load {source} into {schema}.{name}: {exc}") from exc
        try:
            conn.execute("COMMIT")
        except duckdb.Error as exc:  # e.g. the disk is full: DuckDB has rolled back
            raise LoadError(
                f"cannot commit the load of {source} into {schema}.{name} (the table is "
                f"unchanged): {exc}"
            ) from exc
        return int(rows)
    except BaseException:
        if not rolled_back:
            rollback(conn)
        raise


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back after an error, if a transaction is still open. A failed COMMIT has already
    ended it: the ROLLBACK error ("no transaction is active") must not hide the real cause."""
    with suppress(duckdb.Error):
        conn.execute("ROLLBACK")
