"""Program members against the simulator over HTTP: the program sensor keeps one partition per
selected program; the programs of one tick share one Marketo job (`programIds`) and each
partition loads exactly its program's rows, equal to the simulator's truth; a re-run of one
program gets its own job; an unknown program name fails the tick before any bulk call."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from marketo_assets.defs.cycle import BATCH_TAG
from marketo_assets.defs.list_sensors import program_sensor
from marketo_assets.settings import ListConfig, ListSettings, SettingsError
from marketo_assets_tests.support.assets import program_member_export_files, program_members
from marketo_assets_tests.support.dagster import SIM_ARGS, resources_for
from marketo_assets_tests.support.list_runs import apply_partitions, partition_requests, tick


def sensor_for(selection: str):
    return program_sensor(ListConfig(ListSettings(MARKETO_PROGRAMS=selection), {}))


def truth(sim, program_ids: list[int]) -> list[tuple[int, int]]:
    rows = sim.truth_program_members(program_ids, ids=True)["rows"]
    return sorted((int(p), int(lead)) for p, lead in rows)


def loaded(tmp_path) -> list[tuple[int, int]]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return conn.execute(
            'SELECT "programId", "leadId" FROM marketo.marketo.program_members ORDER BY 1, 2'
        ).fetchall()


def bulk_creates(sim) -> int:
    return len(sim.job_record()["jobs"])


def member_jobs(sim) -> list[dict]:
    return [j for j in sim.job_record()["jobs"] if j["type"] == "program_members"]


def staged_files(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "exports").rglob("*.csv"))


def test_program_sensor_partitions_and_member_rows(simulator_factory, tmp_path):
    sim = simulator_factory(**SIM_ARGS)
    resources = resources_for(sim, tmp_path)
    with dg.instance_for_test() as instance:
        # An exact name no program has: the tick fails, nothing is requested or created.
        with pytest.raises(SettingsError, match=r"MARKETO_PROGRAMS.*No Such Program"):
            tick(sensor_for("3001, No Such Program"), instance, resources)
        assert bulk_creates(sim) == 0
        assert instance.get_dynamic_partitions("programs") == []

        selection = "3001, 3003, Webinar: Act*"
        first = tick(sensor_for(selection), instance, resources)
        added, _ = partition_requests(first)
        assert added == ["3001", "3003", "3007"]
        assert {r.tags[BATCH_TAG] for r in first.run_requests} == {
            first.run_requests[0].tags[BATCH_TAG]
        }
        apply_partitions(instance, first)
        for n, request in enumerate(first.run_requests):
            # The shared file stays staged until the last program of the job is loaded.
            assert bool(staged_files(tmp_path)) == (0 < n < len(first.run_requests))
            result = dg.materialize(
                [program_member_export_files, program_members],
                partition_key=request.partition_key,
                resources=resources,
                instance=instance,
                tags=request.tags,
            )
            assert result.success
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            assert set(checks.values()) == {True} and len(checks) == 3
            (export,) = [
                e.materialization.metadata
                for e in result.get_asset_materialization_events()
                if e.asset_key == program_member_export_files.key
            ]
            assert export["export_batch"].value == ["3001", "3003", "3007"]
            # The first program's step created the job; the others reused its file.
            assert ("reused_staged_file" in export) == (n > 0)
        # One Marketo job for the three programs; each partition holds exactly its rows.
        (job,) = member_jobs(sim)
        assert staged_files(tmp_path) == []
        programs = sorted(int(key) for key in added)
        assert loaded(tmp_path) == truth(sim, programs)
        assert all(truth(sim, [p]) for p in programs)  # each selected program has members

        # A re-execution of one program's run (same tags) gets its own job, same rows.
        again = first.run_requests[1]
        result = dg.materialize(
            [program_member_export_files, program_members],
            partition_key=again.partition_key,
            resources=resources,
            instance=instance,
            tags=again.tags,
        )
        assert result.success
        jobs = member_jobs(sim)
        assert len(jobs) == 2 and jobs[0]["exportId"] == job["exportId"]
        assert loaded(tmp_path) == truth(sim, programs)
        assert staged_files(tmp_path) == []
        with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
            types = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'program_members'"
                ).fetchall()
            )
        assert (types["programId"], types["leadId"]) == ("INTEGER", "BIGINT")
        assert types["membershipDate"] == "TIMESTAMP WITH TIME ZONE"

        # Nothing changed: no run; a narrower selection deletes the other partitions.
        assert not tick(sensor_for(selection), instance, resources, first.cursor).run_requests
        narrower = tick(sensor_for("3001"), instance, resources, first.cursor)
        assert partition_requests(narrower) == ([], ["3003", "3007"])
        apply_partitions(instance, narrower)
        assert instance.get_dynamic_partitions("programs") == ["3001"]
