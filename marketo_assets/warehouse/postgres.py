"""The PostgreSQL warehouse: the same raw tables, typed columns and per-partition replace as
the DuckDB loader, for deployments whose loads must run in parallel on several machines.

A load streams the export file with `COPY ... FROM STDIN` (constant memory) into a temporary
all-text table, then `INSERT ... SELECT` casts each column to its type, inside the transaction
that deleted the partition's rows: on any error the table keeps its previous rows. Values are
handled like the DuckDB loader: `''` and Marketo's `null` are SQL NULL, NUL bytes are removed
(PostgreSQL text cannot hold them), an integer column refuses a value with a fraction
(`1.5`) and accepts `2.0`, a value that does not convert fails the load naming the column.

Concurrency: unlike DuckDB, PostgreSQL takes many writers. Loads of *different* partitions of a
table run in parallel; two loads of the *same* partition are serialized by a transaction-level
advisory lock on (table, partition), and creating or widening a table by another on the table.

Types: the DuckDB types of `types.DUCKDB_TYPES` map to PostgreSQL ones (`PG_TYPES`):
BIGINT → bigint, DECIMAL(38,18) → numeric(38,18), BOOLEAN → boolean, DATE → date,
TIMESTAMPTZ → timestamp with time zone, VARCHAR → text (docs/DATA-TYPES.md). Like DuckDB, a
numeric column refuses a value it would round (more decimal places than its scale).

Connection: a libpq connection string or URI, or "" for the standard PG* environment
variables. It is never logged, nor put into an exception message (it may hold a password).
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .catalog import LIST_COLUMNS, CatalogResult, catalog_values
from .files import delimiter_for
from .loader import (
    CAST_MARK,
    CastError,
    LoadError,
    LoadResult,
    PartFiles,
    SchemaConflictError,
    WarehouseUnavailableError,
    check_names,
    checked_header,
    file_parts,
    split_message,
)
from .nul import has_nul, strip_nul
from .queries import (
    SharedIds,
    ids_in_other_partitions_sql,
    partition_stats_sql,
    shared_ids_from_rows,
    stats_from_row,
)
from .sql import quote_ident, split_table
from .types import Column, decimal_digits

# DuckDB type spelling (as used by Column.type and the lineage columns) -> PostgreSQL type, in
# information_schema's spelling so that existing columns compare equal.
PG_TYPES: dict[str, str] = {
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMPTZ": "timestamp with time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "TIMESTAMP": "timestamp without time zone",
    "VARCHAR": "text",
    "TEXT": "text",
    "JSON": "jsonb",
}
INTEGER_PG = {"bigint", "integer", "smallint"}
CHECK_TIMEOUT = 10
_SAME = {"character varying": "text"}


def pg_type(duckdb_type: str) -> str:
    """PostgreSQL type for a DuckDB type name (Column.type); ValueError for anything else."""
    key = " ".join((duckdb_type or "").replace("NOT NULL", "").split()).upper()
    digits = decimal_digits(key)
    if digits is not None:
        return f"numeric({digits[0]},{digits[1]})"
    try:
        return PG_TYPES[key]
    except KeyError:
        raise ValueError(
            f"no PostgreSQL type for column type {duckdb_type!r}; supported: {sorted(PG_TYPES)}"
        ) from None


def _lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    h = zlib.crc32("\x00".join(parts).encode())
    h2 = zlib.crc32(("salt\x00" + "\x00".join(parts)).encode())
    value = (h << 32) | h2
    return value - (1 << 64) if value >= 1 << 63 else value


class PostgresWarehouse:
    """Raw Marketo tables in a PostgreSQL database."""

    kind = "postgres"

    def __init__(self, dsn: str = "", connect_timeout: int = 30):
        self._dsn = dsn
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:  # never shows the connection string (password)
        return "PostgresWarehouse(<dsn hidden>)"

    def _connect(self, timeout: int):
        import psycopg2

        try:
            return psycopg2.connect(self._dsn, connect_timeout=timeout)
        except psycopg2.OperationalError as exc:
            # libpq's message names host and port, never the password.
            raise WarehouseUnavailableError(
                f"cannot connect to the PostgreSQL warehouse: {str(exc).strip()} "
                "(check MARKETO_POSTGRES_DSN or the PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE "
                "variables)"
            ) from None

    def check(self) -> None:
        """Connect once, within 10 s: the export step's check before a Marketo job."""
        self._connect(min(self.connect_timeout, CHECK_TIMEOUT)).close()

    @contextmanager
    def session(self) -> Iterator[PostgresSession]:
        conn = self._connect(self.connect_timeout)
        try:
            # Offsets-less timestamps in a file mean UTC, whatever the server's TimeZone.
            with conn.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
            conn.commit()
            yield PostgresSession(conn)
        finally:
            conn.close()


