"""Incremental updates: leads changed on each day, exported with Marketo's `updatedAt` filter.

`marketo/lead_change_export_files` → `marketo/lead_changes`, daily partitions. Marketo's
updatedAt filter matches the *last change to any field*, so the visible `updatedAt` column of a
returned lead can fall outside the day: such rows are kept (never filtered away) and counted in
the metadata.

Not every subscription has the updatedAt filter (Marketo answers 1035). The daily schedule
checks once (a 1-second updatedAt job created and cancelled: no quota used), remembers the
answer in a small JSON file next to the export ledger, and stays off (skips, saying why) while
the filter is not enabled; a run started by hand fails with the same explanation.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.extract import FilterCapabilities
from marketo_assets.marketo import ExportFilter, ExportRequest, MarketoClient
from marketo_assets.settings import SettingsError, load_settings
from marketo_assets.warehouse import WarehouseSession

from .cycle import (
    CHECK_PARTITIONS,
    CHECK_ROWS,
    GENERATION_TAG,
    ExportSpec,
    LoadedPartition,
    run_export,
    run_generation,
    run_load,
    select_fields,
    window_bounds,
)
from .partitions import lead_change_days, lead_changes_future_start
from .resources import ExportOptions, MarketoResource

LEAD_CHANGE_EXPORTS = dg.AssetKey(["marketo", "lead_change_export_files"])
LEAD_CHANGES = dg.AssetKey(["marketo", "lead_changes"])
LEAD_CHANGES_TABLE = "marketo.lead_changes"
LEDGER_ASSET = "marketo/lead_changes"
CHECK_UNIQUE = "lead_ids_unique_in_partition"

_settings = load_settings()
UPDATED_AT_1035_HINT = (
    "Incremental updates (marketo/lead_changes) stay off until Marketo Support enables the "
    "updatedAt filter for this subscription; the lead partitions (createdAt filter) keep "
    "working and a re-export of the open window picks up changes meanwhile."
)
SENSOR_CLIENT = {"max_attempts": 3, "max_retry_seconds": 20.0, "request_timeout": 20.0}


def _capability_note() -> str:
    """Shown in the asset description: what the remembered 1035 state is (read at load)."""
    path = _settings.ledger_path.with_name("filter_capabilities.json")
    status = FilterCapabilities(path).get("updatedAt")
    if status is None:
        return "Filter status: not checked yet (the daily schedule checks it first)."
    when = status.checked_at.isoformat(timespec="seconds")
    if status.supported:
        return f"Filter status: enabled (checked {when})."
    return (
        f"Filter status: NOT enabled for this subscription (1035, {status.source} at {when}): "
        "the daily schedule skips. Ask Marketo Support to enable the updatedAt filter."
    )


@dg.asset(
    key=LEAD_CHANGE_EXPORTS,
    partitions_def=lead_change_days,
    pool="marketo_bulk_export",
    group_name="marketo",
    kinds={"marketo", "csv"},
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
    description=(
        "Marketo bulk lead export of the leads *changed* on this partition's day: `updatedAt` "
        "filter `[day start, next day start - 1 s]`. Same cycle as the lead exports (ledger, "
        "reattach, quota, checksum, cancellation). Needs the updatedAt filter: without it "
        "Marketo answers 1035 and the run fails without retries, saying so. " + _capability_note()
    ),
)
def lead_change_export_files(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    export_options: ExportOptions,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    start, end = window_bounds(context)

    def spec(client: MarketoClient) -> ExportSpec:
        field_types = select_fields(
            client.describe_fields(), export_options.fields, required=["id", "updatedAt"]
        )
        request = ExportRequest(
            fields=[name for name, _ in field_types],
            filter=ExportFilter.updated_at(start, end),
            format=export_options.format,
            column_header_names=export_options.column_header_names,
        )
        return ExportSpec(
            LEDGER_ASSET,
            context.partition_key,
            request,
            field_types,
            unsupported_hint=UPDATED_AT_1035_HINT,
            generation=run_generation(context),
        )

    outcome = run_export(context, marketo, spec, warehouse=duckdb)
    outcome.metadata["exported_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return dg.MaterializeResult(metadata=outcome.metadata)


@dg.asset(
    key=LEAD_CHANGES,
    deps=[LEAD_CHANGE_EXPORTS],
    partitions_def=lead_change_days,
    pool="duckdb",
    group_name="marketo",
    kinds={"duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_ROWS, asset=LEAD_CHANGES, description="Loaded rows = numberOfRecords"
        ),
        dg.AssetCheckSpec(
            CHECK_UNIQUE, asset=LEAD_CHANGES, description="No lead twice in a partition"
        ),
        dg.AssetCheckSpec(
            CHECK_PARTITIONS,
            asset=LEAD_CHANGES,
            description="Every partition materialized with rows still has its rows in the table",
        ),
    ],
    retry_policy=dg.RetryPolicy(max_retries=2, delay=10),
)
def lead_changes(
    context: dg.AssetExecutionContext, marketo: MarketoResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Table `marketo.lead_changes`: the leads changed on each day (key `_partition_key`, `id`),
    same typed columns as `marketo.leads` plus `_partition_key` (`YYYY-MM-DD`), `_export_id`,
    `_loaded_at`. Each partition's load replaces that day's rows in one transaction. Rows whose
    visible `updatedAt` lies outside the day are kept (Marketo's filter matches the last change
    to any field); their number is in `rows_updated_at_outside_day`. Runs in the `duckdb` pool.
    """
    start, end = window_bounds(context)

    def outside(wh: WarehouseSession, loaded: LoadedPartition) -> tuple[list, dict]:
        count = wh.rows_outside_window(
            LEAD_CHANGES_TABLE,
            context.partition_key,
            loaded.timestamp_column or "updatedAt",
            start,
            end,
        )
        return [], {
            "rows_updated_at_outside_day": count,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
        }

    return run_load(
        context,
        marketo,
        duckdb,
        table=LEAD_CHANGES_TABLE,
        ledger_asset=LEDGER_ASSET,
        unique_check=CHECK_UNIQUE,
        timestamp_field="updatedAt",
        extra=outside,
        check_partitions=True,
    )


