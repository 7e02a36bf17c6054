"""The export engine's state machine (extract.export) against a fake Marketo and a fake clock:
each transition of a job's life, what the ledger records, which Marketo calls are made, which
notices are emitted and how failures are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketo_assets import extract
from marketo_assets.extract import ExportFailed, ExportLimits, ExportSpec
from marketo_assets.marketo import ExportFilter, ExportRequest
from marketo_assets.marketo import errors as marketo_errors
from marketo_assets_tests.support.extract_fakes import (
    MB,
    POLL_SECONDS,
    T0,
    Engine,
    Script,
    lead_request,
    lead_spec,
)

LEADS = "marketo/leads"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


# ---------------------------------------------------------------- created → … → downloaded
def test_new_export_is_created_waited_for_downloaded_and_recorded(engine: Engine):
    outcome = engine.export()

    (export_id, _job), = engine.marketo.jobs.items()  # fmt: skip
    assert engine.marketo.methods() == ["quota", "create", "wait", "download"]
    assert engine.entries() == [(export_id, "downloaded")]
    entry = engine.ledger.get(export_id)
    assert entry is not None and entry.run_id == "run-1" and entry.records == 3
    assert Path(entry.staged_file or "").read_bytes().startswith(b"id,email\n")
    assert outcome.export_id == export_id and outcome.records == 3
    assert outcome.metadata["job_attempts"] == 1 and outcome.metadata["reattached"] is False
    assert outcome.metadata["checksum_verified"] is True
    assert "created" in engine.notices()


def test_staged_file_is_named_by_export_id_and_format_in_a_private_folder(engine: Engine):
    outcome = engine.export(ExportSpec(LEADS, "2026-02-01", lead_request(format="TSV"), []))
    assert outcome.path.name == f"{outcome.export_id}.tsv"
    assert outcome.path.parent == engine.staging.root / "marketo_leads" / "2026-02-01"
    assert engine.staging.root.name == "marketo_assets"  # the project's own folder
    assert outcome.path.parent.stat().st_mode & 0o777 == 0o700


def test_queued_and_processing_times_come_from_marketo_and_downloaded_at_from_the_clock(
    engine: Engine,
):
    outcome = engine.export()
    entry = engine.ledger.get(outcome.export_id)
    assert entry is not None
    assert entry.queued_at == (T0.replace(second=30)).isoformat()
    assert outcome.metadata["queue_wait_seconds"] == POLL_SECONDS
    assert outcome.metadata["processing_seconds"] == POLL_SECONDS
    assert entry.downloaded_at == engine.clock.now().isoformat()


def test_quota_figures_after_an_export_add_the_file_to_the_pre_create_check(engine: Engine):
    engine.marketo.used_today = MB // 2
    outcome = engine.export()
    assert engine.marketo.methods().count("quota") == 1  # no second listing
    assert outcome.metadata["quota_used_today_bytes"] == MB // 2 + outcome.bytes
    assert outcome.metadata["quota_used_today_pct"] == round(
        100 * (MB // 2 + outcome.bytes) / MB, 2
    )
    assert outcome.metadata["rest_calls"] == 4


# ---------------------------------------------------------------- failed, cancelled, timeout
def test_a_job_marketo_fails_is_recreated_and_the_next_one_used(engine: Engine):
    engine.marketo.scripts = [Script(end="Failed"), Script()]
    outcome = engine.export()
    (first, _), (second, _) = engine.entries()
    assert engine.entries() == [(first, "failed"), (second, "downloaded")]
    assert outcome.export_id == second and outcome.metadata["job_attempts"] == 2
    assert engine.notices().count("recreating") == 1


def test_a_job_that_fails_every_time_stops_after_max_attempts_with_a_clear_error(
    engine: Engine,
):
    engine.marketo.scripts = [Script(end="Failed")] * 3
    with pytest.raises(ExportFailed, match=r"Marketo failed export .* 3 times") as info:
        engine.export()
    assert info.value.retryable is False
    assert engine.marketo.methods().count("create") == 3
    assert [status for _, status in engine.entries()] == ["failed"] * 3
    assert engine.ledger.current_claim("marketo/leads", "2026-02-01") is None


def test_max_job_attempts_one_means_no_recreate(engine: Engine):
    engine.limits = ExportLimits(daily_quota_mb=1, max_job_attempts=1)
    engine.marketo.scripts = [Script(end="Failed")]
    with pytest.raises(ExportFailed, match="1 times"):
        engine.export()
    assert engine.marketo.methods().count("create") == 1


def test_a_job_cancelled_in_marketo_fails_the_step_retryably(engine: Engine):
    engine.marketo.scripts = [Script(end="Cancelled")]
    with pytest.raises(ExportFailed, match="was cancelled") as info:
        engine.export()
    assert info.value.retryable is True
    assert [status for _, status in engine.entries()] == ["cancelled"]


def test_a_job_that_never_finishes_times_out_is_cancelled_and_not_retried(engine: Engine):
    engine.marketo.scripts = [Script(end="hang")]
    with pytest.raises(ExportFailed, match="did not complete within 3600 s") as info:
        engine.export()
    (export_id, status), = engine.entries()  # fmt: skip
    assert info.value.retryable is False
    assert status == "cancelled"
    assert ("cancel", export_id) in engine.marketo.calls
    assert engine.marketo.jobs[export_id].status == "Cancelled"


# ---------------------------------------------------------------- interrupts
class OrchestratorInterrupt(BaseException):
    """Like Dagster's DagsterExecutionInterruptedError: a BaseException, not an Exception."""


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), OrchestratorInterrupt()])
def test_an_interrupted_wait_cancels_the_job_records_it_and_reraises(
    engine: Engine, interrupt: BaseException
):
    engine.marketo.scripts = [Script(end="interrupt", interrupt=interrupt)]
    with pytest.raises(type(interrupt)):
        engine.export()
    (export_id, status), = engine.entries()  # fmt: skip
    assert status == "cancelled"
    assert engine.ledger.get(export_id).error == "run interrupted"  # type: ignore[union-attr]
    assert engine.marketo.calls[-1] == ("cancel", export_id)
    assert "interrupted" in engine.notices()
    assert engine.ledger.current_claim("marketo/leads", "2026-02-01") is None


