"""Load one partition of a Marketo export file into a DuckDB table, in one transaction.

Reading: every data column is read as VARCHAR by DuckDB's CSV reader (explicit `columns=`,
no sniffing, strict mode so a row with a wrong number of fields fails instead of being cut),
then cast to its target type inside the INSERT ... SELECT: one pass over the file.

NUL bytes: always removed, never kept: a file loads as if it had none. They are not wanted
downstream (PostgreSQL text cannot hold them) and Marketo clients strip them (tap-marketo
2.4.2, airbyte 1.2.3). DuckDB 2.0.1 keeps NUL bytes inside values, so the query removes them
(`nul.nul_free` on the text columns read), only when a scan (memchr speed, `nul.nul_scan`)
found some, all inside values (and without the NULL tests when the scan rules out a value
reading as NULL once they are gone). A file with NUL bytes elsewhere (next to a quote, say), or in a
typed value (its cast fails: the load is run again), is loaded from a NUL-free copy written
into its own (private) directory.
Memory: during the load DuckDB's memory_limit is lowered (never raised) to 64 MiB + 48 MiB per
thread and insertion order is not preserved, so the INSERT streams the file into row groups
written as they fill instead of buffering it: peak memory stays flat from a 100 MB to a 1 GB
export (docs/PERFORMANCE.md). The connection's settings are restored afterwards.
CR / LF inside quoted values are kept as they are (RFC-4180 quoting; DuckDB handles them;
CRLF and LF line ends both work). A bare CR in an *unquoted* value is not RFC-4180 (Marketo and
the simulator quote such values): DuckDB rejects the row, so the load fails (LoadError) rather
than splitting the row. Values are never silently changed except for the NUL removal (and
`null` / `''` -> NULL): docs/DATA-TYPES.md lists every case.
Numbers: DECIMAL columns refuse a value they would round (cast_expr). SSV: `;` or a space,
whichever the header row is written with (checked_header).
Columns: each table column is named after its Marketo REST field (`Column.field`), whatever
header the file gives it (`Column.name`, checked against the header row): one column per
field, so another `columnHeaderNames` never adds columns or splits the table.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from .files import delimiter_for, header_and_delimiter
from .nul import NulBytes, nul_free, nul_scan, strip_nul
from .sql import qualified, qualified_schema, quote_ident, scalar, split_table
from .types import Column, decimal_digits

if TYPE_CHECKING:
    from .duckdb_file import LockHolder

BASE_LINEAGE = (("_partition_key", "VARCHAR NOT NULL"), ("_export_id", "VARCHAR"))
LOADED_AT = "_loaded_at"
EXAMPLE_CHARS = 80
CAST_MARK = "cannot load"
# A CSV-reading thread needs ~32 MiB of buffers; 100 MiB for two threads fails, 150 MiB works.
LOAD_MEMORY_BASE = 64 * 1024 * 1024
LOAD_MEMORY_PER_THREAD = 48 * 1024 * 1024
_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
TEXT_TYPES = {"VARCHAR", "JSON"}  # canonical types whose values the query frees of NUL bytes
INTEGER_TYPES = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"}


class LoadError(Exception):
    """The file could not be loaded; the table is unchanged."""


class WarehouseUnavailableError(LoadError):
    """The warehouse cannot be written to (a setting, the file's folder, a server); nothing
    was loaded."""


class WarehouseLockedError(WarehouseUnavailableError):
    """Another process holds the DuckDB file (`holder`: a duckdb_file.LockHolder)."""

    def __init__(self, message: str, holder: LockHolder):
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


_NOT_IN_TYPES = ";\"'\x00-/"


def canonical_type(conn: duckdb.DuckDBPyConnection, type_sql: str) -> str:
    """DuckDB's own spelling of a type (TIMESTAMPTZ -> TIMESTAMP WITH TIME ZONE, TEXT ->
    VARCHAR, ...); also rejects anything that is not a type."""
    if not type_sql or any(ch in type_sql for ch in _NOT_IN_TYPES):
        raise ValueError(f"not a column type: {type_sql!r}")
    try:
        return scalar(conn.execute(f"SELECT typeof(CAST(NULL AS {type_sql}))"))
    except duckdb.Error as exc:
        raise ValueError(f"not a DuckDB type: {type_sql!r}") from exc


def canonical_types(conn: duckdb.DuckDBPyConnection, types: Iterable[str]) -> dict[str, str]:
    """`canonical_type` of each type, in one query (one per type only to name a bad one)."""
    distinct = list(dict.fromkeys(types))
    if not distinct or any(not t or any(ch in t for ch in _NOT_IN_TYPES) for t in distinct):
        return {t: canonical_type(conn, t) for t in distinct}
    casts = ", ".join(f"typeof(CAST(NULL AS {t}))" for t in distinct)
    try:
        row = conn.execute(f"SELECT {casts}").fetchone()
    except duckdb.Error:
        return {t: canonical_type(conn, t) for t in distinct}  # raises for the bad one
    assert row is not None
    return dict(zip(distinct, row, strict=True))


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


def checked_header(path: Path, file_format: str, columns: list[Column]) -> str:
    """Read and check the file's header row; the delimiter to read the file with (for SSV the
    one its header is written with: `;` or a space, see files.header_and_delimiter)."""
    try:
        header, delim = header_and_delimiter(path, file_format, [c.name for c in columns])
    except ValueError as exc:
        raise HeaderMismatchError(str(exc)) from exc
    try:
        check_header(header, columns, path)
    except HeaderMismatchError as exc:
        if file_format.upper() != "SSV":
            raise
        raise HeaderMismatchError(
            f"{exc}. The SSV header was read with ';' and with ' ' as the separator "
            "(Marketo's pages name both) and neither gives these columns"
        ) from None
    return delim


def check_names(columns: list[Column], lineage_cols: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in [c.field for c in columns] + lineage_cols:
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
    Integers and decimals are guarded, since a CAST rounds instead of failing
    (CAST('1.5' AS BIGINT) = 2, CAST('0.1234' AS DECIMAL(38,2)) = 0.12): such a value raises
    `message` (a parameter) followed by the value."""
    if type_canon == "VARCHAR":
        return source
    digits = decimal_digits(type_canon)
    if digits is not None:
        params.append(message)
        cast = f"CAST({source} AS {type_sql})"
        # Only a value longer than scale + 1 bytes or with an exponent can need more places:
        # the exact count (slower string work) runs for those alone.
        return (
            f"CASE WHEN strlen({source}) > {digits[1] + 1} OR contains({source}, 'e') "
            f"OR contains({source}, 'E') "
            f"THEN CASE WHEN {decimal_places(source)} > {digits[1]} "
            f"THEN error(${len(params)} || left({source}, {EXAMPLE_CHARS})) ELSE {cast} END "
            f"ELSE {cast} END"
        )
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


