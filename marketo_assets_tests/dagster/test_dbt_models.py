"""dbt models on the raw tables: simulator → raw partitions → `dbt build` through Dagster.

The DuckDB file is `<tmp>/marketo.duckdb`: the same file name as in the parsed manifest (DuckDB
names the catalog after the file), so row counts resolve.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
from marketo_assets.defs.lists import lists
from marketo_assets.defs.partitions import static_lists
from marketo_assets.local.instance import launch_backfill
from marketo_assets_tests.support.assets import (
    lead_change_export_files,
    lead_changes,
    lead_export_files,
    leads,
    static_list_export_files,
    static_list_members,
)
from marketo_assets_tests.support.dagster import SIM_ARGS, resources_for

NOW = "2025-06-15T12:00:00Z"  # the simulated clock: inside the data set's update span
CHANGE_DAY = "2025-06-15"
# Leads created in May and June only: two lead windows hold them all (and every list member).
SIM = {**SIM_ARGS, "leads": 2000, "created_from": "2025-05-01"}
LEAD_WINDOWS = ["2025-05-01", "2025-06-01"]
STATIC_LIST = 1001  # "Webinar Attendees 2025" in the simulator
STG_LEADS = dg.AssetKey(["staging", "stg_marketo__leads"])
STG_CHANGES = dg.AssetKey(["staging", "stg_marketo__lead_changes"])
STG_LISTS = dg.AssetKey(["staging", "stg_marketo__lists"])
STG_STATIC = dg.AssetKey(["staging", "stg_marketo__static_list_members"])
DIM_LEADS = dg.AssetKey(["marts", "dim_leads"])
MEMBERSHIP = dg.AssetKey(["marts", "fct_list_membership"])
DIM_ACTIVE = dg.AssetKey(["marts", "dim_leads_active"])
DAILY = dg.AssetKey(["reporting", "rpt_leads_created_daily"])
RAW_KEYS = {
    "stg_marketo__leads": ["marketo", "leads"],
    "stg_marketo__lead_changes": ["marketo", "lead_changes"],
    "stg_marketo__static_list_members": ["marketo", "static_list_members"],
    "stg_marketo__smart_list_members": ["marketo", "smart_list_members"],
    "stg_marketo__lists": ["marketo", "lists"],
    "stg_marketo__activities": ["marketo", "activities"],
    "stg_marketo__activity_types": ["marketo", "activity_types"],
    "stg_marketo__program_members": ["marketo", "program_members"],
    "stg_marketo__deleted_leads": ["marketo", "deleted_leads"],
}
MARTS = {
    "dim_leads",
    "dim_leads_active",
    "map_lead_merges",
    "fct_list_membership",
    "fct_activities",
    "fct_program_membership",
    "rpt_leads_created_daily",
}


@pytest.fixture
def dbt(dbt_manifest):
    from marketo_assets.defs.dbt import dbt_resource

    return dbt_resource()


def _query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


class Automation:
    """Ticks of the dbt models' automation condition, as the sensor evaluates them."""

    def __init__(self, instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
        self.instance, self.defs, self.cursor = instance, defs, None

    def tick(self) -> set[dg.AssetKey]:
        from marketo_assets_tests.support.assets import dbt_models

        marketo_dbt_models = dbt_models()

        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets(marketo_dbt_models),
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return {key for key in marketo_dbt_models.keys if result.get_num_requested(key)}


def _row_count(event) -> int | None:
    value = event.materialization.metadata.get("dagster/row_count")
    return None if value is None else value.value


def test_raw_partitions_then_dbt_models(simulator_factory, tmp_path, monkeypatch, dbt):
    from marketo_assets_tests.support.assets import dbt_models

    marketo_dbt_models = dbt_models()

    sim = simulator_factory(**SIM, extra_args=["--now", NOW])
    db = tmp_path / "marketo.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(db))
    resources = resources_for(sim, tmp_path)
    raw = [lead_export_files, leads, lead_change_export_files, lead_changes]
    list_assets = [static_list_export_files, static_list_members, lists]
    defs = dg.Definitions(
        assets=[*raw, *list_assets, marketo_dbt_models], resources={**resources, "dbt": dbt}
    )

    with dg.instance_for_test() as instance:
        automation = Automation(instance, defs)
        assert automation.tick() == set()  # nothing loaded: nothing to build
        # The marts built by hand on an empty database (no raw or staging table): empty.
        empty = dg.materialize(
            [marketo_dbt_models],
            selection=[DIM_LEADS, DIM_ACTIVE, MEMBERSHIP, DAILY],
            resources={"dbt": dbt},
            instance=instance,
        )
        assert empty.success
        assert all(c.passed for c in empty.get_asset_check_evaluations())
        assert {_row_count(e) for e in empty.get_asset_materialization_events()} == {0}
        assert len(empty.get_asset_materialization_events()) == 4
        assert automation.tick() == set()

        for key in LEAD_WINDOWS:
            done = dg.materialize(
                raw[:2], partition_key=key, resources=resources, instance=instance
            )
            assert done.success
        # A lead from the full export changes later in Marketo; the day's incremental export
        # carries the new values.
        (lead_id, old_name, old_updated) = _query(
            db,
            "SELECT id, firstName, updatedAt FROM marketo.marketo.leads "
            "WHERE _partition_key = '2025-05-01' AND updatedAt < '2025-06-10' ORDER BY id LIMIT 1",
        )[0]
        sim.update_lead(lead_id, {"firstName": "Renamed", "leadStatus": "Customer"})
        done = dg.materialize(
            raw[2:], partition_key=CHANGE_DAY, resources=resources, instance=instance
        )
        assert done.success
        # One static list and the list catalog (no smart list: its tables stay missing).
        instance.add_dynamic_partitions(static_lists.name, [f"static-{STATIC_LIST}"])
        done = dg.materialize(
            list_assets[:2],
            partition_key=f"static-{STATIC_LIST}",
            resources=resources,
            instance=instance,
        )
        assert done.success
        assert dg.materialize([lists], resources=resources, instance=instance).success

        # While lead partitions are still being backfilled, every model downstream of
        # `marketo.leads` waits; models of the finished change and list loads go ahead ...
        backfill_id = launch_backfill(instance, defs, [LEAD_EXPORTS, LEADS], ["2025-04-01"])
        assert automation.tick() == {STG_CHANGES, STG_LISTS, STG_STATIC, MEMBERSHIP}
        backfill = instance.get_backfill(backfill_id)
        instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
        # ... and the rest follows once the backfill is over: one build, not one per partition.
        assert automation.tick() == {STG_LEADS, DIM_LEADS, DIM_ACTIVE, DAILY}

        result = dg.materialize([marketo_dbt_models], resources={"dbt": dbt}, instance=instance)
        assert result.success
        assert automation.tick() == set()  # built: nothing new to do

    # One row per distinct lead id across the full and the incremental exports.
    union = (
        "SELECT id FROM marketo.marketo.leads UNION ALL SELECT id FROM marketo.marketo.lead_changes"
    )
    raw_ids = {r[0] for r in _query(db, union)}
    dim = _query(db, "SELECT lead_id FROM marts.dim_leads")
    assert len(dim) == len(raw_ids) and {r[0] for r in dim} == raw_ids
    in_both = _query(
        db,
        "SELECT count(*) FROM marketo.marketo.leads JOIN marketo.marketo.lead_changes USING (id)",
    )[0][0]
    assert in_both > 1  # leads seen in two places: each appears once

    # The updated lead shows its new values, from the incremental export.
    (row,) = _query(
        db,
        "SELECT first_name, lead_status, updated_at, _source_table, _versions_seen "
        f"FROM marts.dim_leads WHERE lead_id = {int(lead_id)}",
    )
    assert row[0] == "Renamed" and row[1] == "Customer" and old_name != "Renamed"
    assert row[2] > old_updated and row[2].date().isoformat() == CHANGE_DAY
    assert row[3:] == ("lead_changes", 2)
    # A lead that did not change keeps its full-export values.
    unchanged = _query(
        db,
        "SELECT d.first_name IS NOT DISTINCT FROM l.firstName, d._source_table "
        "FROM marts.dim_leads d JOIN marketo.marketo.leads l ON l.id = d.lead_id "
        "WHERE d._versions_seen = 1 LIMIT 1",
    )
    assert unchanged == [(True, "leads")]

    # Memberships with their list's name and the time their export was loaded; the smart list
    # tables do not exist, and their models build empty instead of failing.
    membership = _query(
        db,
        "SELECT f.lead_id, f.list_name, f.observed_at, l.name, m._loaded_at "
        "FROM marts.fct_list_membership f "
        "JOIN marketo.marketo.static_list_members m ON m.id = f.lead_id AND m._list_id = f.list_id "
        "JOIN marketo.marketo.lists l ON l.list_type = f.list_type AND l.list_id = f.list_id",
    )
    members = sim.truth({"staticListId": STATIC_LIST}, ids=True)["ids"]
    assert sorted(r[0] for r in membership) == sorted(members) and members
    assert all(r[1] == r[3] and r[1] and r[2] == r[4] for r in membership)
    assert _query(db, "SELECT count(*) FROM staging.stg_marketo__smart_list_members") == [(0,)]
    daily = _query(db, "SELECT sum(leads_created) FROM reporting.rpt_leads_created_daily")
    assert daily == [(len(raw_ids),)]

    # Every dbt test ran as an asset check and passed.
    manifest = json.loads(Path(dbt.project_dir, "target", "manifest.json").read_text())
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    checks = result.get_asset_check_evaluations()
    assert len(checks) == len(tests) > 30
    assert [c.check_name for c in checks if not c.passed] == []

    # Row counts in metadata (the catalog in the manifest matches the file name).
    counts = {e.asset_key: _row_count(e) for e in result.get_asset_materialization_events()}
    assert counts[DIM_LEADS] == len(raw_ids)
    assert counts[MEMBERSHIP] == len(members)
    assert None not in counts.values(), counts


def test_dbt_assets_wiring():
    """The dbt models are their own code location; their sources are the raw assets of the
    other one, so the merged graph (what the UI and the daemon see) is one lineage."""
    from marketo_assets.dbt_definitions import defs as dbt_defs
    from marketo_assets.definitions import defs as raw_defs
    from marketo_assets.defs.dbt import AFTER_RAW_LOADS, MODEL_DEPTH, MODELS_GROUP

    raw, dbt = raw_defs(), dbt_defs()
    d = dg.Definitions.merge(raw, dbt)
    graph = d.resolve_asset_graph()
    models = [graph.get(k) for k in graph.get_all_asset_keys()]
    models = [m for m in models if m.group_name == MODELS_GROUP]
    assert {m.key.path[-1] for m in models} == {*RAW_KEYS, *MARTS}
    assert not dg.AssetSelection.groups(MODELS_GROUP).resolve(raw.resolve_asset_graph())
    # The automation waits for raw loads up to MODEL_DEPTH steps upstream of a model: the
    # longest path from a raw table must not be longer.
    depth: dict[dg.AssetKey, int] = {}

    def steps_from_raw(key: dg.AssetKey) -> int:
        if key not in depth:
            parents = [graph.get(p) for p in graph.get(key).parent_keys]
            depth[key] = 1 + max(
                (steps_from_raw(p.key) for p in parents if p.group_name == MODELS_GROUP),
                default=0,
            )
        return depth[key]

    assert max(steps_from_raw(m.key) for m in models) <= MODEL_DEPTH
    for model in models:
        assert model.pools == {"duckdb"}
        assert model.automation_condition == AFTER_RAW_LOADS
    # Sources are the raw Marketo assets: one connected lineage graph.
    for name, raw_key in RAW_KEYS.items():
        node = graph.get(dg.AssetKey(["staging", name]))
        assert node.parent_keys == {dg.AssetKey(raw_key)}, name
    merges = dg.AssetKey(["marts", "map_lead_merges"])
    deleted = dg.AssetKey(["staging", "stg_marketo__deleted_leads"])
    assert graph.get(DIM_LEADS).parent_keys == {STG_LEADS, STG_CHANGES, merges, deleted}
    assert graph.get(merges).parent_keys == {dg.AssetKey(["staging", "stg_marketo__activities"])}
    assert graph.get(LEADS).child_keys >= {STG_LEADS}
    assert len(graph.get(DIM_LEADS).check_keys) >= 4  # dbt tests as asset checks
    sensor = dbt.get_sensor_def("dbt_models_after_raw_loads")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert "dbt" in dbt.resources and "dbt" not in raw.resources


_ENSURE = """
import sys
from pathlib import Path
from marketo_assets.transform.manifest import ensure_manifest
ensure_manifest(Path(sys.argv[1]), log=lambda text: print("PARSED", text, flush=True))
"""


def test_manifest_is_prepared_once_under_a_lock(tmp_path, monkeypatch):
    from marketo_assets.transform.manifest import DBT_PROJECT_DIR, manifest_path, stale_reason

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "marketo.duckdb"))
    assert stale_reason(project) == "no manifest yet"

    # Three processes load the definitions at once on a clean clone: one parses, two wait.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ENSURE, str(project)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert sum(out.count("PARSED") for out in outputs) == 1, outputs
    assert stale_reason(project) is None

    # Stale when a dbt file changes, or when the DuckDB file (the catalog) has another name.
    model = project / "models" / "marts" / "dim_leads.sql"
    os.utime(model, (model.stat().st_atime, manifest_path(project).stat().st_mtime + 5))
    assert stale_reason(project) == "models/marts/dim_leads.sql changed"
    os.utime(model, (model.stat().st_atime, manifest_path(project).stat().st_mtime - 5))
    assert stale_reason(project) is None
    assert "catalog" in stale_reason(project, catalog="warehouse")
