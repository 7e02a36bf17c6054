"""Dagster glue shared by the steps: events, checks, run termination and status, metadata."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from marketo_assets import extract
from marketo_assets.extract import EventLines, OnEvent
from marketo_assets.extract.checks import Check, partitions_in_table
from marketo_assets.extract.windows import lead_window
from marketo_assets.settings import ProjectSettings

# Run tag set by sensors and schedules: the source state a run exports (see ExportSpec).
GENERATION_TAG = "marketo/export_generation"
# Run tag set by the program sensor: the partitions one Marketo job exports (extract.batch).
BATCH_TAG = "marketo/export_batch"


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
    """A terminated run's interrupt as RunTerminated; any other (pre-empted worker) retries."""
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


def run_status(context: dg.AssetExecutionContext) -> extract.RunStatus:
    """What Dagster knows of a run holding a partition claim (see Ledger.claim)."""

    def status(run_id: str) -> str | None:
        run = context.instance.get_run_by_id(run_id)
        return None if run is None else "finished" if run.is_finished else "active"

    return status


def window_bounds(
    context: dg.AssetExecutionContext, settings: ProjectSettings | None = None
) -> tuple[datetime, datetime]:
    """The partition's window `[start, end - 1 s]`; cut at the start date with `settings`."""
    window = context.partition_time_window
    bounds = window.start, window.end - timedelta(seconds=1)
    return lead_window(settings, *bounds) if settings else bounds


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
    """CHECK_PARTITIONS: the partitions Dagster shows as materialized with rows (a window
    without leads has 0), other than the one being loaded, whose rows are not in the table."""
    assets = [k.to_user_string() for k in sorted(context.assets_def.dependency_keys)]
    assets.append(context.asset_key.to_user_string())
    instance, key = context.instance, context.asset_key
    if not instance.get_materialized_partitions(key) - in_table - {context.partition_key}:
        return partitions_in_table([], len(in_table), table, assets)  # the usual case: one read
    partitions_def = context.assets_def.partitions_def
    keys = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    status = instance.get_status_by_partition(key, keys, partitions_def) or {}
    done = {k for k, state in status.items() if state == dg.AssetPartitionStatus.MATERIALIZED}
    candidates = done - in_table - {context.partition_key}

    def rows(partition: str) -> object:  # `dagster/row_count` of its last materialization
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        event = records[0].asset_materialization if records else None
        count = event.metadata.get("dagster/row_count") if event else None
        return None if count is None else count.value

    missing = sorted(k for k in candidates if rows(k) != 0)
    return partitions_in_table(missing, len(in_table), table, assets)