refresh_lead_changes_job = dg.define_asset_job(
    "refresh_lead_changes",
    selection=dg.AssetSelection.assets(LEAD_CHANGE_EXPORTS, LEAD_CHANGES),
    description="Export and load the leads changed on one day (updatedAt filter).",
    executor_def=dg.in_process_executor,  # one process per run; pools still apply per step
)


def updated_at_filter_status(
    marketo: MarketoResource, now: datetime, recheck: timedelta | None, log=None
) -> tuple[bool, str]:
    """(enabled, explanation). Probes Marketo only when the answer is unknown or stale."""
    store = marketo.capabilities()
    if store.needs_check("updatedAt", recheck, now=datetime.now(UTC)):
        probe_start = now.astimezone(UTC).replace(microsecond=0) - timedelta(days=1)
        with marketo.client(**SENSOR_CLIENT) as client:
            supported = client.supports_filter(
                ExportFilter.updated_at(probe_start, probe_start + timedelta(seconds=1))
            )
        message = None if supported else "Marketo answered 1035 to a 1-second updatedAt probe job"
        store.record("updatedAt", supported, source="probe", message=message)
        if log:
            log.info(f"updatedAt filter enabled for this subscription: {supported}")
    status = store.get("updatedAt")
    assert status is not None
    when = status.checked_at.isoformat(timespec="seconds")
    if status.supported:
        return True, f"updatedAt filter enabled (checked {when})"
    return False, (
        "Incremental updates are off: Marketo's updatedAt filter is not enabled for this "
        f"subscription (1035, {status.source} at {when}). Ask Marketo Support to enable it. "
        f"Checked again after MARKETO_FILTER_RECHECK_HOURS, or delete {store.path} to check on "
        "the next tick. Lead partitions (createdAt) are not affected."
    )


def build_lead_changes_schedule(
    recheck_hours: float = 24,
    cron_schedule: str = "30 6 * * *",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    recheck = timedelta(hours=recheck_hours) if recheck_hours else None

    @dg.schedule(
        name="daily_lead_changes_refresh",
        job=refresh_lead_changes_job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=default_status,
        description=(
            "Every day at 06:30 UTC, export yesterday's and today's lead changes (updatedAt "
            "filter). Skips, saying why, when the subscription lacks the updatedAt filter "
            "(1035, detected once with a probe job and remembered)."
        ),
    )
    def daily_lead_changes_refresh(
        context: dg.ScheduleEvaluationContext, marketo: MarketoResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        scheduled = context.scheduled_execution_time or datetime.now(UTC)
        reason = lead_changes_future_start(scheduled)
        if reason:  # before the probe: nothing could run anyway
            raise SettingsError(reason)
        enabled, why = updated_at_filter_status(marketo, scheduled, recheck, context.log)
        if not enabled:
            return dg.SkipReason(why)
        keys = lead_change_days.get_partition_keys(current_time=scheduled)[-2:]
        stamp = scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        return [
            dg.RunRequest(
                run_key=f"{key}@{stamp}",
                partition_key=key,
                tags={GENERATION_TAG: f"{key}@{stamp}"},
            )
            for key in keys
        ]

    return daily_lead_changes_refresh


daily_lead_changes_refresh = build_lead_changes_schedule(_settings.filter_recheck_hours)
