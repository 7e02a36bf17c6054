"""Deleted and merged leads end to end: simulator → Dagster (leads, activities, deleted leads)
→ DuckDB → `dbt build` → `dim_leads` and `map_lead_merges` equal the simulator's truth.

A small subscription whose whole history is exported: leads created 1-4 January 2025 and the
simulated clock at 6 January 23:59:59, so every activity, deletion and merge happens in
[1 January, 6 January] (the simulator stops its history at the clock). One monthly lead
partition and one monthly activity partition (January) hold every lead and every activity;
the daily deleted-lead partitions of 1-6 January hold every deletion. The truth is therefore
compared whole, not filtered to windows. High deletion and merge rates make several of each.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from marketo_assets.defs.activities import activity_assets
from marketo_assets.settings import ProjectSettings
from marketo_assets_tests.support.assets import deleted_leads, lead_export_files, leads
from marketo_assets_tests.support.dagster import resources_for
from marketo_assets_tests.support.dbt import dbt_build

NOW = "2025-01-06T23:59:59Z"  # the simulated clock: the end of the simulated history
SIM = {
    "leads": 600,
    "seed": 11,
    "created_from": "2025-01-01",
    "created_to": "2025-01-05",
    "status_interval": 0.2,
    "activities_per_lead": 4,
}
RATES = ["--deleted-lead-rate", "0.5", "--merge-rate", "0.5"]
MONTH = "2025-01-01"  # the lead and the activity partition (monthly)
DAYS = [(date(2025, 1, 1) + timedelta(days=d)).isoformat() for d in range(6)]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def resolved_merges(truth: dict) -> dict[int, tuple[int, int]]:
    """Merged-away id -> (final survivor, lead merged into directly), chains followed."""
    into = {lead: m["winner"] for m in truth["merges"] for lead in m["merged"]}

    def final(lead: int) -> int:
        seen = {lead}
        while into.get(lead) is not None and into[lead] not in seen:
            lead = into[lead]
            seen.add(lead)
        return lead

    return {lead: (final(winner), winner) for lead, winner in into.items()}


def test_dim_leads_deleted_and_merged_leads_equal_the_simulator_truth(simulator_factory, tmp_path):
    sim = simulator_factory(**SIM, extra_args=["--now", NOW, *RATES])
    db = tmp_path / "marketo.duckdb"
    resources = resources_for(sim, tmp_path)
    monthly = ProjectSettings(MARKETO_ACTIVITY_PARTITION_WINDOW="monthly")  # type: ignore[call-arg]
    with dg.instance_for_test() as instance:
        # One run: the January lead export and the January activity export.
        done = dg.materialize(
            [lead_export_files, leads, *activity_assets(monthly)],
            partition_key=MONTH,
            resources=resources,
            instance=instance,
        )
        assert done.success
        for day in DAYS:
            done = dg.materialize(
                [deleted_leads], partition_key=day, resources=resources, instance=instance
            )
            assert done.success
            assert all(c.passed for c in done.get_asset_check_evaluations())

    deletions = sim.truth_deleted_leads()
    deleted_at = {
        lead: _at(when)
        for lead, when in zip(deletions["leadIds"], deletions["deletedAt"], strict=True)
    }
    merge_truth = sim.truth_merges()
    merges = resolved_merges(merge_truth)
    merged_at = {lead: _at(m["mergedAt"]) for m in merge_truth["merges"] for lead in m["merged"]}
    assert len(deleted_at) >= 3 and len(merges) >= 3, (deleted_at, merges)
    assert max([*deleted_at.values(), *merged_at.values()]) <= _at(NOW)  # all in the history

    # The raw tables equal the truth: every activity of January (merges included), every
    # deletion in the partition of its UTC day.
    truth = sim.truth_activities(f"{MONTH}T00:00:00Z", "2025-01-31T23:59:59Z", ids=True)
    guids = _rows(db, "SELECT marketoGUID FROM marketo.marketo.activities")
    assert truth["count"] > 0 and sorted(g for (g,) in guids) == sorted(truth["guids"])
    raw_deleted = _rows(
        db, 'SELECT "leadId", "deletedAt", _partition_key FROM marketo.marketo.deleted_leads'
    )
    assert {lead: when for lead, when, _ in raw_deleted} == deleted_at
    assert len(raw_deleted) == len(deleted_at)
    assert all(key == when.astimezone(UTC).date().isoformat() for _, when, key in raw_deleted)

    results = dbt_build(tmp_path, {"DUCKDB_PATH": str(db)}, "--select", "+dim_leads_active")
    assert {status for status, _ in results.values()} == {"success", "pass"}, results

    # Merges: each merged-away id resolves to its survivor, and is no lead of its own.
    mapped = _rows(
        db,
        "SELECT merged_lead_id, surviving_lead_id, merged_into_lead_id, merged_at "
        "FROM marts.map_lead_merges",
    )
    assert {merged: (final, into) for merged, final, into, _ in mapped} == merges
    assert {merged: when for merged, _, _, when in mapped} == merged_at
    assert len(mapped) == len(merges)
    dim = {lead for (lead,) in _rows(db, "SELECT lead_id FROM marts.dim_leads")}
    assert not set(merges) & dim
    # Deletions: flagged with their time; a merge wins over a deletion (docs/DBT.md).
    flagged = dict(_rows(db, "SELECT lead_id, deleted_at FROM marts.dim_leads WHERE is_deleted"))
    assert flagged == {lead: when for lead, when in deleted_at.items() if lead not in merges}
    # Every exported lead but the merged-away ones; the active ones are those not deleted.
    exported = {lead for (lead,) in _rows(db, "SELECT id FROM marketo.marketo.leads")}
    assert len(exported) == SIM["leads"]
    assert dim == exported - set(merges)
    active = {lead for (lead,) in _rows(db, "SELECT lead_id FROM marts.dim_leads_active")}
    assert active == exported - set(merges) - set(deleted_at)
