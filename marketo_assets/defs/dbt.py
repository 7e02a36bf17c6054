"""The `marketo_dbt` code location: dbt models, their sensor, the `dbt` resource (docs/DBT.md)."""

import sys
from collections.abc import Mapping, Sequence
from functools import cache, cached_property, partial
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from marketo_assets.extract.local_paths import private_umask
from marketo_assets.settings import ProjectSettings, load_settings
from marketo_assets.transform import manifest
from marketo_assets.transform.build import absolute_duckdb_path, with_row_counts

MODELS_GROUP = "marketo_models"

# How many steps a model can be from a raw table (raw -> staging -> marts -> reporting is 3).
MODEL_DEPTH = 4
_MODELS = dg.AssetSelection.groups(MODELS_GROUP)
_RAW = dg.AssetSelection.all() - _MODELS
AC = dg.AutomationCondition


def _raw_upstream_in_progress(levels: int) -> dg.AutomationCondition:
    """A raw asset up to `levels` steps upstream is loading (queued, running, in a backfill);
    `any_deps_in_progress` looks one step up only. dbt runs queue in the `duckdb` pool."""
    raw_dep_loading = AC.any_deps_match(AC.in_progress()).allow(_RAW)
    busy: dg.AutomationCondition = raw_dep_loading
    for _ in range(levels - 1):
        busy = raw_dep_loading | AC.any_deps_match(busy).allow(_MODELS)
    return busy


# Build a model once a table it reads was loaded since it was last requested, but not while a
# raw table upstream is still loading (one build per backfill), nor while it is being built.
AFTER_RAW_LOADS = (
    AC.any_deps_updated().since_last_handled()
    & ~_raw_upstream_in_progress(MODEL_DEPTH)
    & ~AC.in_progress()
).with_label("after raw loads")


class MarketoDbtTranslator(DagsterDbtTranslator):
    """Models: group `marketo_models`, built after raw loads; sources keep their raw asset keys."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if unique_id.startswith("source."):
            return spec
        return spec.replace_attributes(
            group_name=MODELS_GROUP, automation_condition=AFTER_RAW_LOADS
        )


@cache
def dbt_project() -> DbtProject:
    """The project for dagster-dbt (the manifest is prepared by `transform.manifest`)."""
    folder = manifest.DBT_PROJECT_DIR
    return DbtProject(project_dir=folder, profiles_dir=folder, target=manifest.TARGET)


class DuckDBDbtCliResource(DbtCliResource):
    """`DbtCliResource` without two start-up costs (docs/DBT.md#start-up-cost), private hooks
    that `unit/test_private_hooks.py` checks: `dbt --version` and an in-process adapter."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(installed_version("dbt-core"))
        return DbtCliResource._cli_version.func(self)  # type: ignore[attr-defined]

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def dbt_resource(settings: ProjectSettings | None = None) -> DuckDBDbtCliResource:
    """This virtualenv's `dbt`, on the `postgres` target with MARKETO_WAREHOUSE=postgres."""
    settings = settings or load_settings()
    return DuckDBDbtCliResource(
        project_dir=dbt_project(),  # type: ignore[arg-type]  # a DbtProject is accepted
        dbt_executable=manifest.dbt_executable(),
        target="postgres" if settings.warehouse == "postgres" else None,
    )


def dbt_models(settings: ProjectSettings) -> dg.AssetsDefinition:
    """The dbt models as assets, from the manifest parsed for the settings' DuckDB file."""

    @dbt_assets(
        manifest=manifest.ensure_manifest(database=settings.duckdb_path),
        project=dbt_project(),
        name="marketo_dbt_models",
        dagster_dbt_translator=MarketoDbtTranslator(),
        pool="duckdb",
    )
    def marketo_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """`dbt build` of the selected models and tests on the loaders' warehouse (DuckDB, or
        PostgreSQL with MARKETO_WAREHOUSE=postgres). Row counts in `dagster/row_count`."""

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


def build_dbt_definitions(settings: ProjectSettings) -> dg.Definitions:
    """The dbt code location: the models, their automation sensor and the `dbt` resource."""
    sensor = dg.AutomationConditionSensorDefinition(
        "dbt_models_after_raw_loads",
        target=_MODELS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Builds the dbt models after their raw Marketo tables are loaded.",
    )
    return dg.Definitions(
        assets=[dbt_models(settings)],
        sensors=[sensor],
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
    # `catalog.schema.table` -> `schema.table`, whatever the database file (catalog) is called.
    return ".".join(str(table).split(".")[-2:]) if table else None
