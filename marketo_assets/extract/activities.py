"""Bulk activity exports: the columns, the activity type selection and a window's filters.

The activity export's columns are fixed by Marketo (no describe): `ACTIVITY_FIELDS`, typed with
the warehouse's own `int32` and `json` types where Marketo fixes the type. Activity types are
selected by id or by name; names are resolved through the catalog
(`GET /rest/v1/activities/types.json`) before any export job, and a name or id the catalog does
not have fails the export at once, naming the setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from marketo_assets.marketo import ActivityFilter, ActivityType, LeadField
from marketo_assets.marketo.exports import split_window

from .errors import ExportFailed

__all__ = [
    "ACTIVITY_FIELDS",
    "ACTIVITY_TYPE_COLUMNS",
    "activity_fields",
    "activity_filters",
    "activity_type_rows",
    "inside_window",
    "resolve_activity_types",
]

# (REST name, data type) of the bulk activity export's default columns, in file order.
ACTIVITY_FIELDS: tuple[tuple[str, str], ...] = (
    ("marketoGUID", "string"),
    ("leadId", "integer"),
    ("activityDate", "datetime"),
    ("activityTypeId", "int32"),
    ("campaignId", "int32"),
    ("primaryAttributeValueId", "integer"),
    ("primaryAttributeValue", "string"),
    ("attributes", "json"),
)

# The catalog table's columns (warehouse types).
ACTIVITY_TYPE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "INTEGER NOT NULL"),
    ("name", "VARCHAR"),
    ("description", "VARCHAR"),
    ("primaryAttribute", "JSON"),
    ("attributes", "JSON"),
)


def activity_fields() -> list[LeadField]:
    """The export's columns as the fields a family exports (what describe is to leads)."""
    return [LeadField(name=name, data_type=data_type) for name, data_type in ACTIVITY_FIELDS]


def resolve_activity_types(
    wanted: Sequence[str], catalog: Sequence[ActivityType], setting: str
) -> tuple[int, ...]:
    """The ids of the `wanted` activity types (ids, or names in any case), in catalog order.
    A name or id the catalog does not have fails, naming `setting` and the known types."""
    by_name = {t.name.casefold(): t.id for t in catalog}
    ids = {t.id for t in catalog}
    found: set[int] = set()
    unknown: list[str] = []
    for item in wanted:
        text = item.strip()
        type_id = int(text) if text.isdigit() else by_name.get(text.casefold())
        if type_id is None or type_id not in ids:
            unknown.append(text)
        else:
            found.add(type_id)
    if unknown:
        known = ", ".join(f"{t.id} {t.name}" for t in catalog[:40])
        raise ExportFailed(
            f"{setting} names activity types Marketo does not have: {', '.join(unknown)}. "
            f"Use ids or names from GET /rest/v1/activities/types.json (e.g. {known}), or "
            f"leave {setting} empty for every type. No export job was created.",
            retryable=False,
        )
    return tuple(t.id for t in catalog if t.id in found)


def activity_filters(
    start: datetime, end: datetime, type_ids: Sequence[int] = ()
) -> list[ActivityFilter]:
    """The filters of the inclusive window [start, end]: one per part of at most 31 days."""
    return [
        ActivityFilter(start=lo, end=hi, activity_type_ids=tuple(type_ids))
        for lo, hi in split_window(start, end)
    ]


def activity_type_rows(catalog: Sequence[ActivityType]) -> list[dict[str, Any]]:
    """The catalog table's rows (`ACTIVITY_TYPE_COLUMNS`; JSON columns as Python values)."""
    return [
        {
            "id": t.id,
            "name": t.name,
            "description": t.description,
            "primaryAttribute": t.primary_attribute,
            "attributes": list(t.attributes),
        }
        for t in catalog
    ]


def inside_window(
    stats: dict[str, Any], column: str, start: datetime, end: datetime
) -> tuple[bool, dict[str, Any]]:
    """Whether every loaded row's `column` is in [start, end] (no NULLs), and the figures."""
    lo, hi, nulls = stats[f"min_{column}"], stats[f"max_{column}"], stats[f"null_{column}"]
    inside = nulls == 0 and (
        stats["rows"] == 0 or (lo is not None and lo >= start and hi is not None and hi <= end)
    )
    return bool(inside), {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        f"min_{column}": str(lo),
        f"max_{column}": str(hi),
        f"null_{column}": nulls,
    }
