"""The export engine runs jobs of every bulk export type alike: an activity export is created,
waited for, downloaded, reattached after a restart and cancelled when interrupted, each call
under the activity paths (the fake Marketo knows a job only under its own type)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from marketo_assets.extract import ExportFailed, ExportSpec
from marketo_assets.marketo import ActivityFilter, ExportFilter, ExportRequest
from marketo_assets_tests.support.extract_fakes import Engine, Script, lead_spec

ASSET, KEY = "marketo/activities", "2026-02-01"
START = datetime(2026, 2, 1, tzinfo=UTC)


def activity_spec() -> ExportSpec:
    flt = ActivityFilter(start=START, end=START + timedelta(days=1, seconds=-1))
    request = ExportRequest(fields=["marketoGUID", "leadId"], filter=flt)
    return ExportSpec(ASSET, KEY, request, [("marketoGUID", "string"), ("leadId", "integer")])


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def test_an_activity_export_runs_its_job_to_a_staged_file(engine: Engine):
    outcome = engine.export(activity_spec())
    assert engine.marketo.methods() == ["quota", "create", "wait", "download"]
    assert outcome.path.exists() and outcome.records == 3
    assert engine.entries(ASSET) == [(outcome.export_id, "downloaded")]


def test_a_lead_and_an_activity_export_of_the_same_window_are_different_jobs(engine: Engine):
    """The ledger keeps them apart: the activity export never reuses the lead file."""
    spec = activity_spec()
    window = ExportFilter.created_at(START, START + timedelta(days=1, seconds=-1))
    lead = ExportSpec(ASSET, KEY, ExportRequest(fields=spec.request.fields, filter=window), [])
    assert lead.request_hash != spec.request_hash


def test_a_relaunched_run_reattaches_to_its_activity_job(engine: Engine):
    spec = activity_spec()
    export_id = "aaaaaaaa-0000-4000-8000-000000000009"
    engine.marketo.add_job(export_id, spec.request, "Processing")
    engine.ledger.record_created(
        export_id=export_id,
        asset=ASSET,
        partition_key=KEY,
        request_hash=spec.request_hash,
        request=spec.ledger_record(),
        run_id="killed-run",
    )
    outcome = engine.export(spec, run_id="relaunched")
    assert "create" not in engine.marketo.methods()
    assert outcome.export_id == export_id and outcome.metadata["reattached"] is True
    assert spec.ledger_record()["export_type"] == "activities"


def test_an_interrupted_activity_wait_cancels_the_activity_job(engine: Engine):
    engine.marketo.scripts.append(Script(end="interrupt", interrupt=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        engine.export(activity_spec())
    (job,) = engine.marketo.jobs.values()
    assert job.status == "Cancelled"
    assert engine.entries(ASSET) == [(job.export_id, "cancelled")]


def test_the_quota_check_counts_jobs_of_every_type(engine: Engine):
    """500 MB a day for leads, activities and program members together: a day's activity
    files leave no room for a lead export."""
    engine.marketo.scripts.append(Script(records=60_000))  # ~1.6 MB of the fake's 1 MB
    engine.export(activity_spec())
    with pytest.raises(ExportFailed, match="daily export quota"):
        engine.export(lead_spec(), run_id="run-2")
    assert engine.marketo.methods()[-1] == "quota"