def test_an_interrupt_still_propagates_when_the_cancel_fails(engine: Engine):
    engine.marketo.scripts = [Script(end="interrupt", interrupt=KeyboardInterrupt())]
    engine.marketo.cancel_error = marketo_errors.TransientError("HTTP 503")
    with pytest.raises(KeyboardInterrupt):
        engine.export()
    assert [status for _, status in engine.entries()] == ["created"]
    errors = [e for e in engine.events if getattr(e, "kind", "") == "cancel_failed"]
    assert errors and "HTTP 503" in errors[0].message  # type: ignore[union-attr]


# ---------------------------------------------------------------- file gone, checksum
def test_a_completed_job_whose_file_is_gone_is_recreated_once(engine: Engine):
    engine.marketo.scripts = [Script(file_gone=True), Script()]
    outcome = engine.export()
    (first, _), (second, _) = engine.entries()
    assert engine.entries() == [(first, "expired"), (second, "downloaded")]
    assert outcome.export_id == second
    assert "file_gone" in engine.notices()


def test_a_file_gone_twice_fails_the_step(engine: Engine):
    engine.marketo.scripts = [Script(file_gone=True), Script(file_gone=True)]
    with pytest.raises(ExportFailed, match="not available") as info:
        engine.export()
    assert info.value.retryable is True
    assert [status for _, status in engine.entries()] == ["expired", "expired"]
    assert engine.marketo.methods().count("create") == 2


