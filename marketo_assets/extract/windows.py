"""The date windows of the lead and lead-change partitions, from the settings.

The first lead partition is the window that contains MARKETO_PARTITION_START (weeks start on
Sunday, months on the 1st): Dagster starts a partitions definition at the first window boundary
on or after its start date, so the definition starts at the boundary on or before it. That
first partition exports from MARKETO_PARTITION_START (midnight in MARKETO_PARTITION_TIMEZONE),
not from its window start (`lead_window`): every lead created at or after the start date is in
exactly one partition, and none created before it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from marketo_assets.settings import ProjectSettings

__all__ = [
    "created_inside",
    "future_start",
    "lead_changes_future_start",
    "lead_window",
    "start_warnings",
    "window_start",
]


def window_start(day: date, window: str) -> date:
    """The first day of the daily, weekly (Sunday, Dagster's default) or monthly window that
    contains `day`."""
    if window == "weekly":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if window == "monthly":
        return day.replace(day=1)
    return day


def lead_window(
    settings: ProjectSettings, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """A lead partition's window [start, end] with the first one cut at MARKETO_PARTITION_START
    (local midnight): leads created before it are in no partition."""
    leads_start = datetime.combine(
        settings.partition_start, time(), ZoneInfo(settings.partition_timezone)
    )
    return max(start, leads_start), end


def future_start(settings: ProjectSettings, current_time: datetime | None = None) -> str | None:
    """Why no lead partition can run yet (MARKETO_PARTITION_START after today), or None."""
    return _future(settings, "MARKETO_PARTITION_START", settings.partition_start, current_time)


def lead_changes_future_start(
    settings: ProjectSettings, current_time: datetime | None = None
) -> str | None:
    """The same for the lead-change days (MARKETO_LEAD_CHANGES_START, default the above)."""
    own = settings.lead_changes_start is not None
    variable = "MARKETO_LEAD_CHANGES_START" if own else "MARKETO_PARTITION_START"
    return _future(settings, variable, settings.lead_changes_first_day, current_time)


def _future(
    settings: ProjectSettings, variable: str, start: date, current_time: datetime | None
) -> str | None:
    zone = ZoneInfo(settings.partition_timezone)
    today = (current_time or datetime.now(zone)).astimezone(zone).date()
    if start <= today:
        return None
    return (
        f"{variable} is {start.isoformat()}, in the future (today is {today.isoformat()} in "
        f'{zone.key}): there is no partition yet to export, hence "Could not find a partition '
        f'with key". Set {variable} to a past date (YYYY-MM-DD), e.g. the first day of the '
        "month your Marketo data starts."
    )


def start_warnings(settings: ProjectSettings) -> list[str]:
    """What the definitions warn about at load: start dates in the future."""
    reasons = [future_start(settings), lead_changes_future_start(settings)]
    return [reason for reason in dict.fromkeys(reasons) if reason]


def created_inside(
    stats: dict, column: str | None, start: datetime, end: datetime
) -> tuple[bool, dict]:
    """Are a loaded lead partition's `column` (createdAt) values all inside [start, end]?
    `stats`: the partition's (rows, min_/max_/null_<column>). A lead without createdAt is in
    no window. Returns (passed, the check's metadata)."""
    lo, hi = stats[f"min_{column}"], stats[f"max_{column}"]
    nulls = stats[f"null_{column}"]
    inside = nulls == 0 and (
        stats["rows"] == 0 or (lo is not None and lo >= start and hi is not None and hi <= end)
    )
    return bool(inside), {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "min_created_at": str(lo),
        "max_created_at": str(hi),
        "null_created_at": nulls,
    }
