"""The Dagster assets with MARKETO_WAREHOUSE=postgres: the same export and load steps and
asset checks, the raw tables written into PostgreSQL (no DuckDB file at all), then the dbt
models built by the Dagster dbt asset with `--target postgres`."""

from __future__ import annotations

import dagster as dg
import psycopg2
import pytest

from marketo_assets.defs.lists import lists
from marketo_assets.defs.partitions import static_lists
from marketo_assets.defs.resources import WarehouseResource
from marketo_assets_tests.support.assets import (
    lead_export_files,
    leads,
    static_list_export_files,
    static_list_members,
)
from marketo_assets_tests.support.dagster import SIM_ARGS, created_at_window, resources_for

SIM = {**SIM_ARGS, "leads": 1200, "created_from": "2025-05-01"}
WINDOWS = ["2025-05-01", "2025-06-01"]
STATIC_LIST = 1001


@pytest.mark.timeout(600)
def test_assets_load_into_postgres_and_dbt_builds_there(
    simulator_factory, pg_server, pg_database, tmp_path, monkeypatch, dbt_manifest
):
    from marketo_assets.defs.dbt import dbt_resource
    from marketo_assets_tests.support.assets import dbt_models

    marketo_dbt_models = dbt_models()

    sim = simulator_factory(**SIM)
    for name, value in pg_server.libpq_env(pg_database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MARKETO_WAREHOUSE", "postgres")
    duckdb_file = tmp_path / "marketo.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(duckdb_file))
    resources = {
        **resources_for(sim, tmp_path),
        "warehouse": WarehouseResource(database=str(duckdb_file), warehouse="postgres"),
    }

    with dg.instance_for_test() as instance:
        for key in WINDOWS:
            done = dg.materialize(
                [lead_export_files, leads], partition_key=key, resources=resources,
                instance=instance,
            )  # fmt: skip
            assert done.success
            checks = done.get_asset_check_evaluations()
            assert len(checks) == 5 and all(c.passed for c in checks)
        instance.add_dynamic_partitions(static_lists.name, [f"static-{STATIC_LIST}"])
        done = dg.materialize(
            [static_list_export_files, static_list_members],
            partition_key=f"static-{STATIC_LIST}",
            resources=resources,
            instance=instance,
        )
        assert done.success and all(c.passed for c in done.get_asset_check_evaluations())
        assert dg.materialize([lists], resources=resources, instance=instance).success

        built = dg.materialize(
            [marketo_dbt_models], resources={"dbt": dbt_resource()}, instance=instance
        )
        assert built.success
        dbt_checks = built.get_asset_check_evaluations()
        assert len(dbt_checks) >= 15 and all(c.passed for c in dbt_checks)
        counts = {
            e.asset_key.path[-1]: e.materialization.metadata["dagster/row_count"].value
            for e in built.get_asset_materialization_events()
        }
    assert not duckdb_file.exists()  # nothing went to DuckDB

    members = sim.truth({"staticListId": STATIC_LIST})["count"]
    assert counts["dim_leads"] == SIM["leads"] and counts["fct_list_membership"] == members
    with psycopg2.connect(pg_server.dsn(pg_database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT _partition_key, count(*) FROM marketo.leads GROUP BY 1")
        assert dict(cur.fetchall()) == {
            k: sim.truth(created_at_window(k))["count"] for k in WINDOWS
        }
        cur.execute("SELECT count(*) FROM marketo.static_list_members")
        assert cur.fetchone() == (members,)
    conn.close()
