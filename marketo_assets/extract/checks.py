"""Asset check results as plain data: what the engine checked; defs/ shows them in Dagster.
Also the load checks of the export families that need more than rows and unique ids (each
evaluated inside the load's warehouse session: `(checks, metadata)`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .activities import inside_window
from .windows import created_inside

if TYPE_CHECKING:
    from marketo_assets.warehouse import SharedIds, WarehouseSession

    from .load import LoadedPartition

__all__ = ["CHECK_ROWS", "Check", "activity_checks", "lead_checks", "program_checks"]
__all__ += ["partitions_in_table", "updated_outside_day"]

CHECK_ROWS = "rows_match_marketo"  # loaded rows = the rows Marketo said it returned
CHECK_WINDOW = "created_at_inside_window"
CHECK_TABLE_UNIQUE = "lead_ids_unique_in_table"
CHECK_ACTIVITY_WINDOW = "activity_date_inside_window"
CHECK_PROGRAM = "program_id_is_the_partition"
CHECK_PARTITIONS = "materialized_partitions_in_table"
Checked = tuple[list["Check"], dict[str, Any]]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None


def lead_checks(
    wh: WarehouseSession,
    loaded: LoadedPartition,
    table: str,
    partition_key: str,
    start: datetime,
    end: datetime,
) -> Checked:
    """createdAt inside the window; none of the partition's lead ids in another partition of
    `table` (a probe for its ids: the table is not aggregated after every load)."""
    inside, window = created_inside(loaded.stats, loaded.timestamp_column, start, end)
    shared = wh.ids_in_other_partitions(table, partition_key, id_column=loaded.id_column)
    return [
        Check(CHECK_WINDOW, inside, window),
        _ids_in_one_partition(shared, table, partition_key),
    ], {}


def _ids_in_one_partition(shared: SharedIds, table: str, partition_key: str) -> Check:
    """CHECK_TABLE_UNIQUE from `shared`: fails naming the other partitions and the fix."""
    metadata = {
        "ids_in_other_partitions": shared.ids,
        "other_partition_count": shared.partitions,
        "other_partitions": [key for key, _ in shared.examples],
    }
    if not shared.ids:
        return Check(CHECK_TABLE_UNIQUE, True, metadata)
    named = ", ".join(key for key, _ in shared.examples)
    if shared.partitions > len(shared.examples):
        named += f" and {shared.partitions - len(shared.examples)} more"
    ids = f"{shared.ids} lead id{'s' if shared.ids != 1 else ''}"
    others = f"{shared.partitions} other partition{'s' if shared.partitions != 1 else ''}"
    fix = (
        f"{ids} of partition {partition_key} {'are' if shared.ids != 1 else 'is'} also in "
        f"{others} of {table} ({named}): a lead belongs to one window, so the windows "
        "overlap (was MARKETO_PARTITION_WINDOW, MARKETO_PARTITION_START or "
        "MARKETO_PARTITION_TIMEZONE changed?). "
        "Re-materialize those partitions (each is exported again for its current window), "
        f"or delete from {table} the rows of a partition the settings no longer have (its "
        "_partition_key; docs/TROUBLESHOOTING.md, 'A lead id in two partitions')."
    )
    return Check(CHECK_TABLE_UNIQUE, False, metadata, fix)


def activity_checks(loaded: LoadedPartition, start: datetime, end: datetime) -> Checked:
    """activityDate inside the window."""
    passed, metadata = inside_window(loaded.stats, "activityDate", start, end)
    return [Check(CHECK_ACTIVITY_WINDOW, passed, metadata)], {}


def updated_outside_day(
    wh: WarehouseSession,
    loaded: LoadedPartition,
    table: str,
    key: str,
    start: datetime,
    end: datetime,
) -> Checked:
    """No check: the rows whose visible updatedAt lies outside the day are counted (Marketo's
    filter matches the last change to any field)."""
    column = loaded.timestamp_column or "updatedAt"
    count = wh.rows_outside_window(table, key, column, start, end)
    return [], {
        "rows_updated_at_outside_day": count,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
    }


def program_checks(wh: WarehouseSession, table: str, key: str, program_id: int) -> Checked:
    """Every row's programId is the partition's program."""
    other = wh.rows_outside_window(table, key, "programId", program_id, program_id)
    return [Check(CHECK_PROGRAM, other == 0, {"other_rows": other})], {"program_id": program_id}


def partitions_in_table(missing: list[str], in_table: int, table: str, assets: list[str]) -> Check:
    """CHECK_PARTITIONS: fails naming the partitions shown as materialized (with rows) whose
    rows `table` does not have (`missing`), e.g. after the database file was deleted or
    replaced, and how to restore them (a backfill of `assets`)."""
    fix = (
        f"Partitions {', '.join(missing)} are materialized in Dagster but have no rows in "
        f"{table} (was the database file deleted or replaced?). Restore them with a backfill "
        f"of those partitions of {' and '.join(assets)} (Materialize, select the partitions; "
        "this exports them again)."
    )
    metadata = {"missing_partitions": missing, "partitions_in_table": in_table}
    return Check(CHECK_PARTITIONS, not missing, metadata, fix if missing else None)
