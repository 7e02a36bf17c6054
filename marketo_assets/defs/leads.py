"""Lead assets: a Marketo bulk export per date window, loaded into `marketo.leads`."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.marketo import ExportFilter, ExportRequest, MarketoClient
from marketo_assets.marketo.exports import split_window
from marketo_assets.warehouse import WarehouseSession

from .cycle import (
    CHECK_PARTITIONS,
    CHECK_ROWS,
    ExportSpec,
    LoadedPartition,
    run_export,
    run_load,
    select_fields,
    window_bounds,
)
from .partitions import lead_window, lead_windows
from .resources import ExportOptions, MarketoResource

LEAD_EXPORTS = dg.AssetKey(["marketo", "lead_export_files"])
LEADS = dg.AssetKey(["marketo", "leads"])
LEADS_TABLE = "marketo.leads"
LEDGER_ASSET = "marketo/leads"

CHECK_UNIQUE = "lead_ids_unique_in_partition"
CHECK_WINDOW = "created_at_inside_window"
CHECK_TABLE_UNIQUE = "lead_ids_unique_in_table"


@dg.asset(
    key=LEAD_EXPORTS,
    partitions_def=lead_windows,
    pool="marketo_bulk_export",
    group_name="marketo",
    kinds={"marketo", "csv"},
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
)
def lead_export_files(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    export_options: ExportOptions,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Marketo bulk lead export of the leads *created* in this partition's window.

    Creates (or reattaches to) a Marketo export job with the `createdAt` filter
    `[window start, window end - 1 s]`, waits for it, downloads the file with Range resume and
    checks its SHA-256, and stages it privately for the load step. A window longer than
    Marketo's 31 days (a month with a DST change in some timezones) is exported as several
    contiguous jobs, loaded together as the one partition. Runs in the `marketo_bulk_export`
    pool (Marketo processes two jobs at a time per subscription). Terminating the run cancels
    the Marketo job.
    """
    start, end = lead_window(*window_bounds(context))

    def spec(client: MarketoClient) -> ExportSpec:
        field_types = select_fields(
            client.describe_fields(), export_options.fields, required=["id", "createdAt"]
        )
        requests = [
            ExportRequest(
                fields=[name for name, _ in field_types],
                filter=ExportFilter.created_at(lo, hi),
                format=export_options.format,
                column_header_names=export_options.column_header_names,
            )
            for lo, hi in split_window(start, end)
        ]
        return ExportSpec.of(LEDGER_ASSET, context.partition_key, requests, field_types)

    outcome = run_export(context, marketo, spec, warehouse=duckdb)
    return dg.MaterializeResult(metadata=outcome.metadata)


@dg.asset(
    key=LEADS,
    deps=[LEAD_EXPORTS],
    partitions_def=lead_windows,
    pool="duckdb",
    group_name="marketo",
    kinds={"duckdb"},
    check_specs=[
        dg.AssetCheckSpec(CHECK_ROWS, asset=LEADS, description="Loaded rows = numberOfRecords"),
        dg.AssetCheckSpec(CHECK_UNIQUE, asset=LEADS, description="No lead twice in a partition"),
        dg.AssetCheckSpec(CHECK_WINDOW, asset=LEADS, description="createdAt inside the window"),
        dg.AssetCheckSpec(
            CHECK_TABLE_UNIQUE, asset=LEADS, description="No lead id twice in the whole table"
        ),
        dg.AssetCheckSpec(
            CHECK_PARTITIONS,
            asset=LEADS,
            description="Every partition materialized with rows still has its rows in the table",
        ),
    ],
    retry_policy=dg.RetryPolicy(max_retries=2, delay=10),
)
def leads(
    context: dg.AssetExecutionContext, marketo: MarketoResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Table `marketo.leads`: one row per lead, columns typed from Marketo's describe.

    Loads the staged export of this partition in one transaction that replaces the partition's
    rows, so re-runs and backfills never duplicate or lose a row. Lineage columns:
    `_partition_key`, `_export_id`, `_loaded_at`. Runs in the `duckdb` pool (one writer).
    """
    start, end = lead_window(*window_bounds(context))

    def lead_checks(
        wh: WarehouseSession, loaded: LoadedPartition
    ) -> tuple[list[dg.AssetCheckResult], dict]:
        stats, created_col = loaded.stats, loaded.timestamp_column
        table_duplicates = wh.duplicate_ids(LEADS_TABLE, id_column=loaded.id_column)
        lo, hi = stats[f"min_{created_col}"], stats[f"max_{created_col}"]
        nulls = stats[f"null_{created_col}"]  # a lead without createdAt is in no window
        inside = nulls == 0 and (
            stats["rows"] == 0 or (lo is not None and lo >= start and hi is not None and hi <= end)
        )
        checks = [
            dg.AssetCheckResult(
                check_name=CHECK_WINDOW,
                passed=bool(inside),
                metadata={
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "min_created_at": str(lo),
                    "max_created_at": str(hi),
                    "null_created_at": nulls,
                },
            ),
            dg.AssetCheckResult(
                check_name=CHECK_TABLE_UNIQUE,
                passed=table_duplicates == 0,
                metadata={"duplicate_ids": table_duplicates},
            ),
        ]
        return checks, {}

    return run_load(
        context,
        marketo,
        duckdb,
        table=LEADS_TABLE,
        ledger_asset=LEDGER_ASSET,
        unique_check=CHECK_UNIQUE,
        timestamp_field="createdAt",
        extra=lead_checks,
        check_partitions=True,
    )
