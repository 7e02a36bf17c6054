"""Dagster entry point of the dbt code location: the dbt models over the raw Marketo tables.

workspace.yaml loads it next to `marketo_assets.definitions`; the dbt sources carry the raw
assets' keys, so lineage runs across both locations (see `defs/dbt.py`)."""

import dagster as dg

from marketo_assets.defs.dbt import build_dbt_definitions
from marketo_assets.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    return build_dbt_definitions(load_settings())
