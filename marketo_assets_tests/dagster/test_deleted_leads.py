"""`marketo/deleted_leads` against the simulator over HTTP: each UTC day's rows are the leads the
simulator deleted that day, read with one paging token and one call per 300 deletions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb

from marketo_assets_tests.assets import deleted_leads

from .conftest import resources_for


def truth(sim, start: datetime, end: datetime) -> list[int]:
    """The simulator's deleted leads in [start, end] (its inclusive window)."""
    params = {"start": start.isoformat(), "end": end.isoformat()}
    r = sim.control.get("/_sim/truth/deleted_leads", params=params)
    r.raise_for_status()
    return sorted(r.json()["leadIds"])


def test_deleted_lead_days_equal_the_simulator_truth(lead_sim, tmp_path):
    sim = lead_sim
    start = datetime(2025, 1, 1, tzinfo=UTC)
    every = truth(sim, start, datetime.now(UTC))
    assert every, "the simulator deletes some leads"
    days: Counter[str] = Counter()
    for day in range((datetime.now(UTC) - start).days):
        first = start + timedelta(days=day)
        count = len(truth(sim, first, first + timedelta(days=1, seconds=-1)))
        if count:
            days[first.date().isoformat()] = count
    busiest, _ = days.most_common(1)[0]
    quiet = next(
        (start + timedelta(days=d)).date().isoformat()
        for d in range(400)
        if (start + timedelta(days=d)).date().isoformat() not in days
    )
    resources = resources_for(sim, tmp_path)
    with dg.instance_for_test() as instance:
        for key in (busiest, quiet, busiest):  # the re-run replaces the day's rows
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
            assert metadata["rest_calls"].value == 1 + max(1, -(-days[key] // 300))
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            'SELECT _partition_key, "leadId", "deletedAt" FROM marketo.marketo.deleted_leads'
        ).fetchall()
    first = datetime.fromisoformat(busiest).replace(tzinfo=UTC)
    assert sorted(lead for _, lead, _ in rows) == truth(
        sim, first, first + timedelta(days=1, seconds=-1)
    )
    assert {key for key, _, _ in rows} == {busiest}
    assert all(first <= when < first + timedelta(days=1) for _, _, when in rows)
