"""The asset-family factory: every Marketo bulk export family is the same pair of assets,
`<x>_export_files` (export step) → `<x>` (load step), meeting only through the export ledger
(docs/ARCHITECTURE.md#one-partition-end-to-end). What differs is data in an `ExportFamily`."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets import extract
from marketo_assets.extract import ExportSpec, LoadedPartition
from marketo_assets.extract.checks import CHECK_PARTITIONS, CHECK_ROWS, Check
from marketo_assets.extract.preflight import check_before_export
from marketo_assets.extract.quota import MB
from marketo_assets.extract.spec import spec_for
from marketo_assets.marketo import AnyFilter, MarketoClient
from marketo_assets.warehouse import WarehouseSession

from .cycle import (
    BATCH_TAG,
    GENERATION_TAG,
    check_results,
    log_events,
    partitions_check,
    run_status,
    stop_when_terminated,
    table_metadata,
)
from .resources import (
    ExportOptions,
    MarketoResource,
    as_failure,
    duckdb_config,
    warehouse_kind,
    warehouse_session,
)

EXPORT_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
LOAD_RETRY = dg.RetryPolicy(max_retries=2, delay=10)
ROWS_CHECK = (CHECK_ROWS, "Loaded rows = numberOfRecords")
PARTITIONS_CHECK = (
    CHECK_PARTITIONS,
    "Every partition materialized with rows still has its rows in the table",
)
# Said of every family in the UI after its own description (docs/ASSETS.md#runs-pools-and-checks).
EXPORT_STEP = (
    " Creates (or reattaches to) the Marketo job, waits, downloads the file with Range resume, "
    "checks its SHA-256 and stages it for the load step. Runs in the `marketo_bulk_export` "
    "pool (shared by every bulk export); terminating the run cancels the Marketo job."
)
LOAD_STEP = (
    " Each load replaces its partition's rows in one transaction: re-runs and backfills never "
    "duplicate or lose a row. Runs in the `duckdb` pool (one writer)."
)

Context = dg.AssetExecutionContext
ExtraChecks = Callable[[WarehouseSession, LoadedPartition], tuple[list[Check], dict]]
# Asset metadata naming the family's ledger asset (the quota_resume sensor finds families by it).
LEDGER_ASSET = "marketo/ledger_asset"


def asset_job(name: str, keys: Sequence[dg.AssetKey], description: str):
    """A job of these assets, in-process: one process per run, pools still apply per step."""
    selection = dg.AssetSelection.assets(*keys)
    executor = dg.in_process_executor
    return dg.define_asset_job(name, selection, description=description, executor_def=executor)


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
    export_description: str  # what is exported (EXPORT_STEP is added)
    load_description: str  # the table and its key (LOAD_STEP is added)
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


def build_family(family: ExportFamily) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """The family's export and load assets."""

    @dg.asset(
        key=family.export_key,
        partitions_def=family.partitions,
        pool="marketo_bulk_export",
        group_name="marketo",
        kinds={"marketo", "csv"},
        retry_policy=EXPORT_RETRY,
        description=family.export_description + EXPORT_STEP,
        metadata={LEDGER_ASSET: family.ledger_asset},
    )
    def export(
        context: Context,
        marketo: MarketoResource,
        export_options: ExportOptions,
        warehouse: DuckDBResource,
    ) -> dg.MaterializeResult:
        if family.off_reason:
            raise dg.Failure(family.off_reason, allow_retries=False)
        key, name, options = context.partition_key, family.ledger_asset, export_options
        members: tuple[str, ...] = (key,) if family.shared_column else ()
        filters, tags = family.filters(context), context.run.tags
        generation = tags.get(GENERATION_TAG, "") if family.generation else ""
        with stop_when_terminated(context), as_failure():
            # Local state first (ledger, staging folder: created if missing), then the
            # warehouse (the engine's preflight); all before any Marketo call.
            local, on_event = marketo.local(), log_events(context)
            ledger, staging = local.ledger(), local.staging()
            tag = tags.get(BATCH_TAG, "") if family.batch_filters else ""
            batch = extract.batch_for(ledger, name, tag, key)
            if batch and family.batch_filters:  # one job for the partitions the tag names
                members = extract.open_members(ledger, name, batch)
                filters = family.batch_filters(batch.members)

            def spec(client: MarketoClient) -> ExportSpec:
                parts = (
                    family.resolve_filters(client, filters) if family.resolve_filters else filters
                )
                fields = options.list_fields if family.list_fields else options.fields
                return spec_for(
                    name,
                    batch.key if batch else key,
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
                    member=key if batch else "",
                )

            kind, config = warehouse_kind(warehouse), duckdb_config(warehouse)
            with marketo.client(on_event=on_event) as client:
                outcome = extract.export(
                    spec,
                    client,
                    ledger,
                    staging,
                    local.capabilities(),
                    run_id=context.run.run_id,
                    run_status=run_status(context),
                    limits=marketo.export_limits(),
                    on_event=on_event,
                    preflight=lambda: check_before_export(
                        kind, warehouse.database, config, local.ledger, on_event
                    ),
                )
        metadata: dict[str, Any] = dict(outcome.metadata)
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
        description=family.load_description + LOAD_STEP,
        metadata={LEDGER_ASSET: family.ledger_asset},
    )
    def load(
        context: Context, marketo: MarketoResource, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        # The family's checks and CHECK_PARTITIONS run while the warehouse is open.
        extra = family.load_checks(context) if family.load_checks else None

        def inspect(wh: WarehouseSession, loaded: LoadedPartition):
            checks, metadata = extra(wh, loaded) if extra else ([], {})
            if family.check_partitions:
                in_table = wh.partition_keys(family.table)
                checks = [*checks, partitions_check(context, family.table, in_table)]
            return check_results(checks), metadata

        local = marketo.local()
        with stop_when_terminated(context), as_failure():
            outcome = extract.load(
                local.ledger(),
                local.staging(),
                lambda: warehouse_session(warehouse),
                asset=family.ledger_asset,
                partition_key=context.partition_key,
                table=family.table,
                run_id=context.run.run_id,
                run_status=run_status(context),
                lease_seconds=marketo.claim_lease_seconds,
                lineage=family.lineage(context) if family.lineage else None,
                timestamp_field=family.timestamp_field,
                inspect=inspect,
                on_event=log_events(context),
                id_column=family.id_field,
                # Only when the staged file is on another machine: download it again by id.
                client=lambda: marketo.client(on_event=log_events(context)),
                quota_budget_bytes=int(marketo.budget_mb * MB),
                shared_column=family.shared_column,
            )
        extra_checks, extra_metadata = outcome.inspected or ([], {})
        metadata = {**table_metadata(family.table, outcome.loaded.result)}
        metadata.update(outcome.metadata(), **extra_metadata)
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[*check_results(outcome.checks(family.checks[0][0])), *extra_checks],
        )

    return export, load
