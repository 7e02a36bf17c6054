"""The export engine across runs: partition claims, reattaching to a job after a restart,
reusing a staged file, and windows exported as several jobs (fake Marketo, fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketo_assets.extract import ExportFailed, ExportSpec
from marketo_assets_tests.support.extract_fakes import (
    FIELD_TYPES,
    KEY,
    LEADS,
    Engine,
    Script,
    lead_request,
    lead_spec,
    long_window_spec,
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def _record(engine: Engine, export_id: str, status: str = "created", spec=None) -> None:
    """The ledger entry a killed run left behind for `export_id`."""
    spec = spec or lead_spec()
    engine.ledger.record_created(
        export_id=export_id,
        asset=LEADS,
        partition_key=KEY,
        request_hash=spec.request_hash,
        request=spec.ledger_record(),
        run_id="killed-run",
        status=status,
    )


# ---------------------------------------------------------------- claims
def test_a_partition_claimed_by_another_active_run_fails_naming_it(engine: Engine):
    engine.ledger.claim(LEADS, KEY, "other-run")
    with pytest.raises(ExportFailed, match="already being exported or loaded by run other-run"):
        engine.export(run_status=lambda run_id: "active")
    assert engine.marketo.calls == []
    claim = engine.ledger.current_claim(LEADS, KEY)
    assert claim is not None and claim.run_id == "other-run"


def test_the_claim_failure_is_not_retried_and_names_the_run_in_metadata(engine: Engine):
    engine.ledger.claim(LEADS, KEY, "other-run")
    with pytest.raises(ExportFailed) as info:
        engine.export(run_status=lambda run_id: "active")
    assert info.value.retryable is False
    assert info.value.metadata == {"other_run_id": "other-run"}


def test_a_claim_of_a_finished_run_is_taken_over(engine: Engine):
    engine.ledger.claim(LEADS, KEY, "old-run")
    asked: list[str] = []

    def run_status(run_id: str) -> str:
        asked.append(run_id)
        return "finished"

    engine.export(run_status=run_status)
    assert asked == ["old-run"]
    claim = engine.ledger.current_claim(LEADS, KEY)
    assert claim is not None and claim.run_id == "run-1"


def test_a_successful_export_hands_the_claim_over_to_the_load_step(engine: Engine):
    engine.export()
    claim = engine.ledger.current_claim(LEADS, KEY)
    assert claim is not None and claim.run_id == "run-1" and claim.state == "handed_over"


def test_a_failed_export_releases_the_claim(engine: Engine):
    engine.marketo.scripts = [Script(bad_checksum=True)]
    with pytest.raises(ExportFailed):
        engine.export()
    assert engine.ledger.current_claim(LEADS, KEY) is None


# ---------------------------------------------------------------- reuse and reattach
def test_an_export_already_downloaded_reuses_the_staged_file_without_calling_marketo(
    engine: Engine,
):
    first = engine.export()
    engine.marketo.calls.clear()
    again = engine.export(run_id="run-2")
    assert engine.marketo.methods() == ["quota"]  # only today's quota figure for the metadata
    assert again.export_id == first.export_id and again.path == first.path
    assert again.metadata["reused_staged_file"] is True
    assert "reused" in engine.notices()


def test_a_downloaded_export_whose_staged_file_is_gone_is_reattached_and_downloaded_again(
    engine: Engine,
):
    first = engine.export()
    first.path.unlink()
    engine.marketo.calls.clear()
    again = engine.export(run_id="run-2")
    assert "create" not in engine.marketo.methods()
    assert ("download", first.export_id) in engine.marketo.calls
    assert again.metadata["reattached"] is True and again.metadata["job_attempts"] == 1
    assert again.path.exists()


@pytest.mark.parametrize("status", ["Created", "Queued", "Processing"])
def test_after_a_restart_the_run_reattaches_to_its_job_in_marketo(engine: Engine, status: str):
    export_id = "aaaaaaaa-0000-4000-8000-000000000001"
    engine.marketo.add_job(export_id, lead_request(), status)
    _record(engine, export_id)
    outcome = engine.export(run_id="relaunched")
    assert "create" not in engine.marketo.methods()
    assert outcome.export_id == export_id
    assert engine.entries() == [(export_id, "downloaded")]
    assert "reattached" in engine.notices()
    assert outcome.metadata["reattached"] is True


def test_a_job_marketo_no_longer_knows_404_after_restart_is_replaced_by_a_new_one(
    engine: Engine,
):
    gone = "aaaaaaaa-0000-4000-8000-000000000002"
    _record(engine, gone, status="queued")
    outcome = engine.export(run_id="relaunched")
    assert engine.marketo.methods()[:3] == ["usable", "quota", "create"]
    assert engine.entries() == [(gone, "expired"), (outcome.export_id, "downloaded")]
    assert engine.ledger.get(gone).error == "not reusable any more"  # type: ignore[union-attr]
    assert "not_reusable" in engine.notices()


def test_a_completed_job_whose_file_expired_is_not_reattached(engine: Engine):
    export_id = "aaaaaaaa-0000-4000-8000-000000000003"
    engine.marketo.add_job(export_id, lead_request(), "Completed", file_gone=True)
    _record(engine, export_id, status="completed")
    outcome = engine.export()
    assert outcome.export_id != export_id
    assert dict(engine.entries())[export_id] == "expired"


def test_a_new_job_supersedes_older_active_jobs_of_the_partition(engine: Engine):
    other = ExportSpec(LEADS, KEY, lead_request(format="TSV"), FIELD_TYPES)
    _record(engine, "aaaaaaaa-0000-4000-8000-000000000004", spec=other)
    outcome = engine.export()
    assert engine.entries() == [
        ("aaaaaaaa-0000-4000-8000-000000000004", "superseded"),
        (outcome.export_id, "downloaded"),
    ]


def test_a_staged_file_of_another_generation_is_not_reused(engine: Engine):
    first = engine.export(lead_spec(generation="list updated 10:00"))
    again = engine.export(lead_spec(generation="list updated 11:00"), run_id="run-2")
    assert again.export_id != first.export_id
    assert engine.marketo.methods().count("create") == 2


# ---------------------------------------------------------------- windows of several jobs
def test_a_window_longer_than_31_days_is_exported_as_one_job_per_part(engine: Engine):
    spec = long_window_spec()
    outcome = engine.export(spec)
    assert engine.marketo.methods().count("create") == len(spec.parts) == 2
    assert outcome.metadata["export_parts"] == 2
    assert outcome.metadata["export_ids"] == outcome.export_ids
    assert outcome.records == 6 and outcome.metadata["records"] == 6
    hashes = [e.request["parts"] for e in engine.ledger.entries(LEADS)]
    assert hashes[0] == hashes[1] == [p.request_hash for p in spec.plan()]
    assert [status for _, status in engine.entries()] == ["downloaded", "downloaded"]
    assert engine.notices().count("export_part") == 2


def test_a_rerun_of_a_long_window_reuses_the_part_already_staged(engine: Engine):
    spec = long_window_spec()
    engine.marketo.scripts = [Script(), Script(bad_checksum=True)]
    with pytest.raises(ExportFailed):
        engine.export(spec)
    engine.marketo.calls.clear()
    outcome = engine.export(spec, run_id="run-2")
    assert engine.marketo.methods().count("create") == 1
    parts = outcome.metadata["parts"]
    assert [p["reused_staged_file"] for p in parts] == [True, False]
    assert outcome.metadata["job_attempts"] == 1
    assert "download_seconds" not in outcome.metadata  # unknown for the reused part
