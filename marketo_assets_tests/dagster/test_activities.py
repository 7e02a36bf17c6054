"""Activities end to end against the simulator: the activity type catalog, daily activity
partitions equal to the simulator's truth with JSON attributes, activity types chosen by name,
a bad type name refused before any export job, and a backfill mixing lead and activity
partitions that never has more than 2 of our jobs processing."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from marketo_assets.defs.activities import activity_assets, activity_types
from marketo_assets.settings import ProjectSettings
from marketo_assets_tests.support.dagster import SIM_ARGS, resources_for, run_env, seed_history

DAY = "2025-03-03"
ACTIVITY_CREATES = "/bulk/v1/activities/export/create.json"


def settings(**env: str) -> ProjectSettings:
    return ProjectSettings(**env)  # type: ignore[arg-type]


def query(tmp_path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return conn.execute(sql, list(params)).fetchall()


def day_window(day: str) -> tuple[str, str]:
    return f"{day}T00:00:00Z", f"{day}T23:59:59Z"


def test_activities_by_type_name_equal_the_truth_with_json_attributes(simulator_factory, tmp_path):
    sim = simulator_factory(**SIM_ARGS)
    chosen = settings(MARKETO_ACTIVITY_TYPES="fill out form, Visit Webpage,6")
    with dg.instance_for_test() as instance:
        catalog = dg.materialize(
            [activity_types], resources=resources_for(sim, tmp_path), instance=instance
        )
        assert catalog.success
        result = dg.materialize(
            list(activity_assets(chosen)),
            partition_key=DAY,
            resources=resources_for(sim, tmp_path),
            instance=instance,
        )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [(c.check_name, c.passed) for c in checks]
    truth = sim.truth_activities(*day_window(DAY), activity_type_ids=[1, 2, 6], ids=True)
    rows = query(
        tmp_path, "SELECT marketoGUID FROM marketo.marketo.activities WHERE _partition_key = ?", DAY
    )
    assert truth["count"] > 0
    assert sorted(r[0] for r in rows) == sorted(truth["guids"])
    types = query(tmp_path, "SELECT DISTINCT activityTypeId FROM marketo.marketo.activities")
    assert {t for (t,) in types} <= {1, 2, 6}
    # `attributes` is JSON: its members can be queried, joined to the catalog's JSON.
    (webpage,) = query(
        tmp_path,
        "SELECT count(*) FILTER (WHERE a.attributes->>'$.\"Webpage URL\"' IS NOT NULL), count(*) "
        "FROM marketo.marketo.activities a JOIN marketo.marketo.activity_types t "
        "ON t.id = a.activityTypeId WHERE t.name = 'Visit Webpage'",
    )
    assert webpage[1] > 0 and webpage[0] == webpage[1]
    schema = dict(
        query(
            tmp_path,
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'activities' AND column_name NOT LIKE '\\_%' ESCAPE '\\'",
        )
    )
    assert schema == {
        "marketoGUID": "VARCHAR",
        "leadId": "BIGINT",
        "activityDate": "TIMESTAMP WITH TIME ZONE",
        "activityTypeId": "INTEGER",
        "campaignId": "INTEGER",
        "primaryAttributeValueId": "BIGINT",
        "primaryAttributeValue": "VARCHAR",
        "attributes": "JSON",
    }
    (attrs,) = query(tmp_path, "SELECT attributes FROM marketo.marketo.activity_types WHERE id = 1")
    assert {"name": "Webpage URL", "dataType": "string"} in json.loads(attrs[0])


def test_an_unknown_activity_type_name_fails_before_any_export_job(simulator_factory, tmp_path):
    sim = simulator_factory(**SIM_ARGS)
    bad = settings(MARKETO_ACTIVITY_TYPES="Fill Out Form,Opened The Fridge")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(activity_assets(bad)),
            partition_key=DAY,
            resources=resources_for(sim, tmp_path),
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error.message)  # type: ignore[union-attr]
    assert "MARKETO_ACTIVITY_TYPES" in message and "Opened The Fridge" in message
    assert sim.state()["requests"]["by_path"].get(ACTIVITY_CREATES, 0) == 0


def most_at_once(record: dict, statuses: set[str]) -> int:
    """The most of our (not foreign) jobs of any type that were in `statuses` at one time,
    from the simulator's job record (status changes ordered by time, then sequence)."""
    changes = []
    for job in record["jobs"]:
        if job["foreign"]:
            continue
        previous = False
        for change in job["transitions"]:
            inside = change["status"] in statuses
            if inside != previous:
                changes.append((change["epoch"], change["seq"], 1 if inside else -1))
            previous = inside
    best = current = 0
    for _epoch, _seq, step in sorted(changes):
        current += step
        best = max(best, current)
    return best


@pytest.mark.timeout(900)
def test_a_backfill_of_lead_and_activity_partitions_shares_the_two_job_pool(
    lead_sim, tmp_path, monkeypatch
):
    from marketo_assets.definitions import defs
    from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
    from marketo_assets.local.instance import (
        backfill_runs,
        ensure_pools,
        launch_backfill,
        running_daemon,
        wait_for_backfill,
    )

    for name, value in run_env(lead_sim, tmp_path).items():
        monkeypatch.setenv(name, value)
    # The lead job stays Processing ~25 s (500 leads), the activity days a few seconds each;
    # with history in the ledger all three export steps start at once (see seed_history).
    lead_sim.configure(rows_per_second=20)
    seed_history(tmp_path / "ledger.sqlite")
    days = ["2025-03-03", "2025-03-04"]
    activity_keys = [dg.AssetKey(["marketo", k]) for k in ("activity_export_files", "activities")]
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        with running_daemon(log_path=tmp_path / "daemon.log"):
            built = defs()
            backfills = [
                launch_backfill(instance, built, [LEAD_EXPORTS, LEADS], ["2025-03-01"]),
                launch_backfill(instance, built, activity_keys, days),
            ]
            statuses = [wait_for_backfill(instance, b, timeout=800) for b in backfills]
            runs = [r for b in backfills for r in backfill_runs(instance, b)]
            logs = "\n".join(str(e.message) for r in runs for e in instance.all_logs(r.run_id))
    assert statuses == [BulkActionStatus.COMPLETED_SUCCESS] * 2, logs[-3000:]
    record = lead_sim.job_record()
    types = {j["type"] for j in record["jobs"] if not j["foreign"]}
    assert types == {"leads", "activities"} and len(record["jobs"]) == 3
    # The one export pool holds jobs of both types: 2 of ours in Marketo's queue at once (the
    # pool is used, so the limit is tested), never more.
    assert most_at_once(record, {"Processing"}) <= 2
    assert most_at_once(record, {"Queued", "Processing"}) == 2
    for day in days:
        rows = query(
            tmp_path,
            "SELECT count(*) FROM marketo.marketo.activities WHERE _partition_key = ?",
            day,
        )
        assert rows == [(lead_sim.truth_activities(*day_window(day))["count"],)]