def test_a_checksum_mismatch_marks_the_job_failed_and_is_not_retried(engine: Engine):
    engine.marketo.scripts = [Script(bad_checksum=True)]
    with pytest.raises(ExportFailed) as info:
        engine.export()
    assert info.value.retryable is False
    assert "sha" in str(info.value).lower() or "checksum" in str(info.value).lower()
    assert [status for _, status in engine.entries()] == ["failed"]
    assert not any(engine.staging.root.rglob("*.csv"))


# ---------------------------------------------------------------- quota
def test_a_used_up_quota_fails_before_any_job_naming_the_reset(engine: Engine):
    engine.marketo.used_today = 2 * MB
    with pytest.raises(ExportFailed, match="daily export quota") as info:
        engine.export()
    assert "create" not in engine.marketo.methods()
    assert info.value.retryable is False
    reset = info.value.metadata["quota_resets_at"]
    assert reset == "2026-03-03T06:00:00+00:00"  # midnight America/Chicago (CST)
    assert f"resets at {reset}" in str(info.value)
    assert engine.entries() == []
    assert engine.ledger.current_claim("marketo/leads", "2026-02-01") is None
    assert [s["reason"] for s in engine.ledger.stops()] == ["quota"]


def test_marketo_refusing_a_job_for_quota_fails_without_retry(engine: Engine):
    reset = T0.replace(hour=6)
    engine.marketo.create_error = marketo_errors.QuotaExceededError("quota exceeded", reset)
    with pytest.raises(ExportFailed, match="after the reset; nothing was changed") as info:
        engine.export()
    assert info.value.retryable is False
    assert info.value.metadata == {"quota_resets_at": reset.isoformat(), "stopped_by": "quota"}
    # Recorded, so the quota_resume sensor launches the partition again after the reset.
    (stop,) = engine.ledger.stops()
    assert (stop["asset"], stop["reason"], stop["resets_at"]) == (
        "marketo/leads",
        "quota",
        reset.isoformat(),
    )


def test_invalid_fields_fail_without_retry(engine: Engine):
    engine.marketo.create_error = marketo_errors.InvalidFieldsError(["nope"], "Invalid field")
    with pytest.raises(ExportFailed) as info:
        engine.export()
    assert info.value.retryable is False
    assert "nope" in str(info.value)


# ---------------------------------------------------------------- 1035 and capabilities
def test_unsupported_filter_1035_is_recorded_and_fails_naming_the_hint(engine: Engine):
    engine.marketo.unsupported = {"updatedAt"}
    spec = ExportSpec(
        LEADS, "2026-02-01", _updated_at_request(), [], unsupported_hint="Ask Support for it."
    )
    with pytest.raises(ExportFailed, match="updatedAt filter is not enabled") as info:
        engine.export(spec)
    status = engine.capabilities.get("updatedAt")
    assert status is not None and status.supported is False and status.source == "export"
    assert info.value.retryable is False
    assert info.value.metadata["marketo_error"] == "1035"
    assert info.value.metadata["capabilities_file"] == str(engine.capabilities.path)
    assert str(info.value).endswith("Ask Support for it.")
    assert "unsupported_filter" in engine.notices()


def test_a_created_updated_at_job_records_the_filter_as_supported(engine: Engine):
    engine.capabilities.record("updatedAt", False, source="probe")
    engine.export(ExportSpec(LEADS, "2026-02-01", _updated_at_request(), []))
    status = engine.capabilities.get("updatedAt")
    assert status is not None and status.supported is True


def test_a_created_at_export_records_no_capability(engine: Engine):
    engine.export()
    assert not engine.capabilities.path.exists()


def _updated_at_request() -> ExportRequest:
    lo = T0.replace(day=1)
    return ExportRequest(
        fields=["id", "updatedAt"], filter=ExportFilter.updated_at(lo, lo.replace(hour=23))
    )


# ---------------------------------------------------------------- the spec step
def test_columns_that_clash_fail_before_any_marketo_call(engine: Engine):
    bad = ExportRequest(fields=["id", "email", "Email"], filter=lead_request().filter)
    with pytest.raises(ExportFailed, match="would be one table column"):
        engine.export(ExportSpec(LEADS, "2026-02-01", bad, []))
    assert engine.marketo.calls == []


