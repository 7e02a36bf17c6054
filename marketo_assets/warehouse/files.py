"""Reading what the export file looks like before DuckDB loads it."""

from __future__ import annotations

import csv
from pathlib import Path

from .nul import open_nul_free_text

DELIMITERS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
# Marketo's pages disagree on SSV: "semicolon" (bulk extract overview, bulk import) or "space"
# (the bulk lead extract page). Both are accepted; the header line decides (header_and_delimiter).
SSV_DELIMITERS = (";", " ")


def delimiter_for(file_format: str) -> str:
    try:
        return DELIMITERS[file_format.upper()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown file_format {file_format!r}; expected one of {sorted(DELIMITERS)}"
        ) from None


def read_header(path: Path, delimiter: str) -> list[str] | None:
    """The header record of the file (quoted names, embedded newlines allowed), or None if the
    file is empty. Read without NUL bytes, as the load reads it."""
    with open_nul_free_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, quotechar='"', strict=True)
        try:
            return next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise ValueError(f"cannot parse the header row of {path}: {exc}") from exc


def header_and_delimiter(
    path: Path, file_format: str, expected: list[str]
) -> tuple[list[str] | None, str]:
    """(header record, delimiter) of an export file. CSV and TSV have one delimiter. For SSV
    each of `SSV_DELIMITERS` is tried: the first whose header is exactly `expected` wins (a
    header that reads the same with both, e.g. a single column, keeps `;`); if none is, the one
    sharing most names with `expected`, for the caller's mismatch message."""
    delim = delimiter_for(file_format)
    if file_format.upper() != "SSV":
        return read_header(path, delim), delim
    found: list[tuple[list[str] | None, str]] = []
    errors: list[ValueError] = []
    for delim in SSV_DELIMITERS:
        try:
            header = read_header(path, delim)
        except ValueError as exc:
            errors.append(exc)
            continue
        if header is None or header == expected:
            return header, delim
        found.append((header, delim))
    if not found:
        raise errors[0]
    return max(found, key=lambda hd: len(set(hd[0] or ()) & set(expected)))


def count_where(path: Path, file_format: str, expected: list[str], column: str, value: str) -> int:
    """Rows of the export file (header `expected`) whose `column` is `value` (a shared export's
    rows of one partition), counted apart from the load so its row count can be checked."""
    delimiter = header_and_delimiter(path, file_format, expected)[1]
    with open_nul_free_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, quotechar='"', strict=True)
        header = next(reader, None)
        if header is None:
            return 0
        index = header.index(column)
        return sum(1 for row in reader if row and row[index] == value)
