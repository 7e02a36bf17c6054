"""The load step of the export engine (extract.load): staged file(s) into a DuckDB table, the
ledger marked loaded, the staged files deleted, the claim released; failures keep the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketo_assets.extract import EventLines, ExportFailed, Notice
from marketo_assets_tests.support.extract_fakes import KEY, LEADS, Engine, Script, long_window_spec


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def test_the_staged_export_is_loaded_marked_loaded_and_deleted(engine: Engine):
    exported = engine.export()
    outcome = engine.load()
    assert outcome.loaded.result.rows == outcome.records == 3
    assert outcome.export_ids == [exported.export_id]
    assert engine.entries() == [(exported.export_id, "loaded")]
    entry = engine.ledger.get(exported.export_id)
    assert entry is not None and entry.loaded_at == engine.clock.now().isoformat()
    assert not exported.path.exists()
    assert "staged_deleted" in engine.notices()
    # Said in the load's metadata, not as a log line (each line is an event Dagster stores).
    assert outcome.metadata()["staged_files_deleted"] == 1
    assert EventLines()(Notice("staged_deleted", "Deleted the staged export file")) is None
    assert engine.ledger.current_claim(LEADS, KEY) is None
    with engine.session() as wh:
        assert wh.partition_keys("marketo.leads") == {KEY}


def test_inspect_runs_inside_the_session_and_its_answer_is_returned(engine: Engine):
    engine.export()
    outcome = engine.load(
        inspect=lambda wh, loaded: (
            loaded.stats["rows"],
            wh.ids_in_other_partitions("marketo.leads", KEY).ids,
        )
    )
    assert outcome.inspected == (3, 0)
    assert outcome.loaded.stats["duplicate_ids"] == 0


def test_loading_without_a_staged_export_fails_saying_what_to_run(engine: Engine):
    with pytest.raises(ExportFailed, match="Materialize the export step") as info:
        engine.load()
    assert info.value.retryable is False
    assert engine.ledger.current_claim(LEADS, KEY) is None


def test_a_window_of_several_jobs_is_loaded_in_one_go(engine: Engine):
    exported = engine.export(long_window_spec())
    outcome = engine.load()
    assert outcome.export_ids == exported.export_ids and len(outcome.export_ids) == 2
    assert outcome.loaded.result.rows == outcome.records == 6
    assert [status for _, status in engine.entries()] == ["loaded", "loaded"]


def test_a_window_with_a_part_missing_is_not_loaded(engine: Engine):
    engine.marketo.scripts = [Script(), Script(bad_checksum=True)]
    with pytest.raises(ExportFailed):
        engine.export(long_window_spec())
    with pytest.raises(ExportFailed, match=r"part\(s\) 2 are not downloaded") as info:
        engine.load()
    assert info.value.retryable is False
    assert [status for _, status in engine.entries()] == ["downloaded", "failed"]


def test_a_load_by_another_run_holding_the_claim_is_refused(engine: Engine):
    engine.export(run_id="exporter")
    with pytest.raises(ExportFailed, match="run exporter"):
        engine.load(run_id="intruder", run_status=lambda run_id: "active")
    assert [status for _, status in engine.entries()] == ["downloaded"]


def test_a_file_that_does_not_fit_the_table_keeps_the_staged_file(engine: Engine):
    exported = engine.export()
    exported.path.write_bytes(b"id,email\nnot-a-number,x@example.com\n")
    entry = engine.ledger.get(exported.export_id)
    assert entry is not None
    engine.ledger.update(exported.export_id, bytes=exported.path.stat().st_size)
    with pytest.raises(ExportFailed, match="The table is unchanged") as info:
        engine.load()
    assert info.value.retryable is False
    assert exported.path.exists()
    assert [status for _, status in engine.entries()] == ["downloaded"]
    assert engine.ledger.current_claim(LEADS, KEY) is None
