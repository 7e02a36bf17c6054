"""Lead partitions materialized in-process against the simulator over loopback HTTP."""

from __future__ import annotations

import dagster as dg
import duckdb

from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
from marketo_assets.defs.resources import ExportOptions
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import created_at_window, resources_for


def _materialize(sim, tmp_path, key, instance, **overrides):
    return dg.materialize(
        [lead_export_files, leads],
        partition_key=key,
        resources=resources_for(sim, tmp_path, **overrides),
        instance=instance,
        raise_on_error=False,
    )


def _rows(tmp_path, key=None) -> int:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        if key is None:
            return conn.execute("SELECT count(*) FROM marketo.marketo.leads").fetchone()[0]
        return conn.execute(
            "SELECT count(*) FROM marketo.marketo.leads WHERE _partition_key = ?", [key]
        ).fetchone()[0]


def test_partition_loads_exactly_the_simulators_leads(lead_sim, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(lead_sim, tmp_path, "2025-02-01", instance)
    assert result.success

    truth = lead_sim.truth(created_at_window("2025-02-01"), ids=True)
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        ids = [
            r[0]
            for r in conn.execute("SELECT id FROM marketo.marketo.leads ORDER BY id").fetchall()
        ]
        lineage = conn.execute(
            "SELECT DISTINCT _partition_key, _export_id IS NOT NULL FROM marketo.marketo.leads"
        ).fetchall()
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'leads'"
            ).fetchall()
        )
    assert ids == sorted(truth["ids"])
    assert lineage == [("2025-02-01", True)]
    assert types["id"] == "BIGINT"
    assert types["createdAt"] == "TIMESTAMP WITH TIME ZONE"

    export_md = result.asset_materializations_for_node("marketo__lead_export_files")[0].metadata
    for key in (
        "export_id",
        "records",
        "file_size_bytes",
        "checksum_verified",
        "rest_calls",
        "quota_used_today_bytes",
        "quota_used_today_pct",
        "download_seconds",
    ):
        assert key in export_md, key
    assert export_md["records"].value == truth["count"]

    load_md = result.asset_materializations_for_node("marketo__leads")[0].metadata
    assert load_md["dagster/row_count"].value == truth["count"]
    assert load_md["dagster/table_name"].value == "marketo.leads"
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "rows_match_marketo": True,
        "lead_ids_unique_in_partition": True,
        "created_at_inside_window": True,
        "lead_ids_unique_in_table": True,
        "materialized_partitions_in_table": True,
    }
    # The staged export (personal data) is gone once loaded, and the load's metadata says so.
    assert not list((tmp_path / "exports").rglob("*.csv"))
    assert load_md["staged_files_deleted"].value == 1


def test_rerunning_partitions_never_duplicates(lead_sim, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    for key in ("2025-01-01", "2025-02-01", "2025-01-01"):
        assert _materialize(lead_sim, tmp_path, key, instance).success
    jan = lead_sim.truth(created_at_window("2025-01-01"))["count"]
    feb = lead_sim.truth(created_at_window("2025-02-01"))["count"]
    assert _rows(tmp_path, "2025-01-01") == jan
    assert _rows(tmp_path, "2025-02-01") == feb
    assert _rows(tmp_path) == jan + feb


def test_boundary_leads_land_in_exactly_one_partition(lead_sim, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    for key in ("2025-02-01", "2025-03-01"):
        assert _materialize(lead_sim, tmp_path, key, instance).success
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        at_midnight = conn.execute(
            "SELECT _partition_key FROM marketo.marketo.leads "
            "WHERE createdAt = TIMESTAMPTZ '2025-03-01 00:00:00+00'"
        ).fetchall()
        last_second = conn.execute(
            "SELECT _partition_key FROM marketo.marketo.leads "
            "WHERE createdAt = TIMESTAMPTZ '2025-02-28 23:59:59+00'"
        ).fetchall()
    assert at_midnight and {k for (k,) in at_midnight} == {"2025-03-01"}
    assert last_second and {k for (k,) in last_second} == {"2025-02-01"}


def test_quota_exhausted_fails_fast_naming_the_reset(lead_sim, tmp_path):
    lead_sim.configure(quota_mb=0)
    instance = dg.DagsterInstance.ephemeral()
    before = lead_sim.state()["requests"]["total"]
    result = _materialize(lead_sim, tmp_path, "2025-04-01", instance)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "quota" in failure.message.lower()
    assert "America/Chicago" in failure.message or "CST" in failure.message
    assert lead_sim.state()["requests"]["total"] - before < 10  # no retry storm
    assert not [j for j in lead_sim.state()["jobs"] if j["status"] != "Cancelled"]


def test_unknown_field_fails_before_any_export(lead_sim, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    resources = resources_for(lead_sim, tmp_path)
    resources["export_options"] = ExportOptions(fields=["id", "email", "noSuchField"])
    result = dg.materialize(
        [lead_export_files, leads],
        partition_key="2025-01-01",
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "noSuchField" in message
    assert lead_sim.state()["jobs"] == []


def test_definitions_load_with_pools_and_checks():
    from marketo_assets.definitions import defs

    d = defs()
    dg.Definitions.validate_loadable(d)
    graph = d.resolve_asset_graph()
    assert graph.get(LEAD_EXPORTS).pools == {"marketo_bulk_export"}
    assert graph.get(LEADS).pools == {"duckdb"}
    assert {k.name for k in graph.get(LEADS).check_keys} == {
        "rows_match_marketo",
        "lead_ids_unique_in_partition",
        "created_at_inside_window",
        "lead_ids_unique_in_table",
        "materialized_partitions_in_table",
    }
