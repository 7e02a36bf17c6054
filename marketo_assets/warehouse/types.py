"""Marketo data types -> DuckDB column types."""

from __future__ import annotations

from dataclasses import dataclass

# Marketo `dataType` (describe / describe2) -> DuckDB type. Anything not listed is VARCHAR
# (string, email, phone, text, textarea, url, reference, lead_function, array, unknown types).
DUCKDB_TYPES: dict[str, str] = {
    "integer": "BIGINT",
    "score": "BIGINT",
    "float": "DOUBLE",
    # currency: DOUBLE, not DECIMAL(18,4). Marketo does not document the scale of currency
    # values and they can carry more than 4 decimals; DECIMAL(18,4) would silently round them
    # (and overflow above 10^14). DOUBLE keeps every exported value to ~15 significant digits.
    "currency": "DOUBLE",
    # percent: DOUBLE. Typed integer by Marketo, but exported values can carry decimals.
    "percent": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    # datetime values look like 2020-01-08T18:10:26Z (UTC): an absolute instant.
    "datetime": "TIMESTAMPTZ",
}
DEFAULT_TYPE = "VARCHAR"


def duckdb_type(data_type: str | None) -> str:
    """DuckDB type for a Marketo data type (case-insensitive; unknown -> VARCHAR)."""
    return DUCKDB_TYPES.get((data_type or "").strip().lower(), DEFAULT_TYPE)


@dataclass(frozen=True)
class Column:
    """One exported column: `name` is its header in the file, `field` the Marketo REST field
    name, which is always the table column's name (a header change never changes the table),
    `type` the DuckDB type."""

    name: str
    field: str
    type: str


def columns_for(fields: list[tuple[str, str]], header_names: dict[str, str]) -> list[Column]:
    """Columns of an export of `fields` ((rest_name, marketo data_type), in export order)
    with `columnHeaderNames` applied: a field without an entry keeps its REST name."""
    header_names = header_names or {}
    return [
        Column(name=header_names.get(rest, rest), field=rest, type=duckdb_type(data_type))
        for rest, data_type in fields
    ]
