"""The export cycle as Dagster steps: export (Marketo pool) and load (DuckDB pool).

Glue around the export engine (`marketo_assets.extract`): `run_export` and `run_load` turn the
asset's context and resources into one engine call each, its notices into log lines, its
outcome into metadata and checks, and `ExportFailed` into `dg.Failure`. The two steps meet
only through the export ledger, so a failed load is retried without spending export quota
again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets import extract
from marketo_assets.extract import EventLines, ExportOutcome, ExportSpec, LoadedPartition, OnEvent
from marketo_assets.extract.checks import Check, partitions_in_table
from marketo_assets.extract.preflight import check_before_export
from marketo_assets.extract.quota import MB
from marketo_assets.marketo import MarketoClient
from marketo_assets.warehouse import WarehouseSession

from .resources import MarketoResource, as_failure, duckdb_config, warehouse_kind, warehouse_session

# Run tag set by sensors and schedules: the source state a run exports (see ExportSpec).
GENERATION_TAG = "marketo/export_generation"
# Run tag set by the program sensor: the partitions one Marketo job exports (extract.batch).
BATCH_TAG = "marketo/export_batch"
ExtraChecks = Callable[[WarehouseSession, LoadedPartition], tuple[list[Check], dict]]


def log_events(context: dg.AssetExecutionContext) -> OnEvent:
    """The engine's notices and the client's events as log lines of the step."""
    lines = EventLines()

    def handle(event):
        if line := lines(event):
            getattr(context.log, line[0])(line[1])

    return handle


class RunTerminated(dg.DagsterError, dg.DagsterExecutionInterruptedError):
    """The run is being terminated: end the step without a retry. As a DagsterError it skips
    the step's retry policy, as an interrupt it ends the run CANCELED (docs/RELIABILITY.md)."""


@contextmanager
def stop_when_terminated(context: dg.AssetExecutionContext) -> Iterator[None]:
    """Turn the interrupt of a terminated run into RunTerminated (see there); an interrupt
    of a run nobody terminated (a pre-empted worker) keeps the retry policy."""
    try:
        yield
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
        if not isinstance(exc, RunTerminated) and _terminating(context):
            raise RunTerminated("The run was terminated.") from exc
        raise


def _terminating(context: dg.AssetExecutionContext) -> bool:
    try:
        run = context.instance.get_run_by_id(context.run.run_id)
    except Exception:  # the check must never hide the interrupt itself
        return False
    ending = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)
    return run is not None and run.status in ending


def _run_status(context: dg.AssetExecutionContext) -> extract.RunStatus:
    """What Dagster knows of a run holding a partition claim (see Ledger.claim)."""

    def run_status(run_id: str) -> str | None:
        run = context.instance.get_run_by_id(run_id)
        return None if run is None else "finished" if run.is_finished else "active"

    return run_status


def run_export(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    make_spec: Callable[[MarketoClient], ExportSpec],
    *,
    warehouse: DuckDBResource,
) -> ExportOutcome:
    """Check that the load can write to `warehouse` (before any Marketo call), build the
    request (describe, validation), then create or reattach, wait and download.
    Terminating the run cancels the Marketo job and ends the step without a retry."""
    on_event, local = log_events(context), marketo.local()
    limits = extract.ExportLimits(
        daily_quota_mb=marketo.daily_quota_mb,
        max_job_attempts=marketo.max_job_attempts,
        claim_lease_seconds=marketo.claim_lease_seconds,
        budget_mb=marketo.budget_mb,
    )
    kind, config = warehouse_kind(warehouse), duckdb_config(warehouse)
    with stop_when_terminated(context), as_failure():
        # Local state first (ledger, staging folder: created if missing), then the warehouse
        # (the engine's preflight); all before any Marketo call.
        ledger, staging = local.ledger(), local.staging()
        with marketo.client(on_event=on_event) as client:
            return extract.export(
                make_spec,
                client,
                ledger,
                staging,
                local.capabilities(),
                run_id=context.run.run_id,
                run_status=_run_status(context),
                limits=limits,
                on_event=on_event,
                preflight=lambda: check_before_export(
                    kind, warehouse.database, config, local.ledger, on_event
                ),
            )


def run_batch(
    context: dg.AssetExecutionContext, marketo: MarketoResource, asset: str
) -> tuple[extract.Batch | None, tuple[str, ...]]:
    """The run's export batch (None: export the partition alone) and the partitions whose
    rows the export's file will hold that are still to load."""
    with as_failure():
        ledger = marketo.ledger()
        tag = context.run.tags.get(BATCH_TAG, "")
        batch = extract.batch_for(ledger, asset, tag, context.partition_key)
        if batch is None:
            return None, (context.partition_key,)
        return batch, extract.open_members(ledger, asset, batch)


