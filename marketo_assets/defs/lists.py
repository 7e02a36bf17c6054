"""List assets: one bulk export per static or smart list, and the catalog of lists.

`marketo/static_list_export_files` → `marketo/static_list_members` and
`marketo/smart_list_export_files` → `marketo/smart_list_members` are partitioned by list
(dynamic partitions `static-<id>` / `smart-<id>`, managed by the sensors in `list_sensors.py`).
They use the same export and load steps as the lead partitions (`cycle.py`): ledger, reattach,
quota, cancellation, checksum, metadata, pools. `marketo/lists` is the catalog of every list so
dbt can join memberships to names.
"""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.marketo import ExportFilter, ExportRequest, MarketoClient, errors
from marketo_assets.settings import load_list_settings

from .cycle import (
    CHECK_ROWS,
    ExportSpec,
    LoadedPartition,
    log_events,
    run_export,
    run_generation,
    run_load,
    select_fields,
)
from .partitions import LIST_PARTITIONS, list_id_from_key, list_partition_key
from .resources import ExportOptions, MarketoResource, warehouse_session

LIST_KINDS = ("static", "smart")
EXPORT_KEYS = {kind: dg.AssetKey(["marketo", f"{kind}_list_export_files"]) for kind in LIST_KINDS}
MEMBER_KEYS = {kind: dg.AssetKey(["marketo", f"{kind}_list_members"]) for kind in LIST_KINDS}
MEMBER_TABLES = {kind: f"marketo.{kind}_list_members" for kind in LIST_KINDS}
LEDGER_ASSETS = {kind: f"marketo/{kind}_list_members" for kind in LIST_KINDS}
LISTS = dg.AssetKey(["marketo", "lists"])
LISTS_TABLE = "marketo.lists"

CHECK_UNIQUE = "lead_ids_unique_in_list"
CHECK_CATALOG_UNIQUE = "list_ids_unique"

