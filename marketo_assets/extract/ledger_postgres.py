"""The export ledger in PostgreSQL (MARKETO_LEDGER=postgres): for runs on several machines
without a shared disk (one pod per run, several workers).

Its tables live in their own schema (MARKETO_LEDGER_SCHEMA, default `marketo_ledger`) of the
database the libpq variables of the run process name (PGHOST, PGPORT, PGUSER, PGPASSWORD,
PGDATABASE: the PostgreSQL warehouse's), created on first use. Every write transaction takes a
transaction-level advisory lock of the schema first, so writes are serialized exactly like
SQLite's BEGIN IMMEDIATE: a claim is read and taken in one step, whichever machine asks.
The connection string is never logged nor put into a message (it may hold a password).
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import ExportFailed
from .ledger_base import Ledger, rows_of

__all__ = ["DEFAULT_SCHEMA", "PostgresLedger"]

DEFAULT_SCHEMA = "marketo_ledger"
SCHEMA_SETTING = "MARKETO_LEDGER_SCHEMA"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Every table and index of _TABLES: a ledger missing one gets it at the next open.
TABLES = ("exports", "claims", "quota_stops", "export_members")
INDEXES = ("exports_partition", "exports_status", "export_members_partition")
_TABLES = """
CREATE TABLE IF NOT EXISTS exports (
    export_id      TEXT PRIMARY KEY,
    asset          TEXT NOT NULL,
    partition_key  TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    request_json   TEXT NOT NULL,
    status         TEXT NOT NULL,
    run_id         TEXT,
    created_at     TEXT NOT NULL,
    queued_at      TEXT,
    started_at     TEXT,
    finished_at    TEXT,
    downloaded_at  TEXT,
    loaded_at      TEXT,
    records        BIGINT,
    bytes          BIGINT,
    checksum       TEXT,
    staged_file    TEXT,
    error          TEXT,
    updated_at     TEXT NOT NULL,
    seq            BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS exports_partition ON exports (asset, partition_key, created_at);
CREATE INDEX IF NOT EXISTS exports_status ON exports (status);
CREATE TABLE IF NOT EXISTS claims (
    asset          TEXT NOT NULL,
    partition_key  TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    pid_start      TEXT NOT NULL,
    state          TEXT NOT NULL,
    claimed_at     TEXT NOT NULL,
    touched_at     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (asset, partition_key)
);
CREATE TABLE IF NOT EXISTS quota_stops (
    asset           TEXT NOT NULL,
    partition_key   TEXT NOT NULL,
    reason          TEXT NOT NULL,
    resets_at       TEXT NOT NULL,
    predicted_bytes BIGINT,
    run_id          TEXT,
    stopped_at      TEXT NOT NULL,
    PRIMARY KEY (asset, partition_key)
);
CREATE TABLE IF NOT EXISTS export_members (
    export_id      TEXT NOT NULL,
    asset          TEXT NOT NULL,
    partition_key  TEXT NOT NULL,
    status         TEXT NOT NULL,
    row_count      BIGINT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    seq            BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (export_id, partition_key)
);
CREATE INDEX IF NOT EXISTS export_members_partition ON export_members (asset, partition_key);
"""


class PostgresLedger(Ledger):
    """The PostgreSQL ledger (see `Ledger`) in `schema` of the database `dsn` names ("" = the
    PG* environment variables). A bad schema name or an unreachable server fails at once,
    naming the setting and the fix."""

    def __init__(self, dsn: str = "", schema: str = DEFAULT_SCHEMA, connect_timeout: int = 30):
        if not _NAME.fullmatch(schema):
            raise ExportFailed(
                f"{SCHEMA_SETTING}={schema!r} is not a plain PostgreSQL schema name: use "
                "lower-case letters, digits and underscores (e.g. marketo_ledger).",
                retryable=False,
            )
        self._dsn = dsn
        self.schema = schema
        self.connect_timeout = connect_timeout
        self.where = f"in PostgreSQL schema {schema}"
        self.new_ledger_hint = f"set {SCHEMA_SETTING} to a new schema name"
        self.order_column = "seq"
        self._reader: dict[int, Any] = {}  # thread: its connection in `reading`
        self.fields_sql = "(request_json::json #>> '{payload,fields}')"
        self.kind_sql = "(request_json::json ->> 'export_type')"
        self._lock = zlib.crc32(f"marketo_ledger:{schema}".encode())
        self._budget_lock = zlib.crc32(f"marketo_ledger_budget:{schema}".encode())
        # Created on first use; an existing ledger needs no CREATE right on the database.
        names = [f"{schema}.{t}" for t in (*TABLES, *INDEXES)]
        found = self._rows(
            "SELECT " + ", ".join(f"to_regclass(?) IS NOT NULL AS n{i}" for i in range(len(names))),
            names,
        )[0]
        if not all(found[f"n{i}"] for i in range(len(TABLES))):
            with self._write() as tx:
                tx.run(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                tx.run(_TABLES)
        elif not all(found.values()):
            self._add_indexes()

    def _add_indexes(self) -> None:
        """An index added since the ledger was created (the ledger works without: a role that
        does not own its tables leaves it to one that does)."""
        import psycopg2

        try:
            with self._write() as tx:
                for statement in _TABLES.split(";"):
                    if "CREATE INDEX" in statement:
                        tx.run(statement)
        except psycopg2.errors.InsufficientPrivilege:
            pass

    def __repr__(self) -> str:  # never shows the connection string (password)
        return f"PostgresLedger(schema={self.schema!r})"

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        import psycopg2  # here: only a PostgreSQL ledger needs it (start-up of every run)

        try:
            conn = psycopg2.connect(
                self._dsn,
                connect_timeout=self.connect_timeout,
                options=f"-c search_path={self.schema}",
                application_name="marketo_assets ledger",
            )
        except psycopg2.OperationalError as exc:
            raise ExportFailed(
                f"Cannot reach the export ledger's PostgreSQL database: {str(exc).strip()} "
                "Check PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE of the run process "
                "(MARKETO_LEDGER=postgres), or set MARKETO_LEDGER=sqlite on a single machine.",
                retryable=True,
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def budget_lock(self) -> Iterator[None]:
        """A session-level advisory lock of the schema's budget, held on its own connection
        (every machine of the deployment sees it)."""
        with self._connect() as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (self._budget_lock,))
                try:
                    yield
                finally:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (self._budget_lock,))

    @contextmanager
    def reading(self) -> Iterator[None]:
        thread = threading.get_ident()
        if thread in self._reader:
            yield
            return
        with self._connect() as conn:
            conn.autocommit = True
            self._reader[thread] = conn
            try:
                yield
            finally:
                del self._reader[thread]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        shared = self._reader.get(threading.get_ident())
        if shared is not None:
            return _query(shared, sql, params)
        with self._connect() as conn:
            conn.autocommit = True
            return _query(conn, sql, params)

    @contextmanager
    def _write(self) -> Iterator[_PgTx]:
        with self._connect() as conn, conn, conn.cursor() as cur:  # commits, or rolls back
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock,))
            yield _PgTx(cur)


def _query(conn: Any, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(_pg(sql), params)
        return rows_of(cur)


def _pg(sql: str) -> str:
    """The ledger's `?` placeholders in psycopg2's style (its SQL has no other `?` or `%`)."""
    return sql.replace("?", "%s")


class _PgTx:
    def __init__(self, cur: Any):
        self._cur = cur

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._cur.execute(_pg(sql), params)
        return rows_of(self._cur)

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(_pg(sql), params or None)
