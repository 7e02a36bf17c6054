"""The asset-family factory: every bulk export family is an `<x>_export_files` → `<x>` pair,
meeting only through the export ledger (docs/ARCHITECTURE.md#one-partition-end-to-end)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets import extract
from marketo_assets.extract import LoadedPartition
from marketo_assets.extract.checks import CHECK_PARTITIONS, CHECK_ROWS, Check
from marketo_assets.extract.family import Family
from marketo_assets.extract.preflight import check_before_export
from marketo_assets.extract.quota import MB
from marketo_assets.marketo import AnyFilter
from marketo_assets.warehouse import WarehouseSession

from . import cycle, resources

EXPORT_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
LOAD_RETRY = dg.RetryPolicy(max_retries=2, delay=10)
ROWS_CHECK = (CHECK_ROWS, "Loaded rows = numberOfRecords")
PARTITIONS_CHECK = (CHECK_PARTITIONS, "Each partition materialized with rows has them in the table")
# Said of every family in the UI after its own description (docs/ASSETS.md#runs-pools-and-checks).
EXPORT_STEP = (
    " Creates or reattaches to the Marketo job, downloads (Range resume, SHA-256) and stages the "
    "file. Pool `marketo_bulk_export` (all bulk exports); terminating the run cancels the job."
)
LOAD_STEP = " Re-runs replace the partition's rows in one transaction. Pool `duckdb` (one writer)."

Context = dg.AssetExecutionContext
Pair = tuple[dg.AssetsDefinition, dg.AssetsDefinition]  # export, load
ExtraChecks = Callable[[WarehouseSession, LoadedPartition], tuple[list[Check], dict]]
# Asset metadata naming the family's ledger asset (the quota_resume sensor finds families by it).
LEDGER_ASSET = "marketo/ledger_asset"


def asset_job(name: str, keys: Sequence[dg.AssetKey], description: str):
    """A job of these assets, in-process: one process per run, pools still apply per step."""
    selection = dg.AssetSelection.assets(*keys)
    executor = dg.in_process_executor
    return dg.define_asset_job(name, selection, description=description, executor_def=executor)


@dataclass(frozen=True, kw_only=True)
class ExportFamily(Family):
    """An export → load pair as data: the engine's (`name` is the load asset's key), the assets'."""

    export_key: dg.AssetKey
    partitions: dg.PartitionsDefinition
    filters: Callable[[Context], Sequence[AnyFilter]]  # one job each, loaded together
    export_description: str  # what is exported (EXPORT_STEP is added)
    load_description: str  # the table and its key (LOAD_STEP is added)
    # (name, description) of the load's checks after rows = numberOfRecords: first the key's
    # uniqueness (the load step's), then those of `load_checks` (run in the warehouse session).
    checks: tuple[tuple[str, str], ...]
    load_checks: Callable[[Context], ExtraChecks] | None = None
    check_partitions: bool = False  # add CHECK_PARTITIONS (every partition still in the table)
    export_metadata: Callable[[Context], dict[str, Any]] | None = None
    lineage: Callable[[Context], dict[str, object]] | None = None  # extra lineage columns
    off_reason: str | None = None  # a bad setting: every export fails at once with this

    @property
    def load_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.name.split("/"))


def build_family(family: ExportFamily) -> Pair:
    """The family's export and load assets."""

    @dg.asset(
        key=family.export_key,
        partitions_def=family.partitions,
        pool="marketo_bulk_export",
        group_name="marketo",
        kinds={"marketo", "csv"},
        retry_policy=EXPORT_RETRY,
        description=family.export_description + EXPORT_STEP,
        metadata={LEDGER_ASSET: family.name},
    )
    def export(
        context: Context,
        marketo: resources.MarketoResource,
        export_options: resources.ExportOptions,
        warehouse: DuckDBResource,
    ) -> dg.MaterializeResult:
        if family.off_reason:
            raise dg.Failure(family.off_reason, allow_retries=False)
        key, tags = context.partition_key, context.run.tags
        generation = tags.get(cycle.GENERATION_TAG, "") if family.snapshot else ""
        with cycle.stop_when_terminated(context), resources.as_failure():
            # Local state (created if missing), then the warehouse (preflight), then Marketo.
            local, on_event = marketo.local(), cycle.log_events(context)
            ledger, staging = local.ledger(), local.staging()
            batch, spec = family.request(
                ledger,
                key,
                family.filters(context),
                export_options,
                batch_tag=tags.get(cycle.BATCH_TAG, ""),
                generation=generation,
            )
            kind = resources.warehouse_kind(warehouse)
            config = resources.duckdb_config(warehouse)
            with marketo.client(on_event=on_event) as client:
                outcome = extract.export(
                    spec,
                    client,
                    ledger,
                    staging,
                    local.capabilities(),
                    run_id=context.run.run_id,
                    run_status=cycle.run_status(context),
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
        if family.snapshot:
            metadata["exported_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return dg.MaterializeResult(metadata=metadata)

    checks = [ROWS_CHECK, *family.checks, *([PARTITIONS_CHECK] if family.check_partitions else [])]

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
        metadata={LEDGER_ASSET: family.name},
    )
    def load(
        context: Context, marketo: resources.MarketoResource, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        # The family's checks and CHECK_PARTITIONS run while the warehouse is open.
        extra = family.load_checks(context) if family.load_checks else None

        def inspect(wh: WarehouseSession, loaded: LoadedPartition):
            checks, metadata = extra(wh, loaded) if extra else ([], {})
            if family.check_partitions:
                in_table = wh.partition_keys(family.table)
                checks = [*checks, cycle.partitions_check(context, family.table, in_table)]
            return cycle.check_results(checks), metadata

        local = marketo.local()
        with cycle.stop_when_terminated(context), resources.as_failure():
            outcome = extract.load(
                local.ledger(),
                local.staging(),
                lambda: resources.warehouse_session(warehouse),
                partition_key=context.partition_key,
                run_id=context.run.run_id,
                run_status=cycle.run_status(context),
                lease_seconds=marketo.claim_lease_seconds,
                lineage=family.lineage(context) if family.lineage else None,
                inspect=inspect,
                on_event=cycle.log_events(context),
                # Only when the staged file is on another machine: download it again by id.
                client=lambda: marketo.client(on_event=cycle.log_events(context)),
                quota_budget_bytes=int(marketo.budget_mb * MB),
                **family.load_options(),
            )
        extra_checks, extra_metadata = outcome.inspected or ([], {})
        metadata = cycle.table_metadata(family.table, outcome.loaded.result) | outcome.metadata()
        results = cycle.check_results(outcome.checks(family.checks[0][0])) + extra_checks
        return dg.MaterializeResult(metadata=metadata | extra_metadata, check_results=results)

    return export, load