def decimal_places(source: str) -> str:
    """SQL: how many digits after the point the number text `source` needs, trailing zeros
    not counted ('1.50' -> 1, '2.5e-3' -> 4, '1.5E+10' -> -9). Plain decimals take the fast
    branch; exponent forms count the mantissa's places minus the exponent."""
    v = f"trim({source})"
    mantissa = f"split_part(lower({v}), 'e', 1)"
    digits = f"regexp_replace({mantissa}, '[^0-9]', '', 'g')"
    return (
        f"(CASE WHEN NOT (contains({v}, 'e') OR contains({v}, 'E')) "
        f"THEN length(rtrim(split_part({v}, '.', 2), '0')) "
        f"WHEN rtrim({digits}, '0') = '' THEN 0 "
        f"ELSE length(split_part({mantissa}, '.', 2)) "
        f"- (length({digits}) - length(rtrim({digits}, '0'))) "
        f"- TRY_CAST(split_part(lower({v}), 'e', 2) AS INTEGER) END)"
    )


def cast_message(source: str, column: str, type_canon: str) -> str:
    """The start of the error raised by a guarded cast (the value follows)."""
    digits = decimal_digits(type_canon)
    if digits is None:
        return (
            f"{CAST_MARK} {source}: column {column!r} ({type_canon}) "
            "has a value that does not convert: "
        )
    return (
        f"{CAST_MARK} {source}: column {column!r} ({type_canon}) cannot hold this value "
        f"without rounding it (more than {digits[1]} decimal places): "
    )


