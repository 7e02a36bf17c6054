"""Activity assets: the type catalog, and a bulk export per window (extract/activities.py)."""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.extract import activities as act
from marketo_assets.extract.checks import CHECK_ACTIVITY_WINDOW, activity_checks
from marketo_assets.marketo import AnyFilter, MarketoClient
from marketo_assets.settings import ProjectSettings

from .cycle import log_events, table_metadata, window_bounds
from .family import Context, ExportFamily, Pair, build_family
from .partitions import lead_windows
from .resources import MarketoResource, warehouse_session

ACTIVITY_TYPES = dg.AssetKey(["marketo", "activity_types"])
ACTIVITY_TYPES_TABLE = "marketo.activity_types"
CHECK_UNIQUE = "marketo_guids_unique_in_partition"


def activity_assets(settings: ProjectSettings) -> Pair:
    """`marketo/activity_export_files` and `marketo/activities` for these settings."""
    wanted = settings.activity_type_selection

    def filters(context: Context) -> list[AnyFilter]:
        return list(act.activity_filters(*window_bounds(context, settings)))

    def resolve(client: MarketoClient, parts: Sequence[AnyFilter]) -> list[AnyFilter]:
        ids = act.resolve_activity_types(wanted, client.activity_types(), "MARKETO_ACTIVITY_TYPES")
        return [p.model_copy(update={"activity_type_ids": ids}) for p in parts]

    def checks(context: Context):
        start, end = window_bounds(context, settings)
        return lambda wh, loaded: activity_checks(loaded, start, end)

    family = ExportFamily(
        export_key=dg.AssetKey(["marketo", "activity_export_files"]),
        name="marketo/activities",
        partitions=lead_windows(settings, settings.activity_partition_window),
        required_fields=(),
        filters=filters,
        export_description="Marketo bulk activity export of the activities *created* in this "
        "window (`createdAt` filter `[start, end - 1 s]`) of the MARKETO_ACTIVITY_TYPES (ids or "
        "names, resolved before any job; default every type); over 31 days: several jobs.",
        load_description="Table `marketo.activities`: one row per activity (key `marketoGUID`): "
        "`leadId`, `activityDate`, `activityTypeId`, `campaignId`, `primaryAttributeValueId`, "
        "`primaryAttributeValue` and `attributes` (JSON: attribute name -> value).",
        checks=(
            (CHECK_UNIQUE, "No marketoGUID twice (or NULL) in a partition"),
            (CHECK_ACTIVITY_WINDOW, "activityDate inside the window"),
        ),
        load_checks=checks,
        check_partitions=True,
        timestamp_field="activityDate",
        describe=lambda client: act.activity_fields(),
        snapshot=False,
        resolve_filters=resolve if wanted else None,
        fixed_fields=True,
        id_field="marketoGUID",
    )
    return build_family(family)


@dg.asset(key=ACTIVITY_TYPES, pool="duckdb", group_name="marketo", kinds={"marketo", "duckdb"})
def activity_types(
    context: dg.AssetExecutionContext, marketo: MarketoResource, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Table `marketo.activity_types`: Marketo's activity type catalog (key `id`; name,
    description, primaryAttribute and attributes as JSON), replaced in one transaction."""
    with marketo.client(on_event=log_events(context)) as client:
        catalog = client.activity_types()
    with warehouse_session(warehouse) as wh:
        result = wh.replace_table(
            table=ACTIVITY_TYPES_TABLE,
            columns=act.ACTIVITY_TYPE_COLUMNS,
            rows=act.activity_type_rows(catalog),
            loaded_at=datetime.now(UTC),
        )
    return dg.MaterializeResult(metadata=table_metadata(ACTIVITY_TYPES_TABLE, result))
