"""The dbt CLI resource. Alone in its module: a `@dg.definitions` hides the module's other
definitions from the `defs/` loader."""

import dagster as dg
from dagster_dbt import DbtCliResource

from .dbt_manifest import dbt_executable, dbt_project


@dg.definitions
def dbt_resources() -> dg.Definitions:
    # The virtualenv's own `dbt`, so runs work even when .venv/bin is not on PATH.
    return dg.Definitions(
        resources={
            "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=dbt_executable())
        }
    )
