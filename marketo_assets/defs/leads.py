"""Lead assets: a Marketo bulk export per date window, loaded into `marketo.leads`."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.marketo import ExportFilter, ExportRequest, MarketoClient
from marketo_assets.warehouse import columns_for, duplicate_ids, load_partition, partition_stats

from .cycle import ExportSpec, run_export, select_fields, staged_export, window_bounds
from .partitions import lead_windows
from .resources import ExportOptions, MarketoResource

LEAD_EXPORTS = dg.AssetKey(["marketo", "lead_export_files"])
LEADS = dg.AssetKey(["marketo", "leads"])
LEADS_TABLE = "marketo.leads"
LEDGER_ASSET = "marketo/leads"

CHECK_ROWS = "rows_match_marketo"
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
    context: dg.AssetExecutionContext, marketo: MarketoResource, export_options: ExportOptions
) -> dg.MaterializeResult:
    """Marketo bulk lead export of the leads *created* in this partition's window.

    Creates (or reattaches to) a Marketo export job with the `createdAt` filter
    `[window start, window end - 1 s]`, waits for it, downloads the file with Range resume and
    checks its SHA-256, and stages it privately for the load step. Runs in the
    `marketo_bulk_export` pool (Marketo processes two jobs at a time per subscription).
    Terminating the run cancels the Marketo job.
    """
    start, end = window_bounds(context)

    def spec(client: MarketoClient) -> ExportSpec:
        field_types = select_fields(
            client.describe_fields(), export_options.fields, required=["id", "createdAt"]
        )
        request = ExportRequest(
            fields=[name for name, _ in field_types],
            filter=ExportFilter.created_at(start, end),
            format=export_options.format,
            column_header_names=export_options.column_header_names,
        )
        return ExportSpec(LEDGER_ASSET, context.partition_key, request, field_types)

    outcome = run_export(context, marketo, spec)
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
    ledger = marketo.ledger()
    entry = staged_export(ledger, LEDGER_ASSET, context.partition_key)
    record = entry.request
    headers = record["payload"].get("columnHeaderNames") or {}
    columns = columns_for([tuple(ft) for ft in record["field_types"]], headers)
    id_col, created_col = headers.get("id", "id"), headers.get("createdAt", "createdAt")
    start, end = window_bounds(context)

    with duckdb.get_connection() as conn:
        result = load_partition(
            conn,
            table=LEADS_TABLE,
            file_path=entry.staged_file,
            file_format=record["payload"].get("format", "CSV"),
            columns=columns,
            partition_key=context.partition_key,
            lineage={"_export_id": entry.export_id, "_loaded_at": datetime.now(UTC)},
        )
        stats = partition_stats(
            conn, LEADS_TABLE, context.partition_key, id_column=id_col, timestamp_column=created_col
        )
        table_duplicates = duplicate_ids(conn, LEADS_TABLE, id_column=id_col)

    ledger.update(entry.export_id, status="loaded", loaded_at=datetime.now(UTC))
    _discard(context, entry.staged_file)
    lo, hi = stats[f"min_{created_col}"], stats[f"max_{created_col}"]
    inside = stats["rows"] == 0 or (lo is not None and lo >= start and hi is not None and hi <= end)
    checks = [
        dg.AssetCheckResult(
            check_name=CHECK_ROWS,
            passed=result.rows == (entry.records or 0),
            metadata={"loaded_rows": result.rows, "marketo_records": entry.records or 0},
        ),
        dg.AssetCheckResult(
            check_name=CHECK_UNIQUE,
            passed=stats["duplicate_ids"] == 0 and stats["null_ids"] == 0,
            metadata={"duplicate_ids": stats["duplicate_ids"], "null_ids": stats["null_ids"]},
        ),
        dg.AssetCheckResult(
            check_name=CHECK_WINDOW,
            passed=bool(inside),
            metadata={
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "min_created_at": str(lo),
                "max_created_at": str(hi),
            },
        ),
        dg.AssetCheckResult(
            check_name=CHECK_TABLE_UNIQUE,
            passed=table_duplicates == 0,
            metadata={"duplicate_ids": table_duplicates},
        ),
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows,
            "dagster/table_name": LEADS_TABLE,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, type_) for name, type_ in result.columns]
            ),
            "export_id": entry.export_id,
            "marketo_records": entry.records or 0,
            "load_seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        },
        check_results=checks,
    )


def _discard(context: dg.AssetExecutionContext, staged_file: str | None) -> None:
    """Staged exports hold personal data: delete them once they are loaded."""
    if staged_file:
        Path(staged_file).unlink(missing_ok=True)
        context.log.info("Deleted the staged export file after loading")
