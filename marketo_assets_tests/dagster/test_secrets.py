"""No client secret and no access token is ever written anywhere.

The whole flow runs through a real Dagster instance (temp DAGSTER_HOME, the project's
dagster.yaml, compute logs captured) with a distinctive client secret and the deployed
EnvVar-based resources: a lead partition, a static-list export, and two runs that fail on
purpose (an unknown field; wrong credentials → HTTP 401). Runs are in-process (a run launched
by the daemon executes the same steps in a subprocess; starting one costs about a minute on
the CI machine). Then every byte of every file
under DAGSTER_HOME and the data dir (event log, compute logs, run storage with run config and
job snapshots, staging dir, ledger, capability file, DuckDB) is searched for the secret, the
wrong secret and every access token the simulator issued; the DuckDB tables are also queried
(DuckDB compresses strings, so a byte search alone could miss one).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from marketo_assets.extract.staging import MARKER
from marketo_assets_tests.support.assets import (
    lead_export_files,
    leads,
    static_list_export_files,
    static_list_members,
)
from marketo_assets_tests.support.dagster import SIM_ARGS, failure_text, run_env

SECRET = f"S3CR3T-{uuid.uuid4()}"
WRONG = f"WR0NG-S3CR3T-{uuid.uuid4()}"


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


def _strings_in_duckdb(path: Path, needles: list[str]) -> list[tuple[str, str, str]]:
    found = []
    with duckdb.connect(str(path), read_only=True) as conn:
        columns = conn.execute(
            "SELECT database_name, schema_name, table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND data_type = 'VARCHAR'"
        ).fetchall()
        assert columns
        for catalog, schema, table, column in columns:
            for needle in needles:
                (hits,) = conn.execute(
                    f'SELECT count(*) FROM "{catalog}"."{schema}"."{table}" '
                    f'WHERE contains("{column}", ?)',
                    [needle],
                ).fetchone()
                if hits:
                    found.append((table, column, needle[:12]))
    return found


@pytest.mark.timeout(600)
def test_secret_and_tokens_never_reach_logs_metadata_config_errors_or_files(
    simulator_factory, tmp_path, monkeypatch
):
    sim = simulator_factory(**SIM_ARGS, client_secret=SECRET)
    env = run_env(sim, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tokens: set[str] = set()

    from marketo_assets.definitions import defs

    resources = defs().resources  # EnvVar-based, exactly as deployed
    with dg.DagsterInstance.get() as instance:
        # 1. A lead partition (export + load).
        result = dg.materialize(
            [lead_export_files, leads],
            partition_key="2025-02-01",
            resources=resources,
            instance=instance,
        )
        assert result.success
        tokens.add(sim.token())  # the token the run used (Marketo hands out the same one)
        sim.revoke_tokens()  # the next run gets a new token

        # 2. A static list export on the same instance.
        instance.add_dynamic_partitions("static_lists", ["static-1001"])
        result = dg.materialize(
            [static_list_export_files, static_list_members],
            partition_key="static-1001",
            resources=resources,
            instance=instance,
        )
        assert result.success
        tokens.add(sim.token())
        sim.revoke_tokens()

        # 3. Failing on purpose: an unknown field (after describe), then wrong credentials.
        unknown = dg.materialize(
            [lead_export_files, leads],
            partition_key="2025-03-01",
            resources=resources,
            instance=instance,
            run_config={
                "resources": {"export_options": {"config": {"fields": ["id", "noSuchField"]}}}
            },
            raise_on_error=False,
        )
        tokens.add(sim.token())
        monkeypatch.setenv("MARKETO_CLIENT_SECRET", WRONG)
        refused = dg.materialize(
            [lead_export_files, leads],
            partition_key="2025-04-01",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not unknown.success and "noSuchField" in failure_text(unknown)
        assert not refused.success and "HTTP 401" in failure_text(refused)

        runs = instance.get_runs()
        assert len(runs) == 4
        serialized = []
        for run in runs:
            serialized.append(dg.serialize_value(run))  # run config and tags as the UI shows them
            serialized.append(dg.serialize_value(instance.all_logs(run.run_id)))  # incl. metadata
            snapshot = instance.get_job_snapshot(run.job_snapshot_id)
            serialized.append(dg.serialize_value(snapshot))  # resource config defaults
        materializations = [
            e
            for run in runs
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.is_step_materialization
        ]

    tokens.discard("")
    assert len(tokens) == 3
    needles = [SECRET, WRONG] + sorted(tokens) + [t.split(":")[0] for t in tokens]
    assert len(materializations) >= 4  # export + load of the lead and the list run
    assert any("noSuchField" in s for s in serialized)  # the error messages are in there
    for text in serialized:
        for needle in needles:
            assert needle not in text, f"{needle[:12]}... found in the instance's records"

    dagster_home = Path(env["DAGSTER_HOME"])
    compute_logs = [
        p for p in _files(dagster_home) if p.suffix in (".out", ".err", ".complete", ".log")
    ]
    assert any(p.stat().st_size for p in compute_logs), "no compute log was captured"

    files = _files(tmp_path)
    assert {p.name for p in files} >= {"ledger.sqlite", "marketo.duckdb"}
    leaks = []
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            if needle.encode() in data:
                leaks.append((str(path.relative_to(tmp_path)), needle[:12]))
    assert leaks == []
    assert _strings_in_duckdb(tmp_path / "marketo.duckdb", needles) == []
    staged = [p for p in _files(tmp_path / "exports") if p.name != MARKER]
    assert [p for p in staged if p.stat().st_size] == []  # all loaded