def run_generation(context: dg.AssetExecutionContext) -> str:
    return context.run.tags.get(GENERATION_TAG, "")


def window_bounds(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    window = context.partition_time_window
    return window.start, window.end - timedelta(seconds=1)


def run_load(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    duckdb: DuckDBResource,
    *,
    table: str,
    ledger_asset: str,
    unique_check: str,
    lineage: dict[str, object] | None = None,
    timestamp_field: str | None = None,
    extra: ExtraChecks | None = None,
    check_partitions: bool = False,
    id_column: str = "id",
    shared_column: str | None = None,
) -> dg.MaterializeResult:
    """Load the staged export of this partition into `table` (the warehouse resource's DuckDB
    file or PostgreSQL), replacing the partition's rows in one transaction, then evaluate the
    shared checks (rows = numberOfRecords, no lead twice in the partition), the asset's `extra`
    checks and, with `check_partitions`, CHECK_PARTITIONS while the connection is open. The
    staged file (personal data) is deleted afterwards."""

    def inspect(wh: WarehouseSession, loaded: LoadedPartition):
        checks, metadata = extra(wh, loaded) if extra else ([], {})
        if check_partitions:
            checks = [*checks, partitions_check(context, table, wh.partition_keys(table))]
        return check_results(checks), metadata

    local = marketo.local()
    with stop_when_terminated(context), as_failure():
        outcome = extract.load(
            local.ledger(),
            local.staging(),
            lambda: warehouse_session(duckdb),
            asset=ledger_asset,
            partition_key=context.partition_key,
            table=table,
            run_id=context.run.run_id,
            run_status=_run_status(context),
            lease_seconds=marketo.claim_lease_seconds,
            lineage=lineage,
            timestamp_field=timestamp_field,
            inspect=inspect,
            on_event=log_events(context),
            id_column=id_column,
            # Only when the staged file is on another machine: download it again by export id.
            client=lambda: marketo.client(on_event=log_events(context)),
            quota_budget_bytes=int(marketo.budget_mb * MB),
            shared_column=shared_column,
        )
    extra_checks, extra_metadata = outcome.inspected or ([], {})
    metadata: dict[str, Any] = {**table_metadata(table, outcome.loaded.result)}
    metadata.update(outcome.metadata(), **extra_metadata)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[*check_results(outcome.checks(unique_check)), *extra_checks],
    )


def check_results(checks: list[Check]) -> list[dg.AssetCheckResult]:
    """The engine's checks (plain data) as Dagster check results."""
    return [
        dg.AssetCheckResult(
            check_name=c.name, passed=c.passed, metadata=c.metadata, description=c.description
        )
        for c in checks
    ]


def table_metadata(table: str, result) -> dict[str, Any]:
    """Row count, table name and column schema of a loaded table (`result`: rows, columns)."""
    columns = [dg.TableColumn(name, type_) for name, type_ in result.columns]
    return {
        "dagster/row_count": result.rows,
        "dagster/table_name": table,
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }


def partitions_check(context: dg.AssetExecutionContext, table: str, in_table: set[str]) -> Check:
    """CHECK_PARTITIONS of this asset (see `extract.checks.partitions_in_table`)."""
    assets = [k.to_user_string() for k in sorted(context.assets_def.dependency_keys)]
    assets.append(context.asset_key.to_user_string())
    missing = lost_partitions(context, in_table)
    return partitions_in_table(missing, len(in_table), table, assets)


def lost_partitions(context: dg.AssetExecutionContext, in_table: set[str]) -> list[str]:
    """Partitions of this asset that Dagster shows as materialized, other than the one being
    loaded, whose rows are not in the table. A window without leads is materialized with 0
    rows and has none in the table: only partitions whose last materialization had rows count."""
    instance, key = context.instance, context.asset_key
    if not instance.get_materialized_partitions(key) - in_table - {context.partition_key}:
        return []  # one read, no status-cache update: the usual case, none lost
    partitions_def = context.assets_def.partitions_def
    keys = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    status = instance.get_status_by_partition(key, keys, partitions_def) or {}
    candidates = {
        k
        for k, state in status.items()
        if state == dg.AssetPartitionStatus.MATERIALIZED
        and k not in in_table
        and k != context.partition_key
    }
    rows: dict[str, int | None] = {}
    cursor = None
    while len(rows) < len(candidates):  # newest first: the first one seen is the latest
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=sorted(candidates)),
            limit=1000,
            cursor=cursor,
        )
        for record in page.records:
            if record.partition_key not in rows and record.asset_materialization:
                count = record.asset_materialization.metadata.get("dagster/row_count")
                rows[record.partition_key] = None if count is None else count.value
        if not page.has_more:
            break
        cursor = page.cursor
    return sorted(k for k in candidates if rows.get(k) != 0)