class PostgresSession:
    kind = "postgres"

    def __init__(self, conn):
        self.conn = conn

    # ------------------------------------------------------------------------- helpers
    def _columns(self, cur, schema: str, name: str) -> dict[str, tuple[str, str]]:
        cur.execute(
            "SELECT column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, name),
        )
        return {n.lower(): (n, _spelled(t, p, sc)) for n, t, p, sc in cur.fetchall()}

    def _target(self, table: str) -> tuple[str, str, str]:
        schema, name = split_table(table)
        return schema, name, f"{quote_ident(schema)}.{quote_ident(name)}"

    def _fetch(self, sql: str, params: Sequence | None = None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
        self.conn.rollback()  # end the read-only transaction
        return row

    # ------------------------------------------------------------------------- loading
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
    ) -> LoadResult:
        """Replace the rows of `partition_key` in `table` with the export file's rows (or those
        of several `files`, each with its own lineage), in one transaction (see the module
        docstring); with `rows_where` (field, text), only the rows whose field is that text."""
        started = time.perf_counter()
        delimiter_for(file_format)  # a known format
        if not columns:
            raise ValueError("no columns given")
        if not partition_key:
            raise ValueError("partition_key must be a non-empty string")
        schema, name, target = self._target(table)

        parts = [
            (path, [(n, pg_type(t), v) for n, t, v in values])
            for path, values in file_parts(file_path, files, partition_key, lineage)
        ]
        check_names(columns, [n for n, _, _ in parts[0][1]])
        types = {c.field: pg_type(c.type) for c in columns}
        # Every header is checked before anything is written; SSV: each file's own separator.
        delims = [checked_header(path, file_format, columns) for path, _ in parts]

        loads: list[tuple[Path, str, list, str]] = []
        try:
            for (path, values), delim in zip(parts, delims, strict=True):
                load_path = strip_nul(path) if has_nul(path) else path
                loads.append((load_path, path.name, values, delim))
            rows = self._load(schema, name, target, loads, columns, types, rows_where)
        finally:
            for (path, _), (load_path, _, _, _) in zip(parts, loads, strict=False):
                if load_path != path:
                    load_path.unlink(missing_ok=True)
        with self.conn.cursor() as cur:
            schema_now = [(n, t) for n, t in self._columns(cur, schema, name).values()]
        self.conn.rollback()
        return LoadResult(rows, table, schema_now, time.perf_counter() - started)

    def _ensure_table(self, cur, schema, name, target, wanted) -> None:
        """Create the table / add missing columns (under a lock on the table); refuse a column
        whose existing type differs. Runs inside the load's transaction."""
        have = self._columns(cur, schema, name)
        needs_ddl = not have or any(col.lower() not in have for col, _ in wanted)
        if needs_ddl:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("ddl", schema, name),))
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            base = [
                f"{quote_ident(c)} {t}{' NOT NULL' if c == '_partition_key' else ''}"
                for c, t in wanted
            ]
            cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({', '.join(base)})")
            have = self._columns(cur, schema, name)
        for col, type_sql in wanted:
            found = have.get(col.lower())
            if found is None:
                cur.execute(f"ALTER TABLE {target} ADD COLUMN {quote_ident(col)} {type_sql}")
            elif found[0] != col:
                raise SchemaConflictError(
                    f"column {col!r} of {schema}.{name} exists as {found[0]!r} (names differ "
                    "only in case). Fix: rename the table column to the field's REST name."
                )
            elif found[1] != type_sql:
                raise SchemaConflictError(
                    f"column {col!r} of {schema}.{name} is {found[1]} in the table but this "
                    f"load makes it {type_sql}. Fix: convert or drop the table column "
                    f"(ALTER TABLE {target} ALTER {quote_ident(col)} TYPE {type_sql} USING "
                    f"{quote_ident(col)}::{type_sql}, or drop the table and reload every "
                    "partition)."
                )

    def _load(self, schema, name, target, loads, columns, types, rows_where=None):
        """The transaction. `loads`: (file to read, the export file's name, lineage values,
        delimiter) for each export file of the partition."""
        import psycopg2

        lineage_values = loads[0][2]
        source = loads[0][1]
        wanted = [(c.field, types[c.field]) for c in columns] + [
            (n, t) for n, t, _ in lineage_values
        ]
        partition_key = lineage_values[0][2]
        conn = self.conn
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_xact_lock(%s)",
                    (_lock_key("partition", schema, name, partition_key),),
                )
                self._ensure_table(cur, schema, name, target, wanted)
                cur.execute(
                    f"DELETE FROM {target} WHERE {quote_ident('_partition_key')} = %s",
                    (partition_key,),
                )
                stage_cols = ", ".join(f"{quote_ident(c.field)} text" for c in columns)
                cur.execute(f"CREATE TEMP TABLE _marketo_stage ({stage_cols}) ON COMMIT DROP")
                collist = ", ".join(quote_ident(c.field) for c in columns)
                rows = 0
                for index, (path, source, lineage_values, delim) in enumerate(loads):
                    if index:
                        cur.execute("TRUNCATE _marketo_stage")
                    delim_sql = "E'\\t'" if delim == "\t" else f"'{delim}'"
                    copy = (
                        f"COPY _marketo_stage ({collist}) FROM STDIN WITH (FORMAT csv, "
                        f"HEADER true, DELIMITER {delim_sql}, QUOTE '\"', ESCAPE '\"', "
                        "ENCODING 'UTF8')"
                    )
                    try:
                        with open(path, "rb") as fh:
                            cur.copy_expert(copy, fh, size=1024 * 1024)
                    except psycopg2.DataError as exc:
                        raise LoadError(f"cannot read {source}: {_pg_message(exc)}") from None
                    exprs = [_cast_expr(quote_ident(c.field), types[c.field]) for c in columns]
                    params: list[object] = []
                    for _n, t, v in lineage_values:
                        params.append(v)
                        exprs.append(f"CAST(%s AS {t})")
                    all_cols = ", ".join(quote_ident(c) for c, _ in wanted)
                    where = ""
                    if rows_where is not None:
                        params.append(rows_where[1])
                        where = f" WHERE {quote_ident(rows_where[0])} = %s"
                    cur.execute("SAVEPOINT before_insert")
                    try:
                        cur.execute(
                            f"INSERT INTO {target} ({all_cols}) SELECT {', '.join(exprs)} "
                            "FROM _marketo_stage" + where,
                            params,
                        )
                    except psycopg2.DataError as exc:
                        cur.execute("ROLLBACK TO SAVEPOINT before_insert")
                        raise self._cast_error(cur, source, columns, types, exc) from None
                    rows += cur.rowcount
            conn.commit()
            return int(rows)
        except psycopg2.Error as exc:
            conn.rollback()
            raise LoadError(
                f"cannot load {source} into {schema}.{name}: {_pg_message(exc)}"
            ) from None
        except BaseException:
            conn.rollback()
            raise

    def _cast_error(self, cur, source, columns, types, exc) -> CastError:
        """Name the first column holding a value that does not convert (PostgreSQL's message
        quotes the value)."""
        import psycopg2

        for c in columns:
            if types[c.field] == "text":
                continue
            cur.execute("SAVEPOINT find_bad")
            try:
                cur.execute(
                    f"SELECT count({_cast_expr(quote_ident(c.field), types[c.field])}) "
                    "FROM _marketo_stage"
                )
                cur.execute("RELEASE SAVEPOINT find_bad")
            except psycopg2.DataError as col_exc:
                cur.execute("ROLLBACK TO SAVEPOINT find_bad")
                return CastError(
                    f"{CAST_MARK} {source}: column {c.field!r} ({types[c.field]}) has a value "
                    f"that does not convert: {_pg_message(col_exc)}"
                )
        return CastError(f"{CAST_MARK} {source}: {_pg_message(exc)}")

    def rename_columns(self, table: str, renames: dict[str, str]) -> list[tuple[str, str]]:
        """Same as warehouse.loader.rename_columns, on PostgreSQL."""
        schema, name, target = self._target(table)
        conn, todo = self.conn, []
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("ddl", schema, name),))
                have = self._columns(cur, schema, name)
                for old, field_name in renames.items():
                    found = have.get(old.lower())
                    if found is None or old.lower() == field_name.lower():
                        continue
                    if field_name.lower() in have:
                        raise SchemaConflictError(split_message(target, found[0], field_name))
                    todo.append((found[0], field_name))
                for old, new in todo:
                    cur.execute(
                        f"ALTER TABLE {target} RENAME {quote_ident(old)} TO {quote_ident(new)}"
                    )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return todo

    # ------------------------------------------------------------------------- catalog
    def replace_list_catalog(
        self,
        *,
        table: str,
        rows: Sequence[Mapping[str, object]],
        loaded_at: dt.datetime,
        prune: Mapping[str, tuple[str, Sequence[int]]] | None = None,
    ) -> CatalogResult:
        """Same as warehouse.catalog.replace_list_catalog, on PostgreSQL."""
        schema, name, target = self._target(table)
        names = [c for c, _ in LIST_COLUMNS]
        values = [[row.get(c) for c in names[:-1]] + [loaded_at] for row in rows]
        pruned: dict[str, int] = {}
        conn = self.conn
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("ddl", schema, name),))
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                defs = ", ".join(
                    f"{quote_ident(c)} {pg_type(t)}{' NOT NULL' if 'NOT NULL' in t else ''}"
                    for c, t in LIST_COLUMNS
                )
                cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({defs})")
                cur.execute(f"DELETE FROM {target}")
                if values:
                    marks = ", ".join(["%s"] * len(names))
                    cols = ", ".join(quote_ident(c) for c in names)
                    cur.executemany(f"INSERT INTO {target} ({cols}) VALUES ({marks})", values)
                for member_table, (_list_type, keep) in (prune or {}).items():
                    m_schema, m_name, m_target = self._target(member_table)
                    if "_list_id" not in self._columns(cur, m_schema, m_name):
                        continue
                    keep_ids = sorted({int(i) for i in keep})
                    cur.execute(
                        f"DELETE FROM {m_target} WHERE NOT (_list_id = ANY(%s::bigint[]))",
                        (keep_ids,),
                    )
                    pruned[member_table] = int(cur.rowcount)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return CatalogResult(len(values), pruned, self.table_schema(table))

    def replace_table(
        self,
        *,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Mapping[str, object]],
        loaded_at: dt.datetime,
    ) -> CatalogResult:
        """Same as warehouse.catalog.replace_table, on PostgreSQL."""
        schema, name, target = self._target(table)
        all_columns = [*columns, ("_loaded_at", "TIMESTAMPTZ")]
        values = catalog_values(columns, rows, loaded_at)
        conn = self.conn
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("ddl", schema, name),))
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                types = [pg_type(t) for _, t in all_columns]
                defs = ", ".join(
                    f"{quote_ident(c)} {type_}{' NOT NULL' if 'NOT NULL' in t else ''}"
                    for (c, t), type_ in zip(all_columns, types, strict=True)
                )
                cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({defs})")
                cur.execute(f"DELETE FROM {target}")
                if values:
                    marks = ", ".join(f"%s::{type_}" for type_ in types)
                    cols = ", ".join(quote_ident(c) for c, _ in all_columns)
                    cur.executemany(f"INSERT INTO {target} ({cols}) VALUES ({marks})", values)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return CatalogResult(len(values), {}, self.table_schema(table))

    # ------------------------------------------------------------------------- reads
    def table_schema(self, table: str) -> list[tuple[str, str]]:
        schema, name = split_table(table)
        with self.conn.cursor() as cur:
            out = list(self._columns(cur, schema, name).values())
        self.conn.rollback()
        return out

    def partition_keys(self, table: str) -> set[str]:
        schema, name, target = self._target(table)
        with self.conn.cursor() as cur:
            if not self._columns(cur, schema, name):
                keys: set[str] = set()
            else:
                cur.execute(f"SELECT DISTINCT {quote_ident('_partition_key')} FROM {target}")
                keys = {row[0] for row in cur.fetchall()}
        self.conn.rollback()
        return keys

    def ids_in_other_partitions(
        self, table: str, partition_key: str, id_column: str = "id", limit: int = 5
    ) -> SharedIds:
        _, _, target = self._target(table)
        sql = ids_in_other_partitions_sql(target, id_column, "%s", limit)
        with self.conn.cursor() as cur:
            cur.execute(sql, (partition_key, partition_key))
            rows = cur.fetchall()
        self.conn.rollback()
        return shared_ids_from_rows(rows)

    def partition_stats(
        self,
        table: str,
        partition_key: str,
        id_column: str = "id",
        timestamp_column: str | None = "createdAt",
    ) -> dict:
        _, _, target = self._target(table)
        sql = partition_stats_sql(target, id_column, timestamp_column, "%s")
        return stats_from_row(self._fetch(sql, (partition_key,)), timestamp_column)

    def rows_outside_window(
        self, table: str, partition_key: str, column: str, start: object, end: object
    ) -> int:
        _, _, target = self._target(table)
        col = quote_ident(column)
        row = self._fetch(
            f"SELECT count(*) FROM {target} WHERE {quote_ident('_partition_key')} = %s "
            f"AND ({col} IS NULL OR {col} < %s OR {col} > %s)",
            (partition_key, start, end),
        )
        return int(row[0])


