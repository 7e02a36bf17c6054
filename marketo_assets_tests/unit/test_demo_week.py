"""`make demo`'s week: which backfills it launches, when a backfill counts as done, and when the
summary calls a count wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from marketo_assets.defs.build import build_definitions
from marketo_assets.local import activity_demo as week
from marketo_assets.local.instance import _all_succeeded
from marketo_assets.settings import ListConfig, ListSettings, ProjectSettings

END = datetime(2025, 7, 1, tzinfo=UTC)


def _run(partition: str | None, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    tags = {"dagster/partition": partition} if partition else {}
    return dg.DagsterRun(job_name="__ASSET_JOB", status=status, tags=tags)


def test_one_backfill_for_the_week_of_activities_deleted_leads_and_types():
    defs = build_definitions(ProjectSettings(), ListConfig(ListSettings(), {}))
    [backfill] = week.week_backfills(defs, END)
    assert backfill.partitions == [f"2025-06-{d}" for d in range(24, 31)]
    assert set(backfill.assets) == {
        week.ACTIVITY_EXPORTS,
        week.ACTIVITIES,
        week.DELETED_LEADS,
        week.ACTIVITY_TYPES,
    }


def test_weekly_activity_partitions_get_their_own_backfill(monkeypatch):
    monkeypatch.setenv("MARKETO_ACTIVITY_PARTITION_WINDOW", "weekly")
    defs = build_definitions(ProjectSettings(), ListConfig(ListSettings(), {}))
    activities, deleted = week.week_backfills(defs, END)
    assert week.DELETED_LEADS not in activities.assets and deleted.assets == [week.DELETED_LEADS]
    assert len(deleted.partitions) == 7 and 1 <= len(activities.partitions) <= 2


def test_a_failed_unpartitioned_run_keeps_the_backfill_unfinished():
    ok, failed = dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE
    days = ["2025-06-24", "2025-06-25"]
    assert _all_succeeded([_run(d, ok) for d in days] + [_run(None, ok)], days)
    assert not _all_succeeded([_run(d, ok) for d in days] + [_run(None, failed)], days)
    # A failed run retried with success is done.
    assert _all_succeeded([_run(d, ok) for d in days] + [_run(days[0], failed)], days)


def test_a_count_is_wrong_when_empty_or_unlike_the_runs_or_marketo():
    assert week._problems(10, 10, 10) == []
    assert week._problems(10, 10, None) == []
    assert week._problems(0, 0, 0) == ["no rows"]
    assert week._problems(10, None, None) == ["no run reported loading it"]
    assert week._problems(10, 9, 11) == ["runs loaded 9", "Marketo has 11"]
