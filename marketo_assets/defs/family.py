"""The asset-family factory: one Marketo bulk export and the raw table it loads, as two assets.

Every family (leads, lead changes, static and smart list members, and the ones to come) is the
same pair: `<x>_export_files` (the export step, `marketo_bulk_export` pool) → `<x>` (the load
step, `duckdb` pool), meeting only through the export ledger. What differs is plain data in an
`ExportFamily`: keys, partitions, table, which fields and Marketo filters, which extra checks,
what to say when Marketo answers 1035, and the UI text.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.extract import Batch
from marketo_assets.extract.checks import CHECK_PARTITIONS, CHECK_ROWS
from marketo_assets.extract.spec import spec_for
from marketo_assets.marketo import AnyFilter, MarketoClient

from .cycle import (
    ExportSpec,
    ExtraChecks,
    run_batch,
    run_export,
    run_generation,
    run_load,
)
from .resources import ExportOptions, MarketoResource

EXPORT_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
LOAD_RETRY = dg.RetryPolicy(max_retries=2, delay=10)
ROWS_CHECK = (CHECK_ROWS, "Loaded rows = numberOfRecords")
PARTITIONS_CHECK = (
    CHECK_PARTITIONS,
    "Every partition materialized with rows still has its rows in the table",
)

Context = dg.AssetExecutionContext
# Asset metadata naming the family's ledger asset (the quota_resume sensor finds families by it).
LEDGER_ASSET = "marketo/ledger_asset"


@dataclass(frozen=True)
class ExportFamily:
    """One export → load pair, described as data (see `build_family`)."""

    export_key: dg.AssetKey
    load_key: dg.AssetKey
    partitions: dg.PartitionsDefinition
    table: str  # the raw table, e.g. `marketo.leads`
    ledger_asset: str  # the export ledger's name for the pair, e.g. `marketo/leads`
    required_fields: tuple[str, ...]  # exported whatever the field selection
    # The Marketo filters of a partition: one export job each, loaded together.
    filters: Callable[[Context], Sequence[AnyFilter]]
    export_description: str
    load_description: str
    # (name, description) of the load's checks after rows = numberOfRecords; the first one is
    # the no-lead-twice check the load step evaluates, the others come from `load_checks`.
    checks: tuple[tuple[str, str], ...]
    # The load's own checks and metadata, evaluated inside the warehouse session.
    load_checks: Callable[[Context], ExtraChecks] | None = None
    check_partitions: bool = False  # add CHECK_PARTITIONS (every partition still in the table)
    timestamp_field: str | None = None  # the window's field: its min/max/nulls are in the stats
    list_fields: bool = False  # export ExportOptions.list_fields (and only their headers)
    # The exportable fields Marketo describes for this family (default: the lead fields).
    describe: Callable[[MarketoClient], list[Any]] = MarketoClient.describe_fields
    # Runs tagged with an export generation (sensor/schedule ticks) never reuse another's file.
    generation: bool = True
    unsupported_hint: str | None = None  # what to do when Marketo answers 1035
    export_metadata: Callable[[Context], dict[str, Any]] | None = None
    lineage: Callable[[Context], dict[str, object]] | None = None  # extra lineage columns
    stamp_exported_at: bool = True  # `exported_at` in the export's metadata
    off_reason: str | None = None  # a bad setting: every export fails at once with this
    # Completes the filters with what only Marketo knows (e.g. activity type names -> ids),
    # before any export call; raises ExportFailed for bad input.
    resolve_filters: Callable[[MarketoClient, Sequence[AnyFilter]], Sequence[AnyFilter]] | None = (
        None
    )
    fixed_fields: bool = False  # export every described field (not MARKETO_FIELDS), no renames
    id_field: str = "id"  # the key: unique in a partition, never NULL
    # One job for the partitions a run's BATCH_TAG names (extract.batch): their filters, and the
    # file's column that holds each row's partition key (each load reads only its rows).
    batch_filters: Callable[[Sequence[str]], Sequence[AnyFilter]] | None = None
    shared_column: str | None = None

    @property
    def unique_check(self) -> str:
        return self.checks[0][0]


def build_family(family: ExportFamily) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """The family's export and load assets."""

    @dg.asset(
        key=family.export_key,
        partitions_def=family.partitions,
        pool="marketo_bulk_export",
        group_name="marketo",
        kinds={"marketo", "csv"},
        retry_policy=EXPORT_RETRY,
        description=family.export_description,
        metadata={LEDGER_ASSET: family.ledger_asset},
    )
    def export(
        context: dg.AssetExecutionContext,
        marketo: MarketoResource,
        export_options: ExportOptions,
        warehouse: DuckDBResource,
    ) -> dg.MaterializeResult:
        if family.off_reason:
            raise dg.Failure(family.off_reason, allow_retries=False)
        batch: Batch | None = None
        members: tuple[str, ...] = (context.partition_key,) if family.shared_column else ()
        if family.shared_column and family.batch_filters:
            batch, members = run_batch(context, marketo, family.ledger_asset)
        filters = (
            family.batch_filters(batch.members)
            if batch is not None and family.batch_filters
            else family.filters(context)
        )
        generation = run_generation(context) if family.generation else ""
        options = export_options

        def spec(client: MarketoClient) -> ExportSpec:
            parts = family.resolve_filters(client, filters) if family.resolve_filters else filters
            fields = options.list_fields if family.list_fields else options.fields
            return spec_for(
                family.ledger_asset,
                batch.key if batch else context.partition_key,
                family.describe(client),
                parts,
                fields=[] if family.fixed_fields else fields,  # [] = every described field
                required=family.required_fields,
                file_format=options.format,
                headers={} if family.fixed_fields else options.column_header_names,
                exported_headers_only=family.list_fields,
                unsupported_hint=family.unsupported_hint,
                generation=batch.tag if batch else generation,
                members=members,
                member=context.partition_key if batch else "",
            )

        metadata: dict[str, Any] = dict(
            run_export(context, marketo, spec, warehouse=warehouse).metadata
        )
        if family.export_metadata:
            metadata.update(family.export_metadata(context))
        if batch is not None:  # the partitions whose rows the shared file holds
            metadata["export_batch"] = list(batch.members)
        if family.stamp_exported_at:
            metadata["exported_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return dg.MaterializeResult(metadata=metadata)

    checks = [ROWS_CHECK, *family.checks]
    if family.check_partitions:
        checks.append(PARTITIONS_CHECK)

    @dg.asset(
        key=family.load_key,
        deps=[family.export_key],
        partitions_def=family.partitions,
        pool="duckdb",
        group_name="marketo",
        kinds={"duckdb"},
        check_specs=[
            dg.AssetCheckSpec(name, asset=family.load_key, description=description)
            for name, description in checks
        ],
        retry_policy=LOAD_RETRY,
        description=family.load_description,
        metadata={LEDGER_ASSET: family.ledger_asset},
    )
    def load(
        context: dg.AssetExecutionContext, marketo: MarketoResource, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        return run_load(
            context,
            marketo,
            warehouse,
            table=family.table,
            ledger_asset=family.ledger_asset,
            unique_check=family.unique_check,
            lineage=family.lineage(context) if family.lineage else None,
            timestamp_field=family.timestamp_field,
            extra=family.load_checks(context) if family.load_checks else None,
            check_partitions=family.check_partitions,
            id_column=family.id_field,
            shared_column=family.shared_column,
        )

    return export, load
