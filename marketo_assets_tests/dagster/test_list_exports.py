"""List sensors and list assets against the simulator, with a real (temporary) Dagster instance.

Sensor ticks are evaluated in-process with `build_sensor_context` on the instance; their
dynamic-partition requests are applied to it as the daemon would, and their run requests are
executed in-process with `dg.materialize` (same tags, same partition) on a real DuckDB file.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from marketo_assets.defs.list_sensors import build_list_sensor
from marketo_assets.settings import ListSelection
from marketo_assets_tests.support.assets import (
    smart_list_export_files,
    smart_list_members,
    static_list_export_files,
    static_list_members,
)
from marketo_assets_tests.support.dagster import SIM_ARGS, marketo_resource, resources_for
from marketo_assets_tests.support.list_runs import (
    apply_partitions,
    catalog,
    execute_all,
    member_runs,
    members,
    partition_requests,
    tick,
    truth,
)


@pytest.fixture
def list_sim(simulator_factory):
    with simulator_factory(**SIM_ARGS) as sim:
        yield sim


def test_static_list_sensor_lifecycle(list_sim, tmp_path):
    """New lists → partitions + runs; no change → nothing; membership change → one run and the
    new membership; deleted list → partition deleted and its rows pruned from DuckDB."""
    sim = list_sim
    resources = resources_for(sim, tmp_path)
    sensor = build_list_sensor("static", selection=ListSelection.parse("1001, Trade*, Follow*"))
    with dg.instance_for_test() as instance:
        first = tick(sensor, instance, resources)
        assert partition_requests(first) == (["static-1001", "static-1003"], [])
        assert sorted(r.run_key for r in member_runs(first)) == [
            f"static-1001@{_updated(sim, 'static', 1001)}",
            f"static-1003@{_updated(sim, 'static', 1003)}",
        ]
        assert [r.job_name for r in first.run_requests if not r.partition_key] == [
            "refresh_list_catalog"
        ]
        execute_all(first, instance, resources)
        assert members(tmp_path, "static") == {
            1001: truth(sim, "static", 1001),
            1003: truth(sim, "static", 1003),
        }
        names = {(t, i): n for t, i, _, n in catalog(tmp_path)}
        assert len([k for k in names if k[0] == "static"]) == 6
        assert len([k for k in names if k[0] == "smart"]) == 4
        assert names[("static", 1003)] == "Trade Show Leads, Berlin"
        assert set(instance.get_dynamic_partitions("static_lists")) == {
            "static-1001",
            "static-1003",
        }

        # A second tick with no change requests nothing and changes no partition.
        second = tick(sensor, instance, resources, first.cursor)
        assert not second.run_requests and not second.dynamic_partitions_requests
        assert second.skip_reason is not None

        # Membership change through the control API: one export run for that list.
        before = truth(sim, "static", 1001)
        outsiders = [i for i in range(1, 60) if i not in before][:3]
        sim.set_list_members("static", 1001, add=outsiders, remove=before[:2])
        third = tick(sensor, instance, resources, second.cursor)
        runs = member_runs(third)
        assert [r.partition_key for r in runs] == ["static-1001"]
        assert len(third.run_requests) == 1  # no catalog refresh: no list added or renamed
        assert runs[0].run_key == f"static-1001@{_updated(sim, 'static', 1001)}"
        assert partition_requests(third) == ([], [])
        execute_all(third, instance, resources)
        after = truth(sim, "static", 1001)
        assert after != before and set(outsiders) <= set(after)
        assert members(tmp_path, "static") == {1001: after, 1003: truth(sim, "static", 1003)}

        # Re-evaluating the same tick (same cursor) gives the same run keys: idempotent.
        again = tick(sensor, instance, resources, second.cursor)
        assert [r.run_key for r in member_runs(again)] == [runs[0].run_key]

        # A new list matching a pattern, and a deleted list.
        created = sim.create_list("static", "Follow-up Calls")
        sim.set_list_members("static", created["id"], add=[5, 6, 7])
        sim.delete_list("static", 1003)
        fourth = tick(sensor, instance, resources, third.cursor)
        new_key = f"static-{created['id']}"
        assert partition_requests(fourth) == ([new_key], ["static-1003"])
        assert [r.partition_key for r in member_runs(fourth)] == [new_key]
        execute_all(fourth, instance, resources)
        assert set(instance.get_dynamic_partitions("static_lists")) == {"static-1001", new_key}
        assert members(tmp_path, "static") == {1001: after, created["id"]: [5, 6, 7]}
        assert ("static", 1003) not in {(t, i) for t, i, _, _ in catalog(tmp_path)}

        fifth = tick(sensor, instance, resources, fourth.cursor)
        assert not fifth.run_requests and not fifth.dynamic_partitions_requests


def test_list_load_metadata_checks_and_rerun(list_sim, tmp_path):
    """Checks, lineage columns, typed columns; a re-run replaces the list's rows only."""
    resources = resources_for(list_sim, tmp_path)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("static_lists", ["static-1002", "static-1006"])
        for key in ("static-1002", "static-1006", "static-1002"):
            result = dg.materialize(
                [static_list_export_files, static_list_members],
                partition_key=key,
                resources=resources,
                instance=instance,
            )
            assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"rows_match_marketo": True, "lead_ids_unique_in_list": True}
        mats = {
            e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()
        }
        export_md = mats["marketo/static_list_export_files"]
        assert export_md["list_id"].value == 1002
        assert export_md["filter"].value == {"staticListId": 1002}
        for key in ("export_id", "records", "checksum_verified", "quota_used_today_bytes"):
            assert key in export_md, key
        load_md = mats["marketo/static_list_members"]
        assert load_md["dagster/table_name"].value == "marketo.static_list_members"
    assert members(tmp_path, "static") == {1002: truth(list_sim, "static", 1002)}  # 1006 empty
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = 'static_list_members'"
            ).fetchall()
        )
        lineage = conn.execute(
            "SELECT DISTINCT _list_id, _partition_key, _export_id IS NOT NULL "
            "FROM marketo.marketo.static_list_members"
        ).fetchall()
    assert list(types) == [
        "id",
        "email",
        "firstName",
        "lastName",
        "company",
        "createdAt",
        "updatedAt",
        "_partition_key",
        "_export_id",
        "_loaded_at",
        "_list_id",
    ]
    assert types["_list_id"] == "BIGINT" and types["updatedAt"] == "TIMESTAMP WITH TIME ZONE"
    assert lineage == [(1002, "static-1002", True)]


