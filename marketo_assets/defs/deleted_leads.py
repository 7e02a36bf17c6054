"""`marketo/deleted_leads`: the leads deleted each UTC day (Marketo's "Get Deleted Leads")."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.extract.checks import CHECK_ROWS
from marketo_assets.extract.deleted_leads import CHECK_DAY, CHECK_UNIQUE, load_deleted_leads
from marketo_assets.settings import ProjectSettings

from .cycle import check_results, log_events, stop_when_terminated, table_metadata
from .resources import MarketoResource, as_failure, warehouse_session

DELETED_LEADS = dg.AssetKey(["marketo", "deleted_leads"])
TABLE = "marketo.deleted_leads"


def deleted_leads_asset(settings: ProjectSettings) -> dg.AssetsDefinition:
    """Daily (UTC) partitions from MARKETO_PARTITION_START."""

    @dg.asset(
        key=DELETED_LEADS,
        partitions_def=dg.DailyPartitionsDefinition(
            start_date=settings.partition_start.isoformat(), timezone="UTC", end_offset=1
        ),
        pool="duckdb",
        group_name="marketo",
        kinds={"marketo", "duckdb"},
        check_specs=[
            dg.AssetCheckSpec(CHECK_ROWS, asset=DELETED_LEADS, description="Rows = deletions read"),
            dg.AssetCheckSpec(CHECK_UNIQUE, asset=DELETED_LEADS, description="No leadId twice"),
            dg.AssetCheckSpec(CHECK_DAY, asset=DELETED_LEADS, description="deletedAt in the day"),
        ],
        retry_policy=dg.RetryPolicy(max_retries=2, delay=30),
    )
    def deleted_leads(
        context: dg.AssetExecutionContext, marketo: MarketoResource, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        """Table `marketo.deleted_leads`: the leads deleted on this UTC day (key `leadId`; `id`
        of the "Delete Lead" activity, `deletedAt`, `_partition_key` the day), read through the
        REST API (no export quota) and replaced in one transaction; `duckdb` pool."""
        window = context.partition_time_window
        with (
            stop_when_terminated(context),
            as_failure(),
            marketo.client(on_event=log_events(context)) as client,
        ):
            loaded = load_deleted_leads(
                client,
                lambda: warehouse_session(warehouse),
                Path(marketo.staging_dir),
                table=TABLE,
                partition_key=context.partition_key,
                start=window.start,
                end=window.end,
            )
        metadata = table_metadata(TABLE, loaded.result) | {
            "rest_calls": client.calls_made,
            "load_seconds": dg.MetadataValue.float(round(loaded.result.seconds, 3)),
        }
        return dg.MaterializeResult(metadata=metadata, check_results=check_results(loaded.checks()))

    return deleted_leads
