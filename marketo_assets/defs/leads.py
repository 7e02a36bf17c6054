"""Lead assets: a Marketo bulk export per date window, loaded into `marketo.leads`."""

import dagster as dg

from marketo_assets.extract import checks
from marketo_assets.extract.checks import CHECK_TABLE_UNIQUE, CHECK_WINDOW
from marketo_assets.marketo import ExportFilter
from marketo_assets.marketo.exports import split_window
from marketo_assets.settings import ProjectSettings, SettingsError

from .cycle import window_bounds
from .family import Context, ExportFamily, build_family
from .partitions import future_start, lead_window, lead_windows

LEAD_EXPORTS = dg.AssetKey(["marketo", "lead_export_files"])
LEADS = dg.AssetKey(["marketo", "leads"])
LEADS_TABLE = "marketo.leads"
LEDGER_ASSET = "marketo/leads"

CHECK_UNIQUE = "lead_ids_unique_in_partition"

EXPORT_DESCRIPTION = """Marketo bulk lead export of the leads *created* in this partition's window.

Creates (or reattaches to) a Marketo export job with the `createdAt` filter
`[window start, window end - 1 s]`, waits for it, downloads the file with Range resume and
checks its SHA-256, and stages it privately for the load step. A window longer than
Marketo's 31 days (a month with a DST change in some timezones) is exported as several
contiguous jobs, loaded together as the one partition. Runs in the `marketo_bulk_export`
pool (Marketo processes two jobs at a time per subscription). Terminating the run cancels
the Marketo job."""

LOAD_DESCRIPTION = (
    "Table `marketo.leads`: one row per lead, columns typed from Marketo's describe.\n\n"
    """Loads the staged export of this partition in one transaction that replaces the partition's
rows, so re-runs and backfills never duplicate or lose a row. Lineage columns:
`_partition_key`, `_export_id`, `_loaded_at`. Runs in the `duckdb` pool (one writer)."""
)


def lead_family(settings: ProjectSettings) -> ExportFamily:
    def window(context: Context):
        return lead_window(settings, *window_bounds(context))

    def filters(context: Context) -> list[ExportFilter]:
        return [ExportFilter.created_at(lo, hi) for lo, hi in split_window(*window(context))]

    def lead_checks(context: Context):
        start, end = window(context)
        return lambda wh, loaded: checks.lead_checks(wh, loaded, LEADS_TABLE, start, end)

    return ExportFamily(
        export_key=LEAD_EXPORTS,
        load_key=LEADS,
        partitions=lead_windows(settings),
        table=LEADS_TABLE,
        ledger_asset=LEDGER_ASSET,
        required_fields=("id", "createdAt"),
        filters=filters,
        export_description=EXPORT_DESCRIPTION,
        load_description=LOAD_DESCRIPTION,
        checks=(
            (CHECK_UNIQUE, "No lead twice in a partition"),
            (CHECK_WINDOW, "createdAt inside the window"),
            (CHECK_TABLE_UNIQUE, "No lead id twice in the whole table"),
        ),
        load_checks=lead_checks,
        check_partitions=True,
        timestamp_field="createdAt",
        generation=False,
        stamp_exported_at=False,
    )


def lead_assets(settings: ProjectSettings) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """`marketo/lead_export_files` and `marketo/leads` for these settings."""
    return build_family(lead_family(settings))


refresh_open_window_job = dg.define_asset_job(
    "refresh_open_lead_window",
    selection=dg.AssetSelection.assets(LEAD_EXPORTS, LEADS),
    description="Re-export and reload the current (still open) lead window.",
)


def open_window_schedule(settings: ProjectSettings) -> dg.ScheduleDefinition:
    windows = lead_windows(settings)

    @dg.schedule(
        job=refresh_open_window_job,
        cron_schedule="0 6 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def daily_open_window_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Every day at 06:00 UTC, refresh the partition whose window contains today."""
        reason = future_start(settings, context.scheduled_execution_time)
        if reason:
            raise SettingsError(reason)
        key = windows.get_partition_keys(current_time=context.scheduled_execution_time)[-1]
        return dg.RunRequest(
            run_key=f"{key}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=key
        )

    return daily_open_window_refresh
