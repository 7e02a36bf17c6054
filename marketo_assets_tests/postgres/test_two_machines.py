"""Scale out without a shared disk: two "machines" (each its own DAGSTER_HOME and staging
folder) on one PostgreSQL cluster that holds the Dagster instance (`deploy/dagster.yaml`), the
export ledger (MARKETO_LEDGER=postgres) and the warehouse. A run on A exports and fails to load;
the load is retried on B, where the staged file is not: it downloads the file again by export id
instead of exporting again. One Marketo job, the simulator's rows, nothing left behind on either
side."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from marketo_assets.defs.resources import WarehouseResource
from marketo_assets.extract import Staging
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import SIM_ARGS, resources_for
from marketo_assets_tests.support.dagster import created_at_window as _window

KEY = "2025-05-01"
SIM = {**SIM_ARGS, "leads": 600, "created_from": "2025-05-01"}


def _machine(tmp_path, name: str, sim) -> tuple[dg.DagsterInstance, dict]:
    """A machine: its DAGSTER_HOME (the deployment's dagster.yaml, verbatim) and resources
    whose staging folder is its own local disk."""
    home = tmp_path / name / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    local = tmp_path / name
    resources = {
        **resources_for(sim, local, ledger_store="postgres"),
        "warehouse": WarehouseResource(database=str(local / "unused.duckdb"), warehouse="postgres"),
    }
    return dg.DagsterInstance.from_config(str(home)), resources


def _sql(dsn: str, sql: str) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


@contextmanager
def out_of_reach(folder: Path) -> Iterator[None]:
    away = folder.rename(folder.with_name(folder.name + "-unmounted"))
    try:
        yield
    finally:
        away.rename(folder)


def _files(staging: Staging) -> list[str]:
    return sorted(str(p) for p in staging.root.rglob("*") if p.is_file() and p.name[0] != ".")


@pytest.mark.timeout(300)
def test_export_on_a_load_retried_on_b_one_job_same_rows_nothing_left(
    simulator_factory, pg_server, pg_database, tmp_path, monkeypatch
):
    sim = simulator_factory(**SIM)
    env = {
        **pg_server.libpq_env(pg_database),  # the warehouse and the ledger
        "DAGSTER_PG_HOST": pg_server.host,  # the instance (deploy/dagster.yaml)
        "DAGSTER_PG_PORT": str(pg_server.port),
        "DAGSTER_PG_DB": pg_database,
        "DAGSTER_PG_USERNAME": pg_server.user,
        "DAGSTER_PG_PASSWORD": pg_server.password,
        "MARKETO_WAREHOUSE": "postgres",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    instance_a, on_a = _machine(tmp_path, "a", sim)
    instance_b, on_b = _machine(tmp_path, "b", sim)
    staging_a = on_a["marketo"].local().staging()
    staging_b = on_b["marketo"].local().staging()

    dsn = pg_server.dsn(pg_database)
    _sql(dsn, "CREATE SCHEMA marketo; CREATE TABLE marketo.leads (id text, note text)")

    with instance_a, instance_b:
        # On A: the export succeeds, the load fails (a table `id` of the wrong type: no
        # retries), keeping A's staged file.
        on_machine_a = dg.materialize(
            [lead_export_files, leads], partition_key=KEY, resources=on_a, instance=instance_a,
            raise_on_error=False,
        )  # fmt: skip
        assert not on_machine_a.success
        assert on_machine_a.is_node_success("marketo__lead_export_files")
        assert on_machine_a.is_node_failed("marketo__leads")
        (staged_on_a,) = _files(staging_a)
        _sql(dsn, "DROP TABLE marketo.leads")  # the cause is fixed; the load is retried on B

        # B cannot see A's disk (both "machines" share this host: A's folder is moved away).
        with out_of_reach(tmp_path / "a" / "exports"):
            loaded = dg.materialize(
                [lead_export_files, leads], selection=[leads.key], partition_key=KEY,
                resources=on_b, instance=instance_b,
            )  # fmt: skip
        assert loaded.success
        assert all(c.passed for c in loaded.get_asset_check_evaluations())
        # One instance: B sees A's run, A sees B's materialization.
        assert instance_b.get_run_by_id(on_machine_a.run_id).is_failure
        assert instance_a.get_latest_materialization_event(leads.key) is not None
        logs = [e.message for e in instance_b.all_logs(loaded.run_id) if e.message]
        assert any("downloaded it again" in m for m in logs)

    truth = sim.truth(_window(KEY))["count"]
    jobs = sim.state()["jobs"]
    assert len(jobs) == 1  # the load spent no second export job (nor quota)
    (metadata,) = [m.materialization.metadata for m in loaded.get_asset_materialization_events()]
    assert metadata["dagster/row_count"].value == truth
    assert metadata["export_id"].value == jobs[0]["exportId"]
    with psycopg2.connect(pg_server.dsn(pg_database)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT id) FROM marketo.leads WHERE _partition_key = %s",
            (KEY,),
        )
        assert cur.fetchone() == (truth, truth)
        cur.execute("SELECT status FROM marketo_ledger.exports")
        assert cur.fetchall() == [("loaded",)]
        cur.execute("SELECT count(*) FROM marketo_ledger.claims")
        assert cur.fetchone() == (0,)
    conn.close()

    # Nothing left behind: B deleted its copy after loading; A deletes its own at its next
    # export or load step, which cleans the staging folder first.
    assert _files(staging_b) == []
    assert _files(staging_a) == [staged_on_a]
    staging_a.clean(on_a["marketo"].ledger())
    assert _files(staging_a) == []
    assert not (tmp_path / "a" / "ledger.sqlite").exists()  # no SQLite ledger on either side
    assert not (tmp_path / "b" / "ledger.sqlite").exists()
