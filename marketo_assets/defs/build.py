"""The definitions as a function of the settings: `build_definitions(settings, lists)`.

Settings are read once, when the definitions load (`marketo_assets.definitions`), never when a
module under defs/ is imported; tests build definitions for the settings they choose.

The dbt models are another code location (`marketo_assets.dbt_definitions`, built by
`defs/dbt.py`): a run of these assets never imports dagster-dbt or dbt-core.

The default executor of every job, including the asset jobs of backfills and UI launches, is
in-process: one process per run instead of one per step (each step process re-imports dagster and
the definitions: seconds of CPU per step on a small machine). Pools are still
claimed per step: an export step waits for a `marketo_bulk_export` slot, a load or dbt step for
the `duckdb` slot (the pool keeps its name with MARKETO_WAREHOUSE=postgres: one writer at a time
either way). Terminating a run stops the running step and cancels its Marketo job
(`cycle.RunTerminated`).
"""

import warnings

import dagster as dg

from marketo_assets.settings import ListConfig, ProjectSettings, SettingsWarning

from .lead_changes import build_lead_changes_schedule, lead_change_assets
from .leads import lead_assets, open_window_schedule
from .list_sensors import list_catalog_job, list_member_jobs, list_sensors
from .lists import LIST_KINDS, list_assets, lists
from .partitions import start_warnings
from .resources import build_resources


def build_definitions(settings: ProjectSettings, list_settings: ListConfig) -> dg.Definitions:
    """Every asset, check, job, sensor, schedule and resource of the project for `settings`
    (`load_settings()`) and `list_settings` (`load_list_settings()`). Warns (SettingsWarning)
    about settings that switch part of the project off."""
    for reason in start_warnings(settings):
        warnings.warn(reason, SettingsWarning, stacklevel=2)
    for kind in LIST_KINDS:
        if problem := list_settings.sensor_problem(kind):
            message = f"The {kind}-list sensor is off: {problem}"
            warnings.warn(message, SettingsWarning, stacklevel=2)
    return dg.Definitions(
        assets=[
            *lead_assets(settings),
            *lead_change_assets(settings),
            *(asset for kind in LIST_KINDS for asset in list_assets(kind, list_settings)),
            lists,
        ],
        jobs=[list_catalog_job, *list_member_jobs.values()],
        schedules=[open_window_schedule(settings), build_lead_changes_schedule(settings)],
        sensors=list_sensors(settings, list_settings),
        resources=build_resources(settings, list_settings),
        executor=dg.in_process_executor,
    )
