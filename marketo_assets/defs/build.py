"""The definitions as a function of the settings (jobs in-process: docs/RELIABILITY.md)."""

import warnings

import dagster as dg

from marketo_assets.extract.quota import check_budget
from marketo_assets.extract.windows import start_warnings
from marketo_assets.settings import ListConfig, ProjectSettings, SettingsWarning

from .activities import activity_assets, activity_types
from .deleted_leads import deleted_leads_asset
from .leads import lead_assets, lead_change_assets
from .list_sensors import list_sensors
from .lists import LIST_KINDS, list_assets, lists
from .programs import program_assets
from .quota import quota_resume_sensor
from .resources import build_resources
from .schedules import daily_schedules


def build_definitions(settings: ProjectSettings, list_settings: ListConfig) -> dg.Definitions:
    """Everything of the project for these settings; warns about settings that switch some off."""
    off = {f"{kind}-list": list_settings.sensor_problem(kind) for kind in LIST_KINDS}
    off["program"] = list_settings.sensor_problem("program")
    reasons = [f"The {name} sensor is off: {why}" for name, why in off.items() if why]
    for reason in [*start_warnings(settings), *reasons]:
        warnings.warn(reason, SettingsWarning, stacklevel=2)
    check_budget(settings)
    exports = [  # every bulk export family: the quota sensor resumes their partitions
        *lead_assets(settings),
        *lead_change_assets(settings),
        *activity_assets(settings),
        *(asset for kind in LIST_KINDS for asset in list_assets(kind, list_settings)),
        *program_assets(list_settings),
    ]
    return dg.Definitions(
        assets=[*exports, activity_types, lists, deleted_leads_asset(settings)],
        schedules=daily_schedules(settings),
        sensors=[*list_sensors(settings, list_settings), quota_resume_sensor(settings, exports)],
        resources=build_resources(settings, list_settings),
        executor=dg.in_process_executor,
    )
