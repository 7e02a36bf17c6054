"""Lead changes (updatedAt filter, daily partitions) against the simulator; 1035 handling."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import duckdb

from marketo_assets.defs.schedules import build_lead_changes_schedule
from marketo_assets_tests.support.assets import SETTINGS, lead_change_export_files, lead_changes
from marketo_assets_tests.support.dagster import SIM_ARGS, marketo_resource, resources_for

# The simulated clock sits inside the data set (updatedAt = createdAt + up to 60 days), so a
# change made through the control API lands on a day that also has ordinary updates.
NOW = "2025-06-15T12:00:00Z"
DAY = "2025-06-15"
CREATE_PATH = "/bulk/v1/leads/export/create.json"


def day_filter(day: str) -> dict:
    return {"updatedAt": {"startAt": f"{day}T00:00:00Z", "endAt": f"{day}T23:59:59Z"}}


def materialize(sim, tmp_path, instance, key=DAY, raise_on_error=True):
    return dg.materialize(
        [lead_change_export_files, lead_changes],
        partition_key=key,
        resources=resources_for(sim, tmp_path),
        instance=instance,
        raise_on_error=raise_on_error,
    )


def rows(tmp_path, key=DAY) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT id, email, updatedAt FROM marketo.marketo.lead_changes "
            "WHERE _partition_key = ? ORDER BY id",
            [key],
        ).fetchall()


def creates(sim) -> int:
    return sim.state()["requests"]["by_path"].get(CREATE_PATH, 0)


def test_updated_lead_lands_in_its_day_and_reruns_replace(simulator_factory, tmp_path):
    sim = simulator_factory(**SIM_ARGS, extra_args=["--now", NOW])
    sim.update_lead(7, {"email": "changed-7@example.com"})  # lead 7 was created in January
    with dg.instance_for_test() as instance:
        # The daily schedule probes the filter once, then asks for yesterday and today.
        schedule = build_lead_changes_schedule(SETTINGS)
        scheduled = datetime(2025, 6, 16, 6, 30, tzinfo=UTC)
        with dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=scheduled,
            resources={"marketo": marketo_resource(sim, tmp_path)},
        ) as ctx:
            requests = schedule(ctx)
        assert [r.partition_key for r in requests] == ["2025-06-15", "2025-06-16"]
        assert len({r.run_key for r in requests}) == 2
        assert resources_for(sim, tmp_path)["marketo"].capabilities().get("updatedAt").supported

        result = materialize(sim, tmp_path, instance)
        expected = sorted(sim.truth(day_filter(DAY), ids=True)["ids"])
        loaded = rows(tmp_path)
        assert [r[0] for r in loaded] == expected
        assert 7 in expected and len(expected) > 1  # ordinary updates of that day too
        assert dict((r[0], r[1]) for r in loaded)[7] == "changed-7@example.com"
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {
            "rows_match_marketo": True,
            "lead_ids_unique_in_partition": True,
            "materialized_partitions_in_table": True,
        }
        load_md = next(
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(["marketo", "lead_changes"])
        )
        assert "rows_updated_at_outside_day" in load_md
        export_md = next(
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(["marketo", "lead_change_export_files"])
        )
        assert export_md["filter"].value == day_filter(DAY)

        # Another change the same day; re-running replaces the partition (no duplicates).
        sim.update_lead(8, {"email": "changed-8@example.com"})
        materialize(sim, tmp_path, instance)
        again = rows(tmp_path)
        expected = sorted(sim.truth(day_filter(DAY), ids=True)["ids"])
        assert [r[0] for r in again] == expected
        assert {7, 8} <= {r[0] for r in again}
        assert len(again) == len({r[0] for r in again})
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        keys = conn.execute(
            "SELECT DISTINCT _partition_key FROM marketo.marketo.lead_changes"
        ).fetchall()
    assert keys == [(DAY,)]


def test_without_updated_at_filter_the_schedule_stays_off_and_runs_explain(
    simulator_factory, tmp_path
):
    sim = simulator_factory(**SIM_ARGS, extra_args=["--now", NOW, "--disable-filter", "updatedAt"])
    resources = {"marketo": marketo_resource(sim, tmp_path)}
    store = resources["marketo"].capabilities()
    schedule = build_lead_changes_schedule(SETTINGS)
    with dg.instance_for_test() as instance:
        for _ in range(2):
            with dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=datetime(2025, 6, 16, 6, 30, tzinfo=UTC),
                resources=resources,
            ) as ctx:
                skip = schedule(ctx)
            assert isinstance(skip, dg.SkipReason)
            assert "updatedAt filter is not enabled" in skip.skip_message
            assert "Marketo Support" in skip.skip_message
        assert creates(sim) == 1  # detected once (a probe), then remembered
        status = store.get("updatedAt")
        assert status.supported is False and status.source == "probe"
        assert store.path.exists() and store.path.parent == tmp_path

        result = materialize(sim, tmp_path, instance, raise_on_error=False)
        assert not result.success
        message = result.get_step_failure_events()[0].step_failure_data.error.message
        assert "updatedAt filter is not enabled for this Marketo subscription" in message
        assert "Marketo Support" in message
        assert "STEP_UP_FOR_RETRY" not in {e.event_type_value for e in result.all_events}
        assert creates(sim) == 2  # the run's single create: no retries
        assert not [j for j in sim.state()["jobs"] if j["status"] != "Cancelled"]
