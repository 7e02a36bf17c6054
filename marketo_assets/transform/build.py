"""What a `dbt build` step needs besides Dagster: the loaders' DuckDB file as dbt sees it, and
the row counts of the tables it built (`with_row_counts`)."""

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from marketo_assets.settings import load_settings
from marketo_assets.warehouse.counts import CountError, count_rows

E = TypeVar("E")


@contextmanager
def absolute_duckdb_path() -> Iterator[Path]:
    """dbt runs inside dbt_project/: hand it the loaders' DuckDB file as an absolute path, so
    a relative DUCKDB_PATH means the same file for both."""
    database = load_settings().duckdb_path.resolve()
    before = os.environ.get("DUCKDB_PATH")
    os.environ["DUCKDB_PATH"] = str(database)
    try:
        yield database
    finally:
        if before is None:
            os.environ.pop("DUCKDB_PATH", None)
        else:
            os.environ["DUCKDB_PATH"] = before


def with_row_counts(
    events: Iterable[E],
    database: Path | None,
    table_of: Callable[[E], str | None],
    counted: Callable[[E, int], E],
    warn: Callable[[str], None],
) -> Iterator[E]:
    """The build's events, each model's (`table_of`: its `schema.table`) with its row count
    (`counted(event, rows)`).

    dagster-dbt's `fetch_row_counts()` queries each table from this process while `dbt build`
    (another process) still holds DuckDB's only write lock, so it only gets through when its
    connect retries outlast the build. Instead the events are held until dbt exits, then every
    built table is counted over one read-only connection; the step still holds the `duckdb`
    pool slot, so no load writes meanwhile. If dbt fails (a failing test), what was built is
    still reported before the step fails.
    """
    held: list[E] = []
    error: Exception | None = None
    try:
        for event in events:
            held.append(event)
    except Exception as exc:  # re-raised below, after reporting what was built
        error = exc
    tables = [table_of(e) for e in held]
    try:
        counts = count_rows(database, [t for t in tables if t])
    except CountError as exc:
        warn(f"Row counts skipped: {exc}")
        counts = {}
    for event, table in zip(held, tables, strict=True):
        count = counts.get(table) if table else None
        yield event if count is None else counted(event, count)
    if error is not None:
        raise error