def decimal_hint(type_canon: str) -> str:
    digits = decimal_digits(type_canon)
    if digits is None:
        return ""
    precision, scale = digits
    return (
        f" ({type_canon} holds at most {precision - scale} integer digits and {scale} "
        "decimal places; a value it cannot hold is never rounded)"
    )


def find_bad_value(conn, read_sql: str, params: list, columns, types) -> tuple[str, str] | None:
    """(column, example value) of the first typed column holding a value that does not
    convert; only run after a failed load (a second pass over the file)."""
    typed = [c for c in columns if types[c.field] != "VARCHAR"]
    if not typed:
        return None
    picks = []
    for c in typed:
        src = quote_ident(c.field)
        picks.append(
            f"left(first({src}) FILTER (WHERE {src} IS NOT NULL "
            f"AND TRY_CAST({src} AS {c.type}) IS NULL), {EXAMPLE_CHARS})"
        )
    row = conn.execute(f"SELECT {', '.join(picks)} FROM {read_sql}", params).fetchone()
    for c, value in zip(typed, row, strict=True):
        if value is not None:
            return c.field, value
    return None


def existing_columns(conn, schema: str, name: str) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = $1 AND table_name = $2 "
        "ORDER BY column_index",
        [schema, name],
    ).fetchall()
    return {n.lower(): (n, t) for n, t in rows}


PartFiles = Sequence[tuple[str | Path, Mapping[str, object]]]


@dataclass(frozen=True)
class FileLoad:
    """One export file of a load: `path` is the file DuckDB reads (the export file, or its
    NUL-free copy), `source` the export file's name, `lineage` its lineage values (column,
    type, value), `delim` its separator; `nul_in_values`: the query removes NUL bytes;
    `nul_may_leave_null`: a value may read as NULL once they are gone (nul.NulScan)."""

    path: Path
    source: str
    lineage: list[tuple[str, str, object]]
    delim: str
    nul_in_values: bool
    nul_may_leave_null: bool = True


def file_parts(
    file_path: str | Path | None,
    files: PartFiles | None,
    partition_key: str,
    lineage: dict[str, object] | None,
) -> list[tuple[Path, list[tuple[str, str, object]]]]:
    """(path, lineage values) of each file a partition is loaded from: `file_path` alone, or
    `files`, each with its own lineage (e.g. `_export_id`) over the shared `lineage`."""
    if (file_path is None) == (files is None):
        raise ValueError("give file_path or files (one of them)")
    pairs = [(file_path, {})] if file_path is not None else list(files or [])
    if not pairs:
        raise ValueError("no files given")
    out = [
        (Path(path), lineage_columns(partition_key, {**(lineage or {}), **own}))
        for path, own in pairs
    ]
    names = [[(n, t) for n, t, _ in values] for _, values in out]
    if any(n != names[0] for n in names):
        raise ValueError("the files of one partition must have the same lineage columns")
    return out


