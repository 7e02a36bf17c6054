"""The definitions as a function of the settings: `build_definitions(settings, lists)`, called
when `marketo_assets.definitions` loads (tests build them for the settings they choose). Every
job runs in-process: one process per run, pools still claimed per step (docs/RELIABILITY.md).
The dbt models are another code location (`marketo_assets.dbt_definitions`): a run of these
assets never imports dagster-dbt or dbt-core."""

import warnings

import dagster as dg

from marketo_assets.extract.quota import check_budget
from marketo_assets.settings import ListConfig, ProjectSettings, SettingsWarning

from .activities import activity_assets, activity_types
from .deleted_leads import deleted_leads_asset, deleted_leads_job, deleted_leads_schedule
from .lead_changes import build_lead_changes_schedule, lead_change_assets
from .leads import lead_assets, open_window_schedule
from .list_sensors import list_catalog_job, list_member_jobs, list_sensors
from .lists import LIST_KINDS, list_assets, lists
from .partitions import start_warnings
from .program_sensor import program_members_job, program_sensor
from .programs import program_assets
from .quota import quota_resume_sensor
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
    if problem := list_settings.sensor_problem("program"):
        warnings.warn(f"The program sensor is off: {problem}", SettingsWarning, stacklevel=2)
    check_budget(settings)
    exports = [  # every bulk export family: the quota sensor resumes their partitions
        *lead_assets(settings),
        *lead_change_assets(settings),
        *activity_assets(settings),
        *(asset for kind in LIST_KINDS for asset in list_assets(kind, list_settings)),
        *program_assets(list_settings),
    ]
    return dg.Definitions(
        assets=[
            *exports,
            activity_types,
            lists,
            deleted_leads_asset(settings),
        ],
        jobs=[list_catalog_job, *list_member_jobs.values(), program_members_job, deleted_leads_job],
        schedules=[
            open_window_schedule(settings),
            build_lead_changes_schedule(settings),
            deleted_leads_schedule(settings),
        ],
        sensors=[
            *list_sensors(settings, list_settings),
            program_sensor(list_settings),
            quota_resume_sensor(settings, exports),
        ],
        resources=build_resources(settings, list_settings),
        executor=dg.in_process_executor,
    )
