"""Partitions built from the settings (docs/ARCHITECTURE.md#partitions-and-marketo-windows)."""

import dagster as dg

from marketo_assets.extract.windows import window_start
from marketo_assets.settings import ProjectSettings

_WINDOWS = {
    "monthly": dg.MonthlyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
}


def lead_windows(settings: ProjectSettings, window: str = "") -> dg.TimeWindowPartitionsDefinition:
    """MARKETO_PARTITION_WINDOW windows (or `window`, the activities') from the start date."""
    window = window or settings.partition_window
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


LIST_PARTITIONS = {
    k: dg.DynamicPartitionsDefinition(name=f"{k}_lists") for k in ("static", "smart")
}
static_lists, smart_lists = LIST_PARTITIONS["static"], LIST_PARTITIONS["smart"]
