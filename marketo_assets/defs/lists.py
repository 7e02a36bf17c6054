"""List assets: the members of each selected list, and `marketo/lists`, the catalog."""

from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.extract.list_catalog import CHECK_CATALOG_UNIQUE, read_catalog
from marketo_assets.extract.list_plan import list_id_from_key
from marketo_assets.marketo import ExportFilter
from marketo_assets.settings import ListConfig

from .cycle import check_results, log_events, table_metadata
from .family import Context, ExportFamily, Pair, build_family
from .partitions import LIST_PARTITIONS
from .resources import MarketoResource, warehouse_session

LIST_KINDS = ("static", "smart")
EXPORT_KEYS = {kind: dg.AssetKey(["marketo", f"{kind}_list_export_files"]) for kind in LIST_KINDS}
MEMBER_KEYS = {kind: dg.AssetKey(["marketo", f"{kind}_list_members"]) for kind in LIST_KINDS}
MEMBER_TABLES = {kind: f"marketo.{kind}_list_members" for kind in LIST_KINDS}
LISTS = dg.AssetKey(["marketo", "lists"])
LISTS_TABLE = "marketo.lists"

CHECK_UNIQUE = "lead_ids_unique_in_list"

SMART_LIST_1035_HINT = (
    "Smart-list exports need the smart-list filter, which Marketo enables per subscription: ask "
    "Marketo Support to enable it, or export the audience as a static list instead "
    "(MARKETO_STATIC_LISTS). The static-list sensor keeps working; the smart-list sensor stops "
    "requesting runs until the filter is enabled."
)
_FILTERS = {"static": ExportFilter.static_list_id, "smart": ExportFilter.smart_list_id}


def list_assets(kind: str, lists: ListConfig) -> Pair:
    """The export and members of `kind` ("static"/"smart") lists; a bad MARKETO_LIST_FIELDS
    switches the exports off, saying so."""
    fields_problem = lists.problem("MARKETO_LIST_FIELDS")
    off = f" OFF: {fields_problem}" if fields_problem else ""
    needs = " Needs the smart-list filter (1035: fails, no retries)." if kind == "smart" else ""

    def list_id(context: Context) -> int:
        return list_id_from_key(kind, context.partition_key)

    def list_metadata(context: Context) -> dict[str, Any]:
        return {"list_id": list_id(context), "list_type": kind}

    def load_checks(context: Context):
        metadata = list_metadata(context)
        return lambda wh, loaded: ([], metadata)

    family = ExportFamily(
        export_key=EXPORT_KEYS[kind],
        name=f"marketo/{kind}_list_members",
        partitions=LIST_PARTITIONS[kind],
        required_fields=("id",),
        filters=lambda context: [_FILTERS[kind](list_id(context))],
        export_description=f"Marketo bulk lead export of the members of one {kind} list "
        f"(partition `{kind}-<list id>`, filter `{kind}ListId`) when Marketo starts the job "
        f"(`exported_at` in the metadata).{off}{needs}",
        load_description=f"Table `{MEMBER_TABLES[kind]}`: one row per (list, lead) (key "
        f"`_list_id`, `id`), lead columns typed from describe plus `_list_id`, `_partition_key` "
        f"(`{kind}-<id>`), `_export_id`, `_loaded_at`.",
        checks=((CHECK_UNIQUE, "No lead twice in a list"),),
        load_checks=load_checks,
        list_fields=True,
        unsupported_hint=SMART_LIST_1035_HINT if kind == "smart" else None,
        export_metadata=list_metadata,
        lineage=lambda context: {"_list_id": list_id(context)},
        off_reason=f"List exports are off: {fields_problem}" if fields_problem else None,
    )
    return build_family(family)


@dg.asset(
    key=LISTS,
    pool="duckdb",
    group_name="marketo",
    kinds={"marketo", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_CATALOG_UNIQUE, asset=LISTS, description="One row per (list_type, list_id)"
        )
    ],
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30),
)
def lists(
    context: dg.AssetExecutionContext, marketo: MarketoResource, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Table `marketo.lists`: every static and smart list (key `list_type`, `list_id`; name,
    description, program, workspace, times), replaced in one transaction that deletes the
    members of lists Marketo no longer has. Without Asset API permission: static lists only."""
    with marketo.client(on_event=log_events(context)) as client:
        catalog = read_catalog(client, context.log.warning)
    with warehouse_session(warehouse) as wh:
        result = catalog.save(wh, LISTS_TABLE, MEMBER_TABLES)
    checks, metadata = catalog.checked(result)
    return dg.MaterializeResult(
        metadata={**table_metadata(LISTS_TABLE, result), **metadata},
        check_results=check_results(checks),
    )
