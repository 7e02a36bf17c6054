"""The dbt CLI resource (`dbt`)."""

import sys
from collections.abc import Sequence
from functools import cache, cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from marketo_assets.settings import ProjectSettings, load_settings
from marketo_assets.transform.manifest import DBT_PROJECT_DIR, TARGET, dbt_executable


@cache
def dbt_project() -> DbtProject:
    """The project for dagster-dbt (the manifest is prepared by `transform.manifest`)."""
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=TARGET)


class DuckDBDbtCliResource(DbtCliResource):
    """`DbtCliResource` without two start-up costs that every dbt step pays, in dagster-dbt
    0.29.27, before `dbt build` starts, while it already holds the `duckdb` pool slot that the
    loads wait for (seconds when idle, a minute on a busy machine):

    - `dbt --version` in a subprocess, to learn the version: read from the installed dbt-core
      package instead when the executable is this virtualenv's own `dbt`;
    - an in-process dbt adapter (profile, project and every macro loaded) that only
      `fetch_row_counts()` / `fetch_column_metadata()` use: this project counts rows itself once
      dbt has exited (see `dbt.py`), so none is built.

    Both are private hooks of dagster-dbt: `unit/test_private_hooks.py` fails if a release
    renames them or stops calling them.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(installed_version("dbt-core"))
        return DbtCliResource._cli_version.func(self)  # type: ignore[attr-defined]

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def dbt_resource(settings: ProjectSettings | None = None) -> DuckDBDbtCliResource:
    # The virtualenv's own `dbt`, so runs work even when .venv/bin is not on PATH.
    # MARKETO_WAREHOUSE=postgres: the profile's `postgres` target (PG* variables), where the
    # loaders wrote the raw tables; otherwise the project's DuckDB target.
    settings = settings or load_settings()
    target = "postgres" if settings.warehouse == "postgres" else None
    return DuckDBDbtCliResource(
        project_dir=dbt_project(),  # type: ignore[arg-type]  # a DbtProject is accepted
        dbt_executable=dbt_executable(),
        target=target,
    )