def test_the_spec_function_is_called_with_the_client(engine: Engine):
    seen = []

    def make_spec(client):
        seen.append(client)
        return lead_spec()

    engine.export(make_spec)  # type: ignore[arg-type]
    assert seen == [engine.marketo]


def test_an_error_building_the_spec_releases_nothing_and_fails_clearly(engine: Engine):
    def make_spec(client):
        raise marketo_errors.AuthenticationError("bad client secret")

    with pytest.raises(ExportFailed, match="bad client secret") as info:
        engine.export(make_spec)  # type: ignore[arg-type]
    assert info.value.retryable is False
    assert engine.marketo.calls == []


def test_dagster_interrupts_are_what_the_engine_treats_as_an_interrupt():
    """The engine cancels the job on any BaseException that is not an Exception: Dagster's
    interrupt must stay one (else a terminated run would leave its Marketo job running)."""
    import dagster as dg

    assert issubclass(dg.DagsterExecutionInterruptedError, BaseException)
    assert not issubclass(dg.DagsterExecutionInterruptedError, Exception)


# ---------------------------------------------------------------- fields and staging
def test_select_fields_puts_required_fields_first_and_skips_formula_fields():
    from marketo_assets.extract import select_fields
    from marketo_assets.marketo import LeadField

    described = [
        LeadField("email", data_type="email"),
        LeadField("score", data_type="formula"),
        LeadField("id", data_type="integer"),
        LeadField("createdAt", data_type="datetime"),
    ]
    assert select_fields(described, [], required=["id"]) == [
        ("email", "email"),
        ("id", "integer"),
        ("createdAt", "datetime"),
    ]
    assert select_fields(described, ["email"], required=["id", "createdAt"]) == [
        ("id", "integer"),
        ("createdAt", "datetime"),
        ("email", "email"),
    ]
    with pytest.raises(ExportFailed, match="Unknown Marketo lead fields: nope") as info:
        select_fields(described, ["email", "nope"], required=["id"])
    assert info.value.retryable is False


def test_old_staged_files_of_finished_exports_are_cleaned_at_the_start(engine: Engine):
    import os

    old = engine.export(run_id="run-0")
    engine.ledger.update(old.export_id, status="loaded")
    os.utime(old.path, (0, 0))
    mine = engine.staging.root / "notes.txt"  # not an export file: never touched
    mine.write_text("x")
    os.utime(mine, (0, 0))
    engine.export(lead_spec(generation="next"))
    assert not old.path.exists()
    assert mine.exists()
    assert "staging_cleaned" in engine.notices()


def test_a_failing_preflight_stops_the_export_before_any_marketo_call(engine: Engine):
    def warehouse_not_writable() -> None:
        raise ExportFailed("The DuckDB file is held by another program.", retryable=False)

    with pytest.raises(ExportFailed, match="held by another program"):
        extract.export(
            lead_spec(),
            engine.marketo,
            engine.ledger,
            engine.staging,
            engine.capabilities,
            run_id="run-1",
            preflight=warehouse_not_writable,
        )
    assert engine.marketo.calls == []
    assert engine.ledger.current_claim(LEADS, "2026-02-01") is None


def test_an_export_id_the_ledger_already_holds_fails_without_retry_or_wait(engine: Engine):
    """A ledger of another Marketo instance: the new job's id is already recorded."""
    engine.ledger.record_created(
        export_id="00000000-0000-4000-8000-000000000001",
        asset="marketo/lead_changes",
        partition_key="2026-01-01",
        request_hash="x",
        request={},
    )
    with pytest.raises(ExportFailed, match="already holds") as info:
        engine.export()
    assert info.value.retryable is False
    assert "wait" not in engine.marketo.methods()
    assert engine.ledger.current_claim(LEADS, "2026-02-01") is None