def test_smart_lists_without_the_filter_then_enabled(simulator_factory, tmp_path):
    """1035: the smart sensor probes once and requests no export, a run started anyway fails
    without retries saying what to do, the static sensor keeps working; once the filter is
    enabled, the smart list's membership is loaded."""
    sim = simulator_factory(**SIM_ARGS, extra_args=["--disable-filter", "smartList"])
    resources = resources_for(sim, tmp_path)
    smart = build_list_sensor("smart", selection=ListSelection.parse("High*"))
    static = build_list_sensor("static", selection=ListSelection.parse("1004"))
    with dg.instance_for_test() as instance:
        first = tick(smart, instance, resources)
        assert partition_requests(first) == (["smart-5001"], [])
        assert member_runs(first) == []  # only the catalog refresh
        store = resources["marketo"].capabilities()
        assert store.get("smartList").supported is False
        assert store.get("smartList").source == "probe"
        apply_partitions(instance, first)

        second = tick(smart, instance, resources, first.cursor)
        assert not second.run_requests
        assert "not enabled" in second.skip_reason.skip_message
        creates = sim.state()["requests"]["by_path"].get("/bulk/v1/leads/export/create.json", 0)

        # A run started by hand (e.g. from the UI) fails at once, without retries.
        result = dg.materialize(
            [smart_list_export_files, smart_list_members],
            partition_key="smart-5001",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        failure = result.get_step_failure_events()[0]
        message = failure.step_failure_data.error.message
        assert "not enabled for this Marketo subscription" in message
        assert "Marketo Support" in message and "static list" in message
        event_types = {e.event_type_value for e in result.all_events}
        assert "STEP_UP_FOR_RETRY" not in event_types
        after = sim.state()["requests"]["by_path"].get("/bulk/v1/leads/export/create.json", 0)
        assert after == creates + 1  # one create (1035), no retry
        assert store.get("smartList").source == "export"

        # The static-list sensor is not affected.
        static_tick = tick(static, instance, resources)
        assert [r.partition_key for r in member_runs(static_tick)] == ["static-1004"]
        execute_all(static_tick, instance, resources)
        assert members(tmp_path, "static") == {1004: truth(sim, "static", 1004)}

        # Marketo Support enabled the filter; the recheck period has passed.
        sim.configure(disabled_filters=[])
        recheck = build_list_sensor(
            "smart", selection=ListSelection.parse("High*"), recheck_hours=1e-9
        )
        third = tick(recheck, instance, resources, second.cursor)
        assert [r.partition_key for r in member_runs(third)] == ["smart-5001"]
        assert store.get("smartList").supported is True
        execute_all(third, instance, resources)
        assert members(tmp_path, "smart") == {5001: truth(sim, "smart", 5001)}


def test_empty_selection_means_no_list_and_no_marketo_call(list_sim, tmp_path):
    resources = {"marketo": marketo_resource(list_sim, tmp_path)}
    sensor = build_list_sensor("static", selection=ListSelection.parse(""))
    before = list_sim.state()["requests"]["total"]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("static_lists", ["static-1001"])
        result = tick(sensor, instance, resources)
        assert partition_requests(result) == ([], ["static-1001"])
        assert not result.run_requests
        apply_partitions(instance, result)
        again = tick(sensor, instance, resources, result.cursor)
        assert not again.run_requests and not again.dynamic_partitions_requests
    assert list_sim.state()["requests"]["total"] == before


def test_list_sensors_and_jobs_are_in_the_definitions():
    from marketo_assets.definitions import defs

    d = defs()
    repo = d.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    for kind in ("static", "smart"):
        sensor = sensors[f"{kind}_list_sensor"]
        assert sensor.minimum_interval_seconds == 300
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert {j.name for j in sensor.jobs} == {f"export_{kind}_lists", "refresh_list_catalog"}
    graph = d.resolve_asset_graph()
    for kind in ("static", "smart"):
        export = dg.AssetKey(["marketo", f"{kind}_list_export_files"])
        member = dg.AssetKey(["marketo", f"{kind}_list_members"])
        assert graph.get(export).pools == {"marketo_bulk_export"}
        assert graph.get(member).pools == {"duckdb"}
        assert {k.name for k in graph.get(member).check_keys} == {
            "rows_match_marketo",
            "lead_ids_unique_in_list",
        }
        assert graph.get(member).partitions_def.name == f"{kind}_lists"
    assert graph.get(dg.AssetKey(["marketo", "lists"])).pools == {"duckdb"}


def _updated(sim, kind: str, list_id: int) -> str:
    """The list's updatedAt as the sensor puts it in run keys."""
    from marketo_assets.marketo.exports import format_marketo_datetime, parse_marketo_datetime

    for item in sim.control.get("/_sim/lists").json():
        if item["kind"] == kind and item["id"] == list_id:
            return format_marketo_datetime(parse_marketo_datetime(item["updatedAt"]))
    raise AssertionError(f"no {kind} list {list_id}")