def load_partition(
    conn: duckdb.DuckDBPyConnection,
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
    """Replace the rows of `partition_key` in `table` ("schema.table") with the rows of the
    export file, in one transaction: on any error the table keeps its previous rows.
    `files` instead of `file_path`: several export files (a window exported as several jobs),
    each as (path, its own lineage values), loaded in that one transaction. `rows_where`
    (field, text): only the file's rows whose field is that text (a file shared by several
    partitions)."""
    started = time.perf_counter()
    delimiter_for(file_format)  # a known format
    if not columns:
        raise ValueError("no columns given")
    if not partition_key:
        raise ValueError("partition_key must be a non-empty string")
    schema, name = split_table(table)
    target = qualified(table, conn)

    parts = file_parts(file_path, files, partition_key, lineage)
    lineage_values = parts[0][1]
    check_names(columns, [n for n, _, _ in lineage_values])

    canonical = canonical_types(conn, [c.type for c in columns])
    types = {c.field: canonical[c.type] for c in columns}
    # Every header is checked before anything is written; SSV: each file's own separator.
    delims = [checked_header(path, file_format, columns) for path, _ in parts]

    copies: list[Path] = []  # NUL-free copies, deleted at the end

    def copy(path: Path) -> Path:
        copies.append(strip_nul(path))
        return copies[-1]

    try:
        loads = []
        for (path, values), delim in zip(parts, delims, strict=True):
            scan = nul_scan(path)
            read_path = copy(path) if scan.kind is NulBytes.OUTSIDE_VALUES else path
            in_values = scan.kind is NulBytes.IN_VALUES
            loads.append(
                FileLoad(read_path, path.name, values, delim, in_values, scan.may_leave_null)
            )
        with bounded_memory(conn):
            try:
                rows = _load(conn, schema, name, target, loads, columns, types, rows_where)
            except CastError:
                if not any(load.nul_in_values for load in loads):
                    raise
                # The query removes NUL bytes from text columns only; a typed value holding
                # one fails its cast (a genuine bad value too): load again from NUL-free copies.
                loads = [
                    replace(load, path=copy(path), nul_in_values=False)
                    if load.nul_in_values
                    else load
                    for (path, _), load in zip(parts, loads, strict=True)
                ]
                rows = _load(conn, schema, name, target, loads, columns, types, rows_where)
    finally:
        for path in copies:
            path.unlink(missing_ok=True)
    schema_now = [(n, t) for n, t in existing_columns(conn, schema, name).values()]
    return LoadResult(rows, table, schema_now, time.perf_counter() - started)


def rename_columns(conn: duckdb.DuckDBPyConnection, table: str, renames: dict[str, str]) -> list:
    """Rename columns {old name: field} of `table` in one transaction (all rows keep their
    values): tables loaded while headers still named columns get their fields' names back.
    Refuses (SchemaConflictError, nothing renamed) when both names exist. Returns the pairs
    renamed."""
    schema, name = split_table(table)
    have = existing_columns(conn, schema, name)
    todo = []
    for old, field_name in renames.items():
        found = have.get(old.lower())
        if found is None or old.lower() == field_name.lower():
            continue
        if field_name.lower() in have:
            raise SchemaConflictError(split_message(qualified(table, conn), found[0], field_name))
        todo.append((found[0], field_name))
    if todo:
        target = qualified(table, conn)
        conn.execute("BEGIN TRANSACTION")
        try:
            for old, new in todo:
                conn.execute(
                    f"ALTER TABLE {target} RENAME {quote_ident(old)} TO {quote_ident(new)}"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return todo


def split_message(table: str, old: str, field_name: str) -> str:
    return (
        f"{table} has both a column {old!r} (field {field_name!r}, named after its header by "
        f"loads before header names stopped naming columns) and a column {field_name!r}: the "
        f"field is split over two columns. Fix: merge them into {field_name!r} (UPDATE {table} "
        f"SET {quote_ident(field_name)} = coalesce({quote_ident(field_name)}, {quote_ident(old)}); "
        f"ALTER TABLE {table} DROP COLUMN {quote_ident(old)}), or drop the table and reload "
        "every partition (a backfill)."
    )


def _bytes(text: str) -> int | None:
    """DuckDB's spelling of a size ('18.7 GiB', '150.0 MiB', '512 bytes') in bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text or "")
    if not m or m.group(2).upper() not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


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
            conn.execute("RESET memory_limit")  # the exact default (the text is rounded)
            if scalar(conn.execute("SELECT current_setting('memory_limit')")) != old_limit:
                conn.execute(f"SET memory_limit = '{old_limit}'")
        if old_order is not None:
            conn.execute(f"SET preserve_insertion_order = {old_order}")


def _load(
    conn, schema, name, target, loads: list[FileLoad], columns, types, rows_where=None
) -> int:
    """The transaction: each export file of the partition (`loads`) in turn."""
    lineage_values = loads[0].lineage
    lineage_types = canonical_types(conn, [t for _, t, _ in lineage_values])
    wanted = [(c.field, c.type, types[c.field]) for c in columns] + [
        (n, t, lineage_types[t]) for n, t, _ in lineage_values
    ]
    conn.execute("BEGIN TRANSACTION")
    rolled_back = False
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {qualified_schema(schema, conn)}")
        defs = [f"{quote_ident(c.field)} {c.type}" for c in columns]
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
                    f"drop the table and reload every partition)."
                )

        conn.execute(
            f"DELETE FROM {target} WHERE {quote_ident('_partition_key')} = $1",
            [lineage_values[0][2]],
        )
        rows = 0
        for load in loads:
            source = load.source
            # $1 = file, $2 = column names (exactly the header) all read as VARCHAR.
            params: list = [str(load.path), {c.field: "VARCHAR" for c in columns}]
            value_sql = _value_sql(load, columns, types, rows_where)
            exprs = []
            for c in columns:
                message = cast_message(source, c.field, types[c.field])
                exprs.append(cast_expr(value_sql(c.field), types[c.field], c.type, message, params))
            for _name, t, v in load.lineage:
                params.append(v)
                exprs.append(f"CAST(${len(params)} AS {t})")
            read = (
                f"read_csv($1, header = true, auto_detect = false, strict_mode = true, "
                f"delim = '{load.delim}', quote = '\"', escape = '\"', nullstr = ['null', ''], "
                f"allow_quoted_nulls = true, "
                f"encoding = 'utf-8', parallel = true, columns = $2)"
            )
            collist = ", ".join(quote_ident(c) for c, _, _ in wanted)
            where = ""
            if rows_where is not None:
                params.append(rows_where[1])
                where = f" WHERE {value_sql(rows_where[0])} = ${len(params)}"
            try:
                insert = (
                    f"INSERT INTO {target} ({collist}) SELECT {', '.join(exprs)} FROM {read}"
                    + where
                )
                rows += int(conn.execute(insert, params).fetchone()[0])
            except duckdb.ConversionException as exc:
                conn.execute("ROLLBACK")
                rolled_back = True
                bad = find_bad_value(conn, read, params[:2], columns, types)
                if bad is None:
                    raise LoadError(f"cannot load {source} into {schema}.{name}: {exc}") from exc
                col, value = bad
                raise CastError(
                    f"{CAST_MARK} {source}: column {col!r} ({types[col]}) has a value that "
                    f"does not convert: {value!r}{decimal_hint(types[col])}"
                ) from None
            except duckdb.InvalidInputException as exc:
                msg = str(exc)
                if CAST_MARK in msg:
                    raise CastError(msg[msg.index(CAST_MARK) :]) from None
                raise LoadError(f"cannot read {source}: {msg}") from exc
            except duckdb.Error as exc:
                raise LoadError(f"cannot load {source} into {schema}.{name}: {exc}") from exc
        sources = ", ".join(load.source for load in loads)
        try:
            conn.execute("COMMIT")
        except duckdb.Error as exc:  # e.g. the disk is full: DuckDB has rolled back
            raise LoadError(
                f"cannot commit the load of {sources} into {schema}.{name} (the table is "
                f"unchanged): {exc}"
            ) from exc
        return int(rows)
    except BaseException:
        if not rolled_back:
            rollback(conn)
        raise


def _value_sql(load: FileLoad, columns, types, rows_where) -> Callable[[str], str]:
    """field -> SQL of its value as read (VARCHAR). When the query removes NUL bytes
    (`load.nul_in_values`), from the text columns and the `rows_where` column (nul.nul_free),
    written into the SELECT itself (a subquery around the read cost ~0.05 CPU-s more on the
    benchmark file). Only those: the check costs CPU on every value, and a NUL byte in a typed
    value fails its cast, which load_partition then loads from a NUL-free copy."""
    if not load.nul_in_values:
        return quote_ident
    text = {c.field for c in columns if types[c.field] in TEXT_TYPES}
    text |= {rows_where[0]} if rows_where else set()

    def value(field: str) -> str:
        if field not in text:
            return quote_ident(field)
        return nul_free(quote_ident(field), load.nul_may_leave_null)

    return value


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back after an error, if a transaction is still open. A failed COMMIT has already
    ended it: the ROLLBACK error ("no transaction is active") must not hide the real cause."""
    with suppress(duckdb.Error):
        conn.execute("ROLLBACK")
