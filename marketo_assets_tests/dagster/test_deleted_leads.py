"""`marketo/deleted_leads` against the simulator over HTTP: each UTC day's rows are the leads the
simulator deleted that day, read with one paging token and one call per 300 deletions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb

from marketo_assets_tests.support.assets import deleted_leads
from marketo_assets_tests.support.dagster import resources_for


def truth(sim, start: datetime, end: datetime) -> dict[str, list[int]]:
    """The simulator's deleted leads in [start, end] (inclusive), by UTC day."""
    found = sim.truth_deleted_leads(start.isoformat(), end.isoformat())
    days: dict[str, list[int]] = {}
    for lead, when in zip(found["leadIds"], found["deletedAt"], strict=True):
        day = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(UTC).date()
        days.setdefault(day.isoformat(), []).append(lead)
    return days


def test_deleted_lead_days_equal_the_simulator_truth(lead_sim, tmp_path):
    sim = lead_sim
    start = datetime(2025, 1, 1, tzinfo=UTC)
    days = truth(sim, start, datetime.now(UTC))
    assert days, "the simulator deletes some leads"
    busiest = max(days, key=lambda day: (len(days[day]), day))
    quiet = next(
        day
        for day in ((start + timedelta(days=d)).date().isoformat() for d in range(400))
        if day not in days
    )
    resources = resources_for(sim, tmp_path)
    with dg.instance_for_test() as instance:
        for key in (quiet, busiest):
            result = dg.materialize(
                [deleted_leads], partition_key=key, resources=resources, instance=instance
            )
            assert result.success
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            assert checks == {
                "rows_match_marketo": True,
                "deleted_lead_ids_unique": True,
                "deleted_at_inside_day": True,
            }
            metadata = result.get_asset_materialization_events()[0].materialization.metadata
            # One paging token, then one page per 300 deletions (an empty day: one page).
            assert metadata["rest_calls"].value == 1 + max(1, -(-len(days.get(key, [])) // 300))
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            'SELECT _partition_key, "leadId", "deletedAt" FROM marketo.marketo.deleted_leads'
        ).fetchall()
    first = datetime.fromisoformat(busiest).replace(tzinfo=UTC)
    assert sorted(lead for _, lead, _ in rows) == sorted(days[busiest])
    assert {key for key, _, _ in rows} == {busiest}
    assert all(first <= when < first + timedelta(days=1) for _, _, when in rows)
