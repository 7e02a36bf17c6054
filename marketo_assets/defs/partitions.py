"""Partitions: one per Marketo date window (monthly by default, weekly or daily by setting).

The last partition is the current, still-open window (`end_offset=1`) so the daily schedule can
refresh it. Marketo windows are inclusive at both ends and have no milliseconds, so a partition
[start, end) is sent as `startAt = start`, `endAt = end - 1 s`.

The first partition is the window that contains MARKETO_PARTITION_START (weeks start on Sunday,
months on the 1st): Dagster starts a partitions definition at the first window boundary on or
after its start date, so the definition starts at the boundary on or before it. That first
partition exports from MARKETO_PARTITION_START (midnight in MARKETO_PARTITION_TIMEZONE), not
from its window start (`lead_window`): every lead created at or after the start date is in
exactly one partition, and none created before it.

Lists: one dynamic partition per selected list, keyed by its stable id (`static-1021`,
`smart-5001`; never by name), added and removed by the list sensors. Lead changes: one daily
partition per day of `updatedAt` changes.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from marketo_assets.settings import SettingsWarning, load_settings

_settings = load_settings()
_WINDOWS = {
    "monthly": dg.MonthlyPartitionsDefinition,
    "weekly": dg.WeeklyPartitionsDefinition,
    "daily": dg.DailyPartitionsDefinition,
}


def window_start(day: date, window: str) -> date:
    """The first day of the daily, weekly (Sunday, Dagster's default) or monthly window that
    contains `day`."""
    if window == "weekly":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if window == "monthly":
        return day.replace(day=1)
    return day


lead_windows = _WINDOWS[_settings.partition_window](
    start_date=window_start(_settings.partition_start, _settings.partition_window).isoformat(),
    timezone=_settings.partition_timezone,
    end_offset=1,
)
# Leads created before this are in no partition (MARKETO_PARTITION_START, local midnight).
LEADS_START = datetime.combine(
    _settings.partition_start, time(), ZoneInfo(_settings.partition_timezone)
)


def lead_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A lead partition's window [start, end] with the first one cut at LEADS_START."""
    return max(start, LEADS_START), end


static_lists = dg.DynamicPartitionsDefinition(name="static_lists")
smart_lists = dg.DynamicPartitionsDefinition(name="smart_lists")
LIST_PARTITIONS = {"static": static_lists, "smart": smart_lists}

lead_change_days = dg.DailyPartitionsDefinition(
    start_date=_settings.lead_changes_first_day.isoformat(),
    timezone=_settings.partition_timezone,
    end_offset=1,
)


def list_partition_key(kind: str, list_id: int) -> str:
    return f"{kind}-{int(list_id)}"


def list_id_from_key(kind: str, partition_key: str) -> int:
    prefix = f"{kind}-"
    if not partition_key.startswith(prefix) or not partition_key[len(prefix) :].isdigit():
        raise ValueError(f"not a {kind} list partition key: {partition_key!r}")
    return int(partition_key[len(prefix) :])


def future_start(current_time: datetime | None = None) -> str | None:
    """Why no lead partition can run yet (MARKETO_PARTITION_START after today), or None."""
    return _future("MARKETO_PARTITION_START", _settings.partition_start, current_time)


def lead_changes_future_start(current_time: datetime | None = None) -> str | None:
    """The same for the lead-change days (MARKETO_LEAD_CHANGES_START, default the above)."""
    own = _settings.lead_changes_start is not None
    variable = "MARKETO_LEAD_CHANGES_START" if own else "MARKETO_PARTITION_START"
    return _future(variable, _settings.lead_changes_first_day, current_time)


def _future(variable: str, start: date, current_time: datetime | None) -> str | None:
    zone = ZoneInfo(_settings.partition_timezone)
    today = (current_time or datetime.now(zone)).astimezone(zone).date()
    if start <= today:
        return None
    return (
        f"{variable} is {start.isoformat()}, in the future (today is {today.isoformat()} in "
        f'{zone.key}): there is no partition yet to export, hence "Could not find a partition '
        f'with key". Set {variable} to a past date (YYYY-MM-DD), e.g. the first day of the '
        "month your Marketo data starts."
    )


for _reason in dict.fromkeys([future_start(), lead_changes_future_start()]):
    if _reason:
        warnings.warn(_reason, SettingsWarning, stacklevel=1)
