"""Marketo data types -> DuckDB column types."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Marketo `dataType` (describe / describe2) -> DuckDB type. Anything not listed is VARCHAR
# (string, email, phone, text, textarea, url, reference, lead_function, array, unknown types).
# Numbers Marketo stores with decimals: DECIMAL(38, 18), exact. It holds every value of up to
# 18 significant digits between 1e-18 and 1e20 (Salesforce-synced numbers have at most 18
# digits, up to 17 after the point): 20 digits before the point, 18 after. A value with more
# fails the load naming the column (loader.cast_expr); it is never rounded. DOUBLE would round
# anything past ~15-17 significant digits (12345678901234.5678 -> 12345678901234.568).
DECIMAL_TYPE = "DECIMAL(38,18)"

# Marketo `dataType` (describe / describe2) -> DuckDB type. Anything not listed is VARCHAR
# (string, email, phone, text, textarea, url, reference, lead_function, array, unknown types).
# docs/DATA-TYPES.md has the table with the PostgreSQL types.
DUCKDB_TYPES: dict[str, str] = {
    "integer": "BIGINT",
    "score": "BIGINT",
    "float": DECIMAL_TYPE,
    "currency": DECIMAL_TYPE,
    # percent: typed integer by Marketo, but exported values can carry decimals.
    "percent": DECIMAL_TYPE,
    "boolean": "BOOLEAN",
    "date": "DATE",
    # datetime values look like 2020-01-08T18:10:26Z (UTC): an absolute instant.
    "datetime": "TIMESTAMPTZ",
    # Not Marketo dataTypes: the project's own, for columns whose type Marketo fixes (the
    # activity export's ids, its `attributes` JSON object).
    "int32": "INTEGER",
    "json": "JSON",
}
DEFAULT_TYPE = "VARCHAR"


def duckdb_type(data_type: str | None) -> str:
    """DuckDB type for a Marketo data type (case-insensitive; unknown -> VARCHAR)."""
    return DUCKDB_TYPES.get((data_type or "").strip().lower(), DEFAULT_TYPE)


def decimal_digits(type_sql: str) -> tuple[int, int] | None:
    """(precision, scale) of a DECIMAL/NUMERIC type name, None for any other type."""
    m = re.fullmatch(
        r"\s*(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*", type_sql or "", re.I
    )
    return (int(m.group(1)), int(m.group(2))) if m else None


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