SMART_LIST_1035_HINT = (
    "Smart-list exports need the smart-list filter, which Marketo enables per subscription: ask "
    "Marketo Support to enable it, or export the audience as a static list instead "
    "(MARKETO_STATIC_LISTS). The static-list sensor keeps working; the smart-list sensor stops "
    "requesting runs until the filter is enabled."
)
# A bad MARKETO_LIST_FIELDS: list exports fail at once saying so (and the sensors are off).
_FIELDS_PROBLEM = load_list_settings().problem("MARKETO_LIST_FIELDS")
_FILTERS = {"static": ExportFilter.static_list_id, "smart": ExportFilter.smart_list_id}
_EXPORT_RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _build_list_assets(kind: str) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    partitions = LIST_PARTITIONS[kind]
    export_key, member_key = EXPORT_KEYS[kind], MEMBER_KEYS[kind]
    table, ledger_asset = MEMBER_TABLES[kind], LEDGER_ASSETS[kind]

    @dg.asset(
        key=export_key,
        partitions_def=partitions,
        pool="marketo_bulk_export",
        group_name="marketo",
        kinds={"marketo", "csv"},
        retry_policy=_EXPORT_RETRY,
        description=(
            f"Marketo bulk lead export of the members of one {kind} list (partition "
            f"`{kind}-<list id>`, filter `{kind}ListId`). Creates (or reattaches to) the job, "
            "waits, downloads with Range resume, checks the SHA-256 and stages the file for "
            "the load step. Membership is taken when Marketo starts processing the job "
            "(`exported_at` in the metadata). Runs in the `marketo_bulk_export` pool; "
            "terminating the run cancels the Marketo job."
            + (f" OFF: {_FIELDS_PROBLEM}" if _FIELDS_PROBLEM else "")
            + (
                " Needs the smart-list filter: without it Marketo answers 1035 and the run "
                "fails without retries, saying so."
                if kind == "smart"
                else ""
            )
        ),
    )
    def export_files(
        context: dg.AssetExecutionContext,
        marketo: MarketoResource,
        export_options: ExportOptions,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:
        list_id = list_id_from_key(kind, context.partition_key)
        if _FIELDS_PROBLEM:
            raise dg.Failure(f"List exports are off: {_FIELDS_PROBLEM}", allow_retries=False)

        def spec(client: MarketoClient) -> ExportSpec:
            field_types = select_fields(
                client.describe_fields(), export_options.list_fields, required=["id"]
            )
            names = [name for name, _ in field_types]
            headers = {k: v for k, v in export_options.column_header_names.items() if k in names}
            request = ExportRequest(
                fields=names,
                filter=_FILTERS[kind](list_id),
                format=export_options.format,
                column_header_names=headers,
            )
            return ExportSpec(
                ledger_asset,
                context.partition_key,
                request,
                field_types,
                unsupported_hint=SMART_LIST_1035_HINT if kind == "smart" else None,
                generation=run_generation(context),
            )

        outcome = run_export(context, marketo, spec, warehouse=duckdb)
        outcome.metadata.update(
            {
                "list_id": list_id,
                "list_type": kind,
                "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        return dg.MaterializeResult(metadata=outcome.metadata)

    @dg.asset(
        key=member_key,
        deps=[export_key],
        partitions_def=partitions,
        pool="duckdb",
        group_name="marketo",
        kinds={"duckdb"},
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_ROWS, asset=member_key, description="Loaded rows = numberOfRecords"
            ),
            dg.AssetCheckSpec(
                CHECK_UNIQUE, asset=member_key, description="No lead twice in a list"
            ),
        ],
        retry_policy=dg.RetryPolicy(max_retries=2, delay=10),
        description=(
            f"Table `{table}`: the members of each selected {kind} list, one row per (list, "
            "lead), lead columns typed from describe plus `_list_id`, `_partition_key` "
            f"(`{kind}-<id>`), `_export_id`, `_loaded_at`. Each partition's load replaces that "
            "list's rows in one transaction. Runs in the `duckdb` pool (one writer)."
        ),
    )
    def members(
        context: dg.AssetExecutionContext, marketo: MarketoResource, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        list_id = list_id_from_key(kind, context.partition_key)

        def list_metadata(wh, loaded: LoadedPartition) -> tuple[list, dict]:
            return [], {"list_id": list_id, "list_type": kind}

        return run_load(
            context,
            marketo,
            duckdb,
            table=table,
            ledger_asset=ledger_asset,
            unique_check=CHECK_UNIQUE,
            lineage={"_list_id": list_id},
            extra=list_metadata,
        )

    return export_files, members


static_list_export_files, static_list_members = _build_list_assets("static")
smart_list_export_files, smart_list_members = _build_list_assets("smart")


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
    context: dg.AssetExecutionContext, marketo: MarketoResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Table `marketo.lists`: every static and smart list (id, type, partition key, name,
    description, program, workspace, created/updated times), replaced in one transaction, so
    dbt can join memberships to list names.

    Reads `GET /rest/v1/lists.json` and `GET /rest/asset/v1/smartLists.json` first; DuckDB is
    opened only for the SQL. Member rows of lists Marketo no longer has are deleted in the same
    transaction (the sensors delete their partitions). If smart lists cannot be read (the API
    user lacks Asset API permission) the catalog holds static lists only and smart members are
    left alone.
    """
    smart_error: str | None = None
    with marketo.client(on_event=log_events(context)) as client:
        statics = list(client.iter_static_lists())
        try:
            smarts = list(client.iter_smart_lists())
        except errors.MarketoAPIError as exc:
            if isinstance(exc, errors.QuotaExceededError | errors.DailyCallLimitError):
                raise
            smart_error = str(exc)
            smarts = []
            context.log.warning(f"Cannot read smart lists ({exc}); cataloging static lists only")

    rows = [
        {
            "list_id": lst.id,
            "list_type": "static",
            "partition_key": list_partition_key("static", lst.id),
            "name": lst.name,
            "description": lst.description,
            "program_name": lst.program_name,
            "workspace_name": lst.workspace_name,
            "created_at": lst.created_at,
            "updated_at": lst.updated_at,
        }
        for lst in statics
    ] + [
        {
            "list_id": lst.id,
            "list_type": "smart",
            "partition_key": list_partition_key("smart", lst.id),
            "name": lst.name,
            "description": lst.description,
            "program_name": None,
            "workspace_name": lst.workspace_name,
            "created_at": lst.created_at,
            "updated_at": lst.updated_at,
        }
        for lst in smarts
    ]
    prune = {MEMBER_TABLES["static"]: ("static", [lst.id for lst in statics])}
    if smart_error is None:
        prune[MEMBER_TABLES["smart"]] = ("smart", [lst.id for lst in smarts])
    with warehouse_session(duckdb) as wh:
        result = wh.replace_list_catalog(
            table=LISTS_TABLE, rows=rows, loaded_at=datetime.now(UTC), prune=prune
        )
    keys = [(r["list_type"], r["list_id"]) for r in rows]
    duplicates = len(keys) - len(set(keys))
    metadata: dict[str, object] = {
        "dagster/row_count": result.rows,
        "dagster/table_name": LISTS_TABLE,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, type_) for name, type_ in result.columns]
        ),
        "static_lists": len(statics),
        "smart_lists": len(smarts),
        "pruned_member_rows": dg.MetadataValue.json(result.pruned_member_rows),
    }
    if smart_error:
        metadata["smart_lists_error"] = smart_error
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_CATALOG_UNIQUE,
                passed=duplicates == 0,
                metadata={"duplicates": duplicates},
            )
        ],
    )
