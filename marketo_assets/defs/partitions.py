"""Partitions: one per Marketo date window (monthly by default, weekly or daily by setting).

The last partition is the current, still-open window (`end_offset=1`) so the daily schedule can
refresh it. Marketo windows are inclusive at both ends and have no milliseconds, so a partition
[start, end) is sent as `startAt = start`, `endAt = end - 1 s`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from marketo_assets.settings import load_settings

_settings = load_settings()
_WINDOWS = {
    "monthly": dg.MonthlyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
}

lead_windows = _WINDOWS[_settings.partition_window](
    start_date=_settings.partition_start.isoformat(),
    timezone=_settings.partition_timezone,
    end_offset=1,
)


def marketo_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The inclusive [startAt, endAt] Marketo window for the partition window [start, end)."""
    return start, end - timedelta(seconds=1)
