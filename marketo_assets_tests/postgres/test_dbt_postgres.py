"""dbt on the PostgreSQL warehouse: raw tables exported from the simulator and loaded through
the warehouse interface (`PostgresWarehouse`), then `dbt build --target postgres` builds every
model and passes every dbt test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from marketo_assets.marketo import ClientSettings, ExportFilter, ExportRequest, MarketoClient
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets.warehouse import columns_for
from marketo_assets.warehouse.postgres import PostgresWarehouse

from ..dagster.conftest import SIM_ARGS

MONTHS = ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"]
LIST_FIELDS = ["id", "email", "firstName", "lastName", "company", "createdAt", "updatedAt"]
DBT = str(Path(sys.executable).with_name("dbt"))


def _month_window(key: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(key).replace(tzinfo=UTC)
    nxt = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, nxt - timedelta(seconds=1)


def _export_and_load(client, session, tmp_path, *, table, key, flt, field_types, lineage=None):
    request = ExportRequest(fields=[n for n, _ in field_types], filter=flt)
    job = client.wait_for_export(client.create_export(request).export_id)
    download = client.download_export(job, tmp_path / f"{table}-{key}.csv")
    result = session.load_partition(
        table=table,
        file_path=download.path,
        file_format="CSV",
        columns=columns_for(field_types, {}),
        partition_key=key,
        lineage={"_export_id": job.export_id, **(lineage or {})},
    )
    assert result.rows == job.number_of_records
    return result.rows


@pytest.mark.timeout(600)
def test_dbt_build_on_postgres_from_a_simulator_export(
    simulator_factory, pg_server, pg_database, tmp_path
):
    sim = simulator_factory(**SIM_ARGS)
    settings = ClientSettings(
        base_url=sim.base_url,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        poll_interval=0.2,
    )
    warehouse = PostgresWarehouse(pg_server.dsn(pg_database))
    loaded: dict[str, int] = {}
    with MarketoClient(settings) as client, warehouse.session() as session:
        described = client.describe_fields()
        lead_fields = [(f.name, f.data_type) for f in described if f.data_type != "formula"]
        types = dict(lead_fields)
        member_fields = [(n, types[n]) for n in LIST_FIELDS]
        for key in MONTHS:
            loaded[key] = _export_and_load(
                client, session, tmp_path, table="marketo.leads", key=key,
                flt=ExportFilter.created_at(*_month_window(key)), field_types=lead_fields,
            )  # fmt: skip
        day = datetime(2025, 6, 20, tzinfo=UTC)
        _export_and_load(
            client, session, tmp_path, table="marketo.lead_changes", key="2025-06-20",
            flt=ExportFilter.updated_at(day, day + timedelta(days=1, seconds=-1)),
            field_types=lead_fields,
        )  # fmt: skip
        statics, smarts = list(client.iter_static_lists()), list(client.iter_smart_lists())
        members = {}
        for kind, lst, flt in [
            ("static", statics[0], ExportFilter.static_list_id(statics[0].id)),
            ("smart", smarts[0], ExportFilter.smart_list_id(smarts[0].id)),
        ]:
            members[kind] = _export_and_load(
                client, session, tmp_path, table=f"marketo.{kind}_list_members",
                key=f"{kind}-{lst.id}", flt=flt, field_types=member_fields,
                lineage={"_list_id": lst.id},
            )  # fmt: skip
        rows = [
            {"list_id": lst.id, "list_type": kind, "partition_key": f"{kind}-{lst.id}",
             "name": lst.name, "created_at": lst.created_at, "updated_at": lst.updated_at}
            for kind, lists in (("static", statics), ("smart", smarts))
            for lst in lists
        ]  # fmt: skip
        session.replace_list_catalog(table="marketo.lists", rows=rows, loaded_at=datetime.now(UTC))
    assert sum(loaded.values()) == SIM_ARGS["leads"]
    assert members["static"] > 0 and members["smart"] > 0

    target_dir = tmp_path / "dbt_target"  # never the project's target/ (Dagster's manifest)
    done = subprocess.run(
        [DBT, "build", "--target", "postgres", "--project-dir", "dbt_project",
         "--profiles-dir", "dbt_project", "--target-path", str(target_dir),
         "--log-path", str(tmp_path / "dbt_logs")],
        cwd=PROJECT_ROOT,
        env={**os.environ, **pg_server.libpq_env(pg_database)},
        capture_output=True,
        text=True,
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    models = [u for u in statuses if u.startswith("model.")]
    tests = [u for u in statuses if u.startswith("test.")]
    assert len(models) == 16 and len(tests) >= 15
    assert {statuses[u] for u in models} == {"success"}
    assert {statuses[u] for u in tests} == {"pass"}, {
        u: s for u, s in statuses.items() if s != "pass"
    }

    with psycopg2.connect(pg_server.dsn(pg_database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT lead_id) FROM marts.dim_leads")
        assert cur.fetchone() == (SIM_ARGS["leads"], SIM_ARGS["leads"])
        cur.execute("SELECT list_type, count(*) FROM marts.fct_list_membership GROUP BY 1")
        assert dict(cur.fetchall()) == members
        cur.execute("SELECT count(*) FROM marts.fct_list_membership WHERE list_name IS NULL")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT sum(leads_created) FROM reporting.rpt_leads_created_daily")
        assert cur.fetchone() == (SIM_ARGS["leads"],)
    conn.close()


def test_activity_merge_and_deletion_models_on_postgres(pg_server, pg_database, tmp_path):
    """The hand-written raw rows of the DuckDB test (`attributes` as jsonb): the JSON
    unpacking, the merge chains and the deletions give the same models on PostgreSQL."""
    from ..dagster.test_dbt_activities import (
        ACTIVITY_TABLES,
        check_models,
        create_raw_tables,
        dbt_build,
        only_warning_is_the_unknown_activity_type,
    )

    dsn = pg_server.dsn(pg_database)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA marketo")
        create_raw_tables(cur, ["leads", *ACTIVITY_TABLES], "marketo", postgres=True)
    conn.close()
    env = pg_server.libpq_env(pg_database)
    only_warning_is_the_unknown_activity_type(dbt_build(tmp_path, env, "--target", "postgres"))

    def rows(sql: str) -> list[tuple]:
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(sql)
            found = cur.fetchall()
        conn.close()
        return found

    check_models(rows)
