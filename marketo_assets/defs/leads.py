"""Lead assets: exports per `createdAt` window (`marketo.leads`) and `updatedAt` day."""

import dagster as dg

from marketo_assets.extract import checks
from marketo_assets.extract.capabilities import updated_at_note
from marketo_assets.extract.checks import CHECK_TABLE_UNIQUE, CHECK_WINDOW, updated_outside_day
from marketo_assets.extract.local_state import capabilities_at
from marketo_assets.marketo import ExportFilter
from marketo_assets.marketo.exports import split_window
from marketo_assets.settings import ProjectSettings

from .cycle import window_bounds
from .family import Context, ExportFamily, Pair, build_family
from .partitions import lead_change_days, lead_windows

LEAD_EXPORTS = dg.AssetKey(["marketo", "lead_export_files"])
LEADS = dg.AssetKey(["marketo", "leads"])
LEADS_TABLE = "marketo.leads"
LEDGER_ASSET = "marketo/leads"
LEAD_CHANGE_EXPORTS = dg.AssetKey(["marketo", "lead_change_export_files"])
LEAD_CHANGES = dg.AssetKey(["marketo", "lead_changes"])
TABLE_CHANGES = "marketo.lead_changes"
CHECK_UNIQUE = "lead_ids_unique_in_partition"


def lead_assets(settings: ProjectSettings) -> Pair:
    """`marketo/lead_export_files` and `marketo/leads` for these settings."""

    def filters(context: Context) -> list[ExportFilter]:
        windows = split_window(*window_bounds(context, settings))
        return [ExportFilter.created_at(lo, hi) for lo, hi in windows]

    def lead_checks(context: Context):
        (start, end), key = window_bounds(context, settings), context.partition_key
        return lambda wh, loaded: checks.lead_checks(wh, loaded, LEADS_TABLE, key, start, end)

    return build_family(
        ExportFamily(
            export_key=LEAD_EXPORTS,
            name=LEDGER_ASSET,
            partitions=lead_windows(settings),
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
                (CHECK_TABLE_UNIQUE, "No lead id of this partition in another partition"),
            ),
            load_checks=lead_checks,
            check_partitions=True,
            timestamp_field="createdAt",
            snapshot=False,
        )
    )


UPDATED_AT_1035_HINT = (
    "Incremental updates (marketo/lead_changes) stay off until Marketo Support enables the "
    "updatedAt filter for this subscription; the lead partitions (createdAt filter) keep "
    "working and a re-export of the open window picks up changes meanwhile."
)


def lead_change_assets(settings: ProjectSettings) -> Pair:
    """`marketo/lead_change_export_files` and `marketo/lead_changes` for these settings."""

    def outside_day(context: Context):
        (start, end), key = window_bounds(context), context.partition_key
        return lambda wh, loaded: updated_outside_day(wh, loaded, TABLE_CHANGES, key, start, end)

    family = ExportFamily(
        export_key=LEAD_CHANGE_EXPORTS,
        name="marketo/lead_changes",
        partitions=lead_change_days(settings),
        required_fields=("id", "updatedAt"),
        filters=lambda context: [ExportFilter.updated_at(*window_bounds(context))],
        export_description="Marketo bulk lead export of the leads *changed* on this day "
        "(`updatedAt` filter `[day start, next day start - 1 s]`). Needs the updatedAt filter "
        "(else 1035: the run fails, saying so). "
        + updated_at_note(capabilities_at(settings.ledger_path)),
        load_description="Table `marketo.lead_changes`: the leads changed on each day (key "
        "`_partition_key`, `id`), the columns of `marketo.leads`. Rows whose `updatedAt` is "
        "outside the day are kept, counted in `rows_updated_at_outside_day`.",
        checks=((CHECK_UNIQUE, "No lead twice in a partition"),),
        load_checks=outside_day,
        check_partitions=True,
        timestamp_field="updatedAt",
        unsupported_hint=UPDATED_AT_1035_HINT,
    )
    return build_family(family)
