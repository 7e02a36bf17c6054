"""Lead assets: a Marketo bulk export per `createdAt` window, loaded into `marketo.leads`."""

import dagster as dg

from marketo_assets.extract import checks
from marketo_assets.extract.checks import CHECK_TABLE_UNIQUE, CHECK_WINDOW
from marketo_assets.extract.windows import lead_window
from marketo_assets.marketo import ExportFilter
from marketo_assets.marketo.exports import split_window
from marketo_assets.settings import ProjectSettings

from .cycle import window_bounds
from .family import Context, ExportFamily, build_family
from .partitions import lead_windows

LEAD_EXPORTS = dg.AssetKey(["marketo", "lead_export_files"])
LEADS = dg.AssetKey(["marketo", "leads"])
LEADS_TABLE = "marketo.leads"
LEDGER_ASSET = "marketo/leads"
CHECK_UNIQUE = "lead_ids_unique_in_partition"


def lead_assets(settings: ProjectSettings) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """`marketo/lead_export_files` and `marketo/leads` for these settings."""

    def window(context: Context):
        return lead_window(settings, *window_bounds(context))

    def filters(context: Context) -> list[ExportFilter]:
        return [ExportFilter.created_at(lo, hi) for lo, hi in split_window(*window(context))]

    def lead_checks(context: Context):
        start, end = window(context)
        return lambda wh, loaded: checks.lead_checks(wh, loaded, LEADS_TABLE, start, end)

    return build_family(
        ExportFamily(
            export_key=LEAD_EXPORTS,
            load_key=LEADS,
            partitions=lead_windows(settings),
            table=LEADS_TABLE,
            ledger_asset=LEDGER_ASSET,
            required_fields=("id", "createdAt"),
            filters=filters,
            export_description="Marketo bulk lead export of the leads *created* in this "
            "partition's window (`createdAt` filter `[window start, window end - 1 s]`; a "
            "window longer than Marketo's 31 days is several jobs, loaded as one partition).",
            load_description="Table `marketo.leads`: one row per lead (key `id`), columns "
            "typed from Marketo's describe, plus `_partition_key`, `_export_id`, `_loaded_at`.",
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
    )
