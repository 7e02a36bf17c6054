"""The definitions as a function of the settings: `build_definitions(settings, lists)`, called
when `marketo_assets.definitions` loads (tests build them for the settings they choose). Every
job runs in-process: one process per run, pools still claimed per step (docs/RELIABILITY.md)."""

import warnings

import dagster as dg

from marketo_assets.settings import ListConfig, ProjectSettings, SettingsWarning

from .dbt import dbt_models, dbt_models_after_raw_loads
from .dbt_resources import dbt_resource
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
            dbt_models(settings),
        ],
        jobs=[list_catalog_job, *list_member_jobs.values()],
        schedules=[open_window_schedule(settings), build_lead_changes_schedule(settings)],
        sensors=[*list_sensors(settings, list_settings), dbt_models_after_raw_loads],
        resources={**build_resources(settings, list_settings), "dbt": dbt_resource(settings)},
        executor=dg.in_process_executor,
    )
