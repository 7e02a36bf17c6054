"""dbt models (dbt_project/) as Dagster assets: staging, marts and reporting over the raw tables.

They are their own code location (`marketo_assets.dbt_definitions`, `build_dbt_definitions`
below): the export and load runs never import dagster-dbt or dbt-core (seconds per process).

Every dbt model is an asset in the `marketo_models` group and every dbt test an asset check on
its model. dbt sources map to the raw assets that load them (`meta.dagster.asset_key` in
`_marketo__sources.yml`: `marketo/leads`, `marketo/lead_changes`, ...), so the graph runs
unbroken from the Marketo exports to the marts, across the two code locations. Any source
whose meta names an asset key maps to it: a new raw table only needs its source entry.

When it runs: the `dbt_models_after_raw_loads` sensor (running by default) requests the models
whose raw tables were loaded since their last build, once no raw partition of theirs is still
queued or running, so a backfill of many partitions ends with one dbt build, not one per
partition. The sensor runs in the dbt location; Dagster evaluates its conditions on the
workspace's whole asset graph, so the raw assets of the other location are its upstream. The
build runs in the `duckdb` pool (limit 1): `dbt build` holds DuckDB's single
write lock from start to end, so it waits for loads and loads wait for it.
"""

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from marketo_assets.extract.local_paths import private_umask
from marketo_assets.settings import ProjectSettings
from marketo_assets.transform.build import absolute_duckdb_path, with_row_counts
from marketo_assets.transform.manifest import ensure_manifest

from .dbt_resources import dbt_project, dbt_resource

MODELS_GROUP = "marketo_models"

# How many steps a model can be from a raw table (raw -> staging -> marts -> reporting is 3).
MODEL_DEPTH = 4
_MODELS = dg.AssetSelection.groups(MODELS_GROUP)
_RAW = dg.AssetSelection.all() - _MODELS


def _raw_upstream_in_progress(levels: int) -> dg.AutomationCondition:
    """A raw asset up to `levels` steps upstream is being loaded (queued, running, or in a
    backfill); `any_deps_in_progress` alone only looks one step up. Other dbt runs in progress
    do not block: the `duckdb` pool runs them one after the other anyway."""
    raw_dep_loading = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.in_progress()
    ).allow(_RAW)
    busy: dg.AutomationCondition = raw_dep_loading
    for _ in range(levels - 1):
        busy = raw_dep_loading | dg.AutomationCondition.any_deps_match(busy).allow(_MODELS)
    return busy


# Raw loads first: build a model once a table it reads has been loaded since it was last
# requested, but not while a raw table upstream of it is still being loaded (a backfill of raw
# partitions ends with one build, not one per partition), nor while it is being built. A model
# whose raw tables were never loaded is not built; the marts leave out staging tables that do
# not exist yet (macros/built_relations.sql).
AFTER_RAW_LOADS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~_raw_upstream_in_progress(MODEL_DEPTH)
    & ~dg.AutomationCondition.in_progress()
).with_label("after raw loads")


class MarketoDbtTranslator(DagsterDbtTranslator):
    """Models: group `marketo_models`, rebuilt after raw loads. Sources keep the asset keys
    their `meta.dagster.asset_key` names (the raw Marketo assets)."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if unique_id.startswith("source."):
            return spec
        return spec.replace_attributes(
            group_name=MODELS_GROUP, automation_condition=AFTER_RAW_LOADS
        )


def dbt_models(settings: ProjectSettings) -> dg.AssetsDefinition:
    """The dbt models as assets, from the manifest parsed for the settings' DuckDB file."""

    @dbt_assets(
        manifest=ensure_manifest(database=settings.duckdb_path),
        project=dbt_project(),
        name="marketo_dbt_models",
        dagster_dbt_translator=MarketoDbtTranslator(),
        pool="duckdb",
    )
    def marketo_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """`dbt build` of the selected models and their tests on the loaders' DuckDB file (or,
        when the dbt resource's target is `postgres`, as with MARKETO_WAREHOUSE=postgres, on
        the PostgreSQL warehouse).

        Every model is a table; each materialization carries its row count
        (`dagster/row_count`).
        """

        def counted(events, database: Path | None):
            def with_count(event, rows: int):
                return event.with_metadata({**event.metadata, "dagster/row_count": rows})

            table_of = partial(_table_of, context)
            return with_row_counts(events, database, table_of, with_count, context.log.warning)

        if dbt.target == "postgres":
            yield from counted(dbt.cli(["build"], context=context).stream(), None)
            return
        with absolute_duckdb_path() as database:
            with private_umask():  # dbt's process writes lead data: its DuckDB files are private
                invocation = dbt.cli(["build"], context=context)
            yield from counted(invocation.stream(), database)

    return marketo_dbt_models


dbt_models_after_raw_loads = dg.AutomationConditionSensorDefinition(
    "dbt_models_after_raw_loads",
    target=_MODELS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Builds the dbt models after their raw Marketo tables are loaded.",
)


def build_dbt_definitions(settings: ProjectSettings) -> dg.Definitions:
    """The dbt code location: the models, their automation sensor and the `dbt` resource."""
    return dg.Definitions(
        assets=[dbt_models(settings)],
        sensors=[dbt_models_after_raw_loads],
        resources={"dbt": dbt_resource(settings)},
        executor=dg.in_process_executor,
    )


def _table_of(context: dg.AssetExecutionContext, event: Any) -> str | None:
    """`schema.table` of a model's Output / AssetMaterialization, else None."""
    if isinstance(event, dg.Output):
        key = context.asset_key_for_output(event.output_name)
    elif isinstance(event, dg.AssetMaterialization):
        key = event.asset_key
    else:
        return None
    table = context.assets_def.specs_by_key[key].metadata.get("dagster/table_name")
    # `catalog.schema.table` -> `schema.table`: the model schemas are unambiguous on their
    # own, whatever the database file (and so the catalog) is called.
    return ".".join(str(table).split(".")[-2:]) if table else None
