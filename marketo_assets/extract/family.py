"""What the export engine needs to know of an export family, without Dagster (the assets are
built by defs/family.py): its name and fields, and the request of one partition's export."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from marketo_assets.marketo import AnyFilter, MarketoClient

from .batch import Batch, batch_for, open_members
from .ledger_base import Ledger
from .spec import ExportSpec, spec_for

Describe = Callable[[MarketoClient], list[Any]]
Resolve = Callable[[MarketoClient, Sequence[AnyFilter]], Sequence[AnyFilter]]


class ExportOptions(Protocol):
    """What each export asks for (the `export_options` resource)."""

    @property
    def fields(self) -> list[str]: ...
    @property
    def column_header_names(self) -> dict[str, str]: ...
    @property
    def format(self) -> str: ...
    @property
    def list_fields(self) -> list[str]: ...


@dataclass(frozen=True, kw_only=True)
class Family:
    """One export family's request and load settings."""

    name: str  # the ledger's asset name, e.g. `marketo/leads`; the table is `marketo.leads`
    required_fields: tuple[str, ...]  # exported whatever the field selection
    timestamp_field: str | None = None  # the window's field: its min/max/nulls are in the stats
    list_fields: bool = False  # export the options' list_fields (and only their headers)
    describe: Describe = MarketoClient.describe_fields  # the exportable fields
    # A snapshot of Marketo's current state (not a createdAt window): `exported_at` in the
    # metadata, and runs of a sensor/schedule tick (export generation) never reuse another's file.
    snapshot: bool = True
    unsupported_hint: str | None = None  # what to do when Marketo answers 1035
    resolve_filters: Resolve | None = None  # completes the filters (activity type names -> ids)
    fixed_fields: bool = False  # export every described field (not MARKETO_FIELDS), no renames
    id_field: str = "id"  # the key: unique in a partition, never NULL
    # One job for the partitions a run's batch tag names (batch.py): their filters, and the
    # file's column that holds each row's partition key (each load reads only its rows).
    batch_filters: Callable[[Sequence[str]], Sequence[AnyFilter]] | None = None
    shared_column: str | None = None

    @property
    def table(self) -> str:
        return self.name.replace("/", ".")

    def request(
        self,
        ledger: Ledger,
        key: str,
        filters: Sequence[AnyFilter],
        options: ExportOptions,
        *,
        batch_tag: str = "",
        generation: str = "",
    ) -> tuple[Batch | None, Callable[[MarketoClient], ExportSpec]]:
        """The batch partition `key`'s export serves (`batch_tag`: the run's; None: the
        partition alone) and the spec of its request (built once describe is known)."""
        batch = batch_for(ledger, self.name, batch_tag, key) if self.batch_filters else None
        members: tuple[str, ...] = (key,) if self.shared_column else ()
        if batch and self.batch_filters:  # one job for the partitions the tag names
            members = open_members(ledger, self.name, batch)
            filters = self.batch_filters(batch.members)

        def spec(client: MarketoClient) -> ExportSpec:
            parts = self.resolve_filters(client, filters) if self.resolve_filters else filters
            fields = options.list_fields if self.list_fields else options.fields
            return spec_for(
                self.name,
                batch.key if batch else key,
                self.describe(client),
                parts,
                fields=[] if self.fixed_fields else fields,  # [] = every described field
                required=self.required_fields,
                file_format=options.format,
                headers={} if self.fixed_fields else options.column_header_names,
                exported_headers_only=self.list_fields,
                unsupported_hint=self.unsupported_hint,
                generation=batch.tag if batch else generation,
                members=members,
                member=key if batch else "",
            )

        return batch, spec

    def load_options(self) -> dict[str, Any]:
        """`extract.load`'s keyword arguments for this family."""
        return {
            "asset": self.name,
            "table": self.table,
            "timestamp_field": self.timestamp_field,
            "id_column": self.id_field,
            "shared_column": self.shared_column,
        }
