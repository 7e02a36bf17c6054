"""What one partition's export asks Marketo for: the fields, the request(s), the ledger slot.

A window longer than Marketo's 31 days is sent as several jobs (`ExportSpec.of`), each with
its own ledger entry; the load step loads all their files as the one partition.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marketo_assets.marketo import AnyFilter, ExportRequest, LeadField

from .errors import ExportFailed

__all__ = [
    "NOT_EXPORTABLE",
    "RESERVED_COLUMNS",
    "ExportPart",
    "ExportSpec",
    "check_columns",
    "safe_name",
    "select_fields",
    "spec_for",
]

# Lineage columns every loaded table has next to the exported fields.
RESERVED_COLUMNS = ("_partition_key", "_export_id", "_loaded_at", "_list_id")
# Fields Marketo lists in describe but will not export.
NOT_EXPORTABLE = {"formula"}


@dataclass(frozen=True)
class ExportPart:
    """One Marketo job of a partition's export: its request, ledger hash and ledger record."""

    index: int
    request: ExportRequest
    request_hash: str
    record: dict


@dataclass(frozen=True)
class ExportSpec:
    """One partition's export: which ledger slot it fills and what Marketo is asked for.

    Usually one Marketo job (`request`). A window longer than Marketo's 31 days is sent as
    several jobs (`parts`, all of them in window order; build it with `ExportSpec.of`): each
    is created, reattached and recorded in the ledger on its own, and the load step loads all
    their files in one transaction as the one partition."""

    asset: str
    partition_key: str
    request: ExportRequest
    field_types: list[tuple[str, str]]
    # What to tell the user when Marketo answers 1035 (filter not enabled for the subscription).
    unsupported_hint: str | None = None
    # Which state of the source this export is for (e.g. the list's updatedAt, the schedule
    # tick): an export staged for another generation is never reused. Empty = any.
    generation: str = ""
    # Every job of a partition exported as several (`request` is the first); empty for one.
    parts: tuple[ExportRequest, ...] = ()
    # The partitions whose rows the file holds, each loaded on its own with a row filter (one
    # job for several partitions, see batch.py); empty: the file is `partition_key`'s alone.
    members: tuple[str, ...] = ()
    # The partition this step materializes, when the ledger slot `partition_key` is a batch.
    member: str = ""

    @property
    def step_key(self) -> str:
        """The partition the step runs for (claimed, handed to its load, stopped by quota)."""
        return self.member or self.partition_key

    @classmethod
    def of(
        cls,
        asset: str,
        partition_key: str,
        requests: Sequence[ExportRequest],
        field_types: list[tuple[str, str]],
        **options: Any,
    ) -> ExportSpec:
        """A spec for one or several jobs (e.g. the windows of `split_window`)."""
        first, *rest = requests
        parts = (first, *rest) if rest else ()
        return cls(asset, partition_key, first, field_types, parts=parts, **options)

    def _hash(self, request: ExportRequest) -> str:
        payload: object = request.payload()
        if request.export_type != "leads":  # (lead hashes stay as they were)
            payload = {"payload": payload, "export_type": request.export_type}
        if self.generation:
            payload = {"payload": payload, "generation": self.generation}
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def request_hash(self) -> str:
        return self._hash(self.request)

    def ledger_record(self) -> dict:
        return {
            "payload": self.request.payload(),
            "field_types": self.field_types,
            "export_type": self.request.export_type,
        }

    def plan(self) -> list[ExportPart]:
        """The jobs to run. A part's ledger record lists the hashes of all parts, so the load
        step finds the whole set."""
        if not self.parts:
            return [ExportPart(0, self.request, self.request_hash, self.ledger_record())]
        hashes = [self._hash(r) for r in self.parts]
        return [
            ExportPart(
                i,
                request,
                hashes[i],
                {
                    "payload": request.payload(),
                    "field_types": self.field_types,
                    "export_type": request.export_type,
                    "part": i,
                    "parts": hashes,
                },
            )
            for i, request in enumerate(self.parts)
        ]


def safe_name(text: str) -> str:
    """`text` as one file-name component."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def select_fields(
    described: Sequence[LeadField], wanted: list[str], required: list[str]
) -> list[tuple[str, str]]:
    """(name, data_type) pairs to export; validates names against describe before any job."""
    types: dict[str, Any] = {f.name: f.data_type for f in described}
    if wanted:
        unknown = [name for name in wanted if name not in types]
        if unknown:
            raise ExportFailed(
                f"Unknown Marketo lead fields: {', '.join(unknown)}. Use REST names from "
                "describe (`GET /rest/v1/leads/describe2.json`) in the `fields` option.",
                retryable=False,
            )
        names = list(dict.fromkeys(wanted))
    else:
        names = [f.name for f in described if f.data_type not in NOT_EXPORTABLE]
    for name in reversed(required):
        if name not in names:
            names.insert(0, name)
    return [(name, types[name]) for name in names]


def check_columns(request: ExportRequest) -> None:
    """Table columns are the REST field names (DuckDB names ignore case) next to the lineage
    columns; a clash would fail the load after the export spent quota, so fail now. Headers
    only label the file's columns, but are held to the same rule so the file is unambiguous."""
    fields: dict[str, str] = {name: name for name in RESERVED_COLUMNS}
    for field_name in request.fields:
        if field_name.casefold() in fields:
            raise ExportFailed(
                f"The export's fields {fields[field_name.casefold()]!r} and {field_name!r} "
                "would be one table column (DuckDB column names ignore case). Export only "
                "one of them (fields, MARKETO_FIELDS).",
                retryable=False,
            )
        fields[field_name.casefold()] = field_name
    seen: dict[str, str] = {name: name for name in RESERVED_COLUMNS}
    for field_name, header in zip(request.fields, request.headers(), strict=True):
        folded = header.casefold()
        if folded in seen:
            raise ExportFailed(
                f"The export's column {header!r} (field {field_name!r}) clashes with "
                f"column {seen[folded]!r}: DuckDB column names ignore case and "
                f"{', '.join(RESERVED_COLUMNS)} are lineage columns. Give the field "
                "another header in column_header_names (MARKETO_COLUMN_HEADER_NAMES).",
                retryable=False,
            )
        seen[folded] = header


def spec_for(
    asset: str,
    partition_key: str,
    described: Sequence[LeadField],
    filters: Sequence[AnyFilter],
    *,
    fields: list[str],
    required: Sequence[str],
    file_format: str,
    headers: dict[str, str],
    exported_headers_only: bool = False,
    **options: Any,
) -> ExportSpec:
    """The spec of one partition: a job per filter (loaded together) of the `fields` (every
    exportable field when empty) and the `required` ones, with the header names `headers` (a
    name for a field not exported is refused, unless `exported_headers_only` drops it).
    `options`: ExportSpec's (unsupported_hint, generation)."""
    field_types = select_fields(described, fields, list(required))
    names = [name for name, _ in field_types]
    if exported_headers_only:
        headers = {k: v for k, v in headers.items() if k in names}
    requests = [
        ExportRequest(fields=names, filter=f, format=file_format, column_header_names=headers)
        for f in filters
    ]
    return ExportSpec.of(asset, partition_key, requests, field_types, **options)
