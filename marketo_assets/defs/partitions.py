"""Partitions: one per Marketo date window (monthly by default, weekly or daily by setting),
one per selected list, one per day of lead changes; built from the settings at load.

The last date partition is the current, still-open window (`end_offset=1`) so the daily
schedules can refresh it. Marketo windows are inclusive at both ends and have no milliseconds,
so a partition [start, end) is sent as `startAt = start`, `endAt = end - 1 s`. Where the first
partition starts: `extract/windows.py`. Lists are keyed by their stable id (`static-1021`,
`smart-5001`; never by name), added and removed by the list sensors.
"""

import dagster as dg

from marketo_assets.extract.list_plan import list_id_from_key, list_partition_key
from marketo_assets.extract.windows import (
    future_start,
    lead_changes_future_start,
    lead_window,
    start_warnings,
    window_start,
)
from marketo_assets.settings import ProjectSettings

__all__ = ["future_start", "lead_changes_future_start", "lead_window", "list_id_from_key"]
__all__ += ["list_partition_key", "start_warnings", "window_start"]  # as before their move

_WINDOWS = {
    "monthly": dg.MonthlyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
}


def lead_windows(settings: ProjectSettings) -> dg.TimeWindowPartitionsDefinition:
    return _windows(settings, settings.partition_window)


def activity_windows(settings: ProjectSettings) -> dg.TimeWindowPartitionsDefinition:
    """The activity partitions: MARKETO_ACTIVITY_PARTITION_WINDOW windows (daily by default)
    from MARKETO_PARTITION_START, cut there like the lead windows (`lead_window`)."""
    return _windows(settings, settings.activity_partition_window)


def _windows(settings: ProjectSettings, window: str) -> dg.TimeWindowPartitionsDefinition:
    return _WINDOWS[window](
        start_date=window_start(settings.partition_start, window).isoformat(),
        timezone=settings.partition_timezone,
        end_offset=1,
    )


def lead_change_days(settings: ProjectSettings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=settings.lead_changes_first_day.isoformat(),
        timezone=settings.partition_timezone,
        end_offset=1,
    )


static_lists = dg.DynamicPartitionsDefinition(name="static_lists")
smart_lists = dg.DynamicPartitionsDefinition(name="smart_lists")
LIST_PARTITIONS = {"static": static_lists, "smart": smart_lists}
