"""Dagster entry point: the definitions built from the settings of the environment.

`dagster dev -m marketo_assets.definitions`, workspace.yaml and `dg` load `defs` below; the
settings are read here, when the definitions load (see `defs/build.py`)."""

import dagster as dg

from marketo_assets.defs.build import build_definitions
from marketo_assets.settings import load_list_settings, load_settings


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings(), load_list_settings())
