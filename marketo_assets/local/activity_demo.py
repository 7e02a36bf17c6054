"""`make demo`'s activity part: a week of activities and deleted leads, one program's members.

The week is a second backfill, launched next to the lead backfill in the same daemon: its
export steps share the `marketo_bulk_export` pool (and Marketo's queue and quota) with the lead
exports, its loads the `duckdb` pool. It holds `marketo/activity_export_files` →
`marketo/activities` and `marketo/deleted_leads` (the same daily partitions: a day's
activities and deletions load in one run) and the activity type catalog `marketo/activity_types`
(the dbt models name the types with it).

The program members come from the program sensor, which ticks in the daemon with the list
sensors (`list_demo.py`); the simulator demo selects one program (MARKETO_PROGRAMS,
`environment.py`).

The summary counts each table's rows for the week and the program, and checks them against
what the runs reported loading (`dagster/row_count`) and, with the simulator, its own count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

from marketo_assets.defs.activities import ACTIVITY_TYPES
from marketo_assets.defs.deleted_leads import DELETED_LEADS
from marketo_assets.defs.programs import PROGRAM_MEMBERS

ACTIVITY_EXPORTS = dg.AssetKey(["marketo", "activity_export_files"])
ACTIVITIES = dg.AssetKey(["marketo", "activities"])
DAYS = 7


@dataclass(frozen=True)
class WeekBackfill:
    """What one backfill covers: asset keys and partition keys (empty: unpartitioned)."""

    assets: list[dg.AssetKey]
    partitions: list[str]


def week_backfills(defs: dg.Definitions, end: datetime) -> list[WeekBackfill]:
    """The backfills of the seven days before `end`: one when the activity partitions are
    daily in UTC like the deleted leads' (the default), else one per partitioning. The
    activity type catalog goes with the first."""
    activities = _overlapping(defs, ACTIVITIES, end)
    deleted = _overlapping(defs, DELETED_LEADS, end)
    if activities == deleted:
        assets = [ACTIVITY_EXPORTS, ACTIVITIES, DELETED_LEADS, ACTIVITY_TYPES]
        return [WeekBackfill(assets, activities)]
    return [
        WeekBackfill([ACTIVITY_EXPORTS, ACTIVITIES, ACTIVITY_TYPES], activities),
        WeekBackfill([DELETED_LEADS], deleted),
    ]


def _overlapping(defs: dg.Definitions, key: dg.AssetKey, end: datetime) -> list[str]:
    windows = defs.get_assets_def(key).partitions_def
    assert isinstance(windows, dg.TimeWindowPartitionsDefinition)
    start = end - timedelta(days=DAYS)
    keys = windows.get_partition_keys()
    return [
        k
        for k in keys
        if (w := windows.time_window_for_partition_key(k)).start < end and w.end > start
    ]


@dataclass
class Expected:
    """Rows per table from another source than the table: None where unknown."""

    activities: int | None = None
    deleted_leads: int | None = None
    program_members: dict[int, int] | None = None


def simulator_truth(simulator, start: datetime, end: datetime, program_ids: list[int]) -> Expected:
    """The simulator's own counts for [start, end) and the programs."""
    first, last = start.isoformat(), (end - timedelta(seconds=1)).isoformat()
    return Expected(
        activities=simulator.truth_activities(first, last)["count"],
        deleted_leads=simulator.truth_deleted_leads(first, last)["count"],
        program_members={p: simulator.truth_program_members([p])["count"] for p in program_ids},
    )


def loaded_rows(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Sequence[str]
) -> int | None:
    """Sum of `dagster/row_count` of each partition's latest materialization; None when a
    partition has none."""
    total = 0
    for partition in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        if not records:
            return None
        materialization = records[0].asset_materialization
        assert materialization is not None
        total += int(materialization.metadata["dagster/row_count"].value)  # type: ignore[arg-type]
    return total


@dataclass
class Loaded:
    """What the runs reported loading, read from the instance before the demo exits."""

    activities: int | None
    deleted_leads: int | None
    program_members: dict[str, int | None]


def reported(
    instance: dg.DagsterInstance, backfills: list[WeekBackfill], programs: Sequence[str]
) -> Loaded:
    keys = {a: b.partitions for b in backfills for a in b.assets}
    return Loaded(
        activities=loaded_rows(instance, ACTIVITIES, keys[ACTIVITIES]),
        deleted_leads=loaded_rows(instance, DELETED_LEADS, keys[DELETED_LEADS]),
        program_members={p: loaded_rows(instance, PROGRAM_MEMBERS, [p]) for p in programs},
    )


def week_summary(
    duckdb_path: Path,
    backfills: list[WeekBackfill],
    loaded: Loaded,
    expected: Expected,
    say: Callable[[str], None] = print,
) -> bool:
    """Print rows of the week and the programs; True when each is > 0 and equals what the
    runs loaded (and the simulator's count)."""
    import duckdb

    keys = {a: b.partitions for b in backfills for a in b.assets}
    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        activities = _count(conn, "activities", keys[ACTIVITIES])
        deleted = _count(conn, "deleted_leads", keys[DELETED_LEADS])
        members = _count_by(conn, "program_members", "_partition_key")
    days, deleted_days = keys[ACTIVITIES], keys[DELETED_LEADS]
    truth = expected.program_members or {}
    rows = [
        (f"marketo.activities {days[0]} … {days[-1]}", activities, loaded.activities,
         expected.activities),
        (f"marketo.deleted_leads {deleted_days[0]} … {deleted_days[-1]}", deleted,
         loaded.deleted_leads, expected.deleted_leads),
    ]  # fmt: skip
    for program, count in sorted(members.items()):
        marketo = truth.get(int(program)) if program.isdigit() else None
        label = f"marketo.program_members program {program}"
        rows.append((label, count, loaded.program_members.get(program), marketo))
    say("")
    say(f"{'Table':<50} {'Rows':>9}  Check")
    ok = bool(members) or not os.environ.get("MARKETO_PROGRAMS")  # none selected: none wanted
    for label, count, runs, marketo in rows:
        problems = _problems(count, runs, marketo)
        ok = ok and not problems
        note = "; ".join(problems) or "= rows loaded" + (" = simulator" if marketo else "")
        say(f"{label:<50} {count:>9,}  {note}")
    if not members:
        say("(no program loaded: set MARKETO_PROGRAMS)")
    return ok


def _problems(count: int, runs: int | None, marketo: int | None) -> list[str]:
    problems = [] if count else ["no rows"]
    if runs is None:
        problems.append("no run reported loading it")
    elif runs != count:
        problems.append(f"runs loaded {runs:,}")
    if marketo is not None and marketo != count:
        problems.append(f"Marketo has {marketo:,}")
    return problems


def _count(conn, table: str, partitions: Sequence[str]) -> int:
    return sum(_count_by(conn, table, "_partition_key", partitions).values())


def _count_by(conn, table: str, column: str, only: Sequence[str] | None = None) -> dict[str, int]:
    import duckdb

    where = f" WHERE {column} IN ({', '.join('?' for _ in only)})" if only else ""
    try:
        found = conn.execute(
            f"SELECT {column}, count(*) FROM marketo.marketo.{table}{where} GROUP BY 1",
            list(only or ()),
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    return {str(k): int(n) for k, n in found}
