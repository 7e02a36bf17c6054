"""Partitions built from the settings: date windows (the last one still open), days of lead
changes, one per selected list (docs/ARCHITECTURE.md#partitions-and-marketo-windows)."""

import dagster as dg

from marketo_assets.extract.windows import window_start
from marketo_assets.settings import ProjectSettings

_WINDOWS = {
    "monthly": dg.MonthlyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
}


def lead_windows(settings: ProjectSettings) -> dg.TimeWindowPartitionsDefinition:
    return _windows(settings, settings.partition_window)


def activity_windows(settings: ProjectSettings) -> dg.TimeWindowPartitionsDefinition:
    """MARKETO_ACTIVITY_PARTITION_WINDOW windows, cut at the start like the lead windows."""
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
