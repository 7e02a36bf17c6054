"""The scale-out instance: `deploy/dagster.yaml` as it is (PostgreSQL run, event-log and
schedule storage, queued run coordinator, pools, run retries and monitoring) pointed at a
throwaway PostgreSQL, a real `dagster-daemon`, and a backfill of several lead partitions
against the simulator."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import dagster as dg
import duckdb
import psycopg2
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
from marketo_assets.local.instance import (
    backfill_runs,
    ensure_pools,
    launch_backfill,
    running_daemon,
    wait_for_backfill,
)
from marketo_assets.local.postgres_storage import PoolLockedPostgresEventLogStorage
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets_tests.support.dagster import SIM_ARGS, created_at_window, run_env
from marketo_assets_tests.support.pool_claims import claims_per_round

PARTITIONS = ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]
EXPORT_STEP = "marketo__lead_export_files"
DUCKDB_STEPS = ("marketo__leads", "marketo_dbt_models")
STARTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED}
ENDS = {
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_UP_FOR_RETRY,
}


def step_intervals(instance: dg.DagsterInstance, runs) -> list[tuple[str, str, float, float]]:
    """(run id, step key, start, end) of every step execution, from the event log."""
    out = []
    for run in runs:
        started: dict[str, float] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or not event.step_key:
                continue
            if event.event_type in STARTS:
                started[event.step_key] = entry.timestamp
            elif event.event_type in ENDS and event.step_key in started:
                key = event.step_key
                out.append((run.run_id, key, started.pop(key), entry.timestamp))
    return out


@contextmanager
def daemon_and_workers(log_path) -> Iterator[subprocess.Popen]:
    """`running_daemon`, then the end of what is left of its process group: its code server
    waits for runs still in progress (a dbt build the sensor started after the backfill)."""
    group = None
    try:
        with running_daemon(log_path=log_path) as daemon:
            group = daemon.pid
            yield daemon
    finally:
        if group is not None:
            with suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at the same instant (an end before a start at the same time)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_, most = 0, 0
    for _, delta in points:
        open_ += delta
        most = max(most, open_)
    return most


@pytest.fixture
def scale_out_env(simulator_factory, dbt_manifest, pg_server, pg_database, tmp_path, monkeypatch):
    sim = simulator_factory(**SIM_ARGS)
    env = run_env(sim, tmp_path)
    # The deployment's instance config, verbatim; only the credentials come from the test.
    shutil.copy(
        PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml"
    )
    env |= {
        "DAGSTER_PG_HOST": pg_server.host,
        "DAGSTER_PG_PORT": str(pg_server.port),
        "DAGSTER_PG_DB": pg_database,
        "DAGSTER_PG_USERNAME": pg_server.user,
        "DAGSTER_PG_PASSWORD": pg_server.password,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return sim, env


@pytest.mark.timeout(900)
def test_daemon_on_postgres_runs_a_backfill_within_the_pools(
    scale_out_env, pg_server, pg_database, tmp_path
):
    from marketo_assets.definitions import defs

    sim, _ = scale_out_env
    # ~5 s of processing per job: the four runs' exports compete for the two export slots.
    sim.configure(rows_per_second=100)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert isinstance(instance.event_log_storage, PoolLockedPostgresEventLogStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        ensure_pools(instance)
        with daemon_and_workers(tmp_path / "daemon.log"):
            backfill_id = launch_backfill(instance, defs(), [LEAD_EXPORTS, LEADS], PARTITIONS)
            status = wait_for_backfill(instance, backfill_id, timeout=700)
            runs = backfill_runs(instance, backfill_id)
            # Every run of the instance (the dbt sensor may have started a build meanwhile).
            all_runs = list(instance.get_runs(filters=dg.RunsFilter()))
            steps = step_intervals(instance, all_runs)
            logs = "\n".join(str(e.message) for run in runs for e in instance.all_logs(run.run_id))
    daemon_log = (tmp_path / "daemon.log").read_text(errors="replace")
    assert status == BulkActionStatus.COMPLETED_SUCCESS, logs[-3000:] + daemon_log[-3000:]
    assert len(runs) == len(PARTITIONS)
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert sorted(r.tags["dagster/partition"] for r in runs) == PARTITIONS

    # The pools held: at most two exports processing in Marketo, never two DuckDB writers.
    state = sim.state()
    assert state["max_processing_seen"] <= 2
    assert len(state["jobs"]) == len(PARTITIONS)  # one export job each: no quota spent twice
    exports = [(s, e) for _, key, s, e in steps if key == EXPORT_STEP]
    writers = [(s, e) for _, key, s, e in steps if key.startswith(DUCKDB_STEPS)]
    assert len(exports) >= len(PARTITIONS) and len(writers) >= len(PARTITIONS)
    assert max_overlap(exports) <= 2, exports
    assert max_overlap(writers) == 1, writers
    assert "Could not set lock" not in logs

    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        rows = dict(
            conn.execute(
                "SELECT _partition_key, count(*) FROM marketo.marketo.leads GROUP BY 1"
            ).fetchall()
        )
    assert rows == {k: sim.truth(created_at_window(k))["count"] for k in PARTITIONS}

    # The runs, their events and the pool limits are recorded in PostgreSQL itself.
    conn = psycopg2.connect(pg_server.dsn(pg_database))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs")
            recorded = dict(cur.fetchall())
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = ANY(%s) "
                "AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                ([r.run_id for r in runs],),
            )
            (materializations,) = cur.fetchone()
            cur.execute('SELECT concurrency_key, "limit" FROM concurrency_limits')
            limits = dict(cur.fetchall())
            cur.execute("SELECT status FROM bulk_actions WHERE key = %s", (backfill_id,))
            (backfill_status,) = cur.fetchone()
    finally:
        conn.close()
    assert {r.run_id: "SUCCESS" for r in runs}.items() <= recorded.items()
    assert materializations == 2 * len(PARTITIONS)  # export files + leads, per partition
    assert limits == {"marketo_bulk_export": 2, "duckdb": 1}
    assert backfill_status == "COMPLETED_SUCCESS"


@pytest.mark.timeout(180)
def test_the_last_slot_goes_to_one_of_the_processes_asking_together(scale_out_env, tmp_path):
    """Dagster's own PostgreSQL storage gave a pool's last slot to 2 of 4 processes asking
    at the same moment (1 round of 8); the deployment's storage holds an advisory lock."""
    _, env = scale_out_env
    rounds = 8
    per_round = claims_per_round({**os.environ, **env}, tmp_path, rounds=rounds)
    assert per_round == [1] * rounds, f"claims per round (pool of 1): {per_round}"