def _spelled(data_type: str, precision: int | None, scale: int | None) -> str:
    """information_schema's type name as pg_type spells it (numeric with its digits)."""
    if data_type == "numeric" and precision is not None:
        return f"numeric({precision},{scale or 0})"
    return _SAME.get(data_type, data_type)


def _cast_expr(source: str, type_pg: str) -> str:
    """SQL turning the staged text `source` into `type_pg`; '' and 'null' are NULL."""
    value = f"nullif(nullif({source}, ''), 'null')"
    if type_pg == "text":
        return value
    digits = decimal_digits(type_pg)
    if digits is not None:
        # An unconstrained numeric is exact: a value that differs from itself rounded to the
        # scale would be rounded by the cast, so it fails instead (the error quotes it).
        # NaN is refused like DuckDB does (numeric would keep it).
        exact = f"{value}::numeric"
        return (
            f"CASE WHEN {exact} = 'NaN' OR {exact} <> round({exact}, {digits[1]}) "
            f"THEN CAST('cannot hold without rounding it (more than {digits[1]} decimal places) "
            f"or not a number: ' || {value} AS numeric) ELSE {exact}::{type_pg} END"
        )
    if type_pg in INTEGER_PG:
        # '2.0' -> 2, '1.5' -> error (a plain cast would reject 2.0; DuckDB's would round 1.5).
        return (
            f"CASE WHEN {value} ~ '[.eE]' AND {value}::numeric = trunc({value}::numeric) "
            f"THEN {value}::numeric::{type_pg} ELSE {value}::{type_pg} END"
        )
    return f"CAST({value} AS {type_pg})"


def _pg_message(exc) -> str:
    text = (getattr(exc, "pgerror", None) or str(exc)).strip()
    return " ".join(text.split())[:500]
