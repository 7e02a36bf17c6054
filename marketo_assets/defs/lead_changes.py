"""Lead changes: the leads changed on each day (`updatedAt` filter), daily partitions; without
the filter (1035) the schedule skips and a run fails, saying why (docs/ASSETS.md)."""

import dagster as dg

from marketo_assets.extract.capabilities import updated_at_note
from marketo_assets.extract.checks import updated_outside_day
from marketo_assets.extract.local_state import capabilities_at
from marketo_assets.marketo import ExportFilter
from marketo_assets.settings import ProjectSettings

from .cycle import window_bounds
from .family import Context, ExportFamily, build_family
from .partitions import lead_change_days

LEAD_CHANGE_EXPORTS = dg.AssetKey(["marketo", "lead_change_export_files"])
LEAD_CHANGES = dg.AssetKey(["marketo", "lead_changes"])
LEAD_CHANGES_TABLE = "marketo.lead_changes"
LEDGER_ASSET = "marketo/lead_changes"
CHECK_UNIQUE = "lead_ids_unique_in_partition"

UPDATED_AT_1035_HINT = (
    "Incremental updates (marketo/lead_changes) stay off until Marketo Support enables the "
    "updatedAt filter for this subscription; the lead partitions (createdAt filter) keep "
    "working and a re-export of the open window picks up changes meanwhile."
)


def _filters(context: Context) -> list[ExportFilter]:
    return [ExportFilter.updated_at(*window_bounds(context))]


def _outside_day(context: Context):
    start, end = window_bounds(context)
    key = context.partition_key
    return lambda wh, loaded: updated_outside_day(wh, loaded, LEAD_CHANGES_TABLE, key, start, end)


def lead_change_assets(
    settings: ProjectSettings,
) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """`marketo/lead_change_export_files` and `marketo/lead_changes` for these settings."""
    family = ExportFamily(
        export_key=LEAD_CHANGE_EXPORTS,
        load_key=LEAD_CHANGES,
        partitions=lead_change_days(settings),
        table=LEAD_CHANGES_TABLE,
        ledger_asset=LEDGER_ASSET,
        required_fields=("id", "updatedAt"),
        filters=_filters,
        export_description=(
            "Marketo bulk lead export of the leads *changed* on this partition's day: "
            "`updatedAt` filter `[day start, next day start - 1 s]`. Needs the updatedAt "
            "filter: without it Marketo answers 1035 and the run fails without retries, "
            "saying so. " + updated_at_note(capabilities_at(settings.ledger_path))
        ),
        load_description=(
            "Table `marketo.lead_changes`: the leads changed on each day (key `_partition_key`, "
            "`id`), the columns of `marketo.leads`. Rows whose `updatedAt` lies outside the day "
            "are kept (Marketo matches the last change to any field), counted in "
            "`rows_updated_at_outside_day`."
        ),
        checks=((CHECK_UNIQUE, "No lead twice in a partition"),),
        load_checks=_outside_day,
        check_partitions=True,
        timestamp_field="updatedAt",
        unsupported_hint=UPDATED_AT_1035_HINT,
    )
    return build_family(family)
