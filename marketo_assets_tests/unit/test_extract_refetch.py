"""No shared disk: a load on another machine than its export downloads the verified file again
by export id (no new Marketo job, no quota) and leaves no copy behind on either machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest

from marketo_assets.extract import ExportFailed, Staging
from marketo_assets.extract.staging import staging_root
from marketo_assets_tests.support.extract_fakes import Engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


@contextmanager
def machine_b(engine: Engine) -> Iterator[Staging]:
    """The same ledger, another machine's staging folder; machine A's disk is out of reach
    meanwhile (moved away). Yields A's staging."""
    machine_a = engine.staging
    disk_a = machine_a.root.parent
    away = disk_a.rename(engine.root / "elsewhere")
    engine.staging = Staging(staging_root(engine.root / "b" / "staging"), max_age_hours=168)
    try:
        yield machine_a
    finally:
        away.rename(disk_a)


def test_a_load_on_another_machine_downloads_the_file_again_by_export_id(engine: Engine):
    exported = engine.export()
    calls_before = len(engine.marketo.calls)
    with machine_b(engine) as machine_a:
        outcome = engine.load(client=lambda: nullcontext(engine.marketo))

    assert outcome.loaded.result.rows == outcome.records == 3
    # One look at the job and one download: no new job, nothing that spends quota.
    assert engine.marketo.calls[calls_before:] == [
        ("usable", exported.export_id),
        ("download", exported.export_id),
    ]
    assert engine.entries() == [(exported.export_id, "loaded")]
    assert {"downloaded_again", "staged_deleted"} <= set(engine.notices())
    assert list(engine.staging.root.rglob("*.csv")) == []  # B's copy deleted after the load
    assert exported.path.exists()  # A's copy: A deletes it when it next cleans its staging
    cleaned = machine_a.clean(engine.ledger)
    assert cleaned.deleted == [exported.path] and not exported.path.exists()


def test_a_file_marketo_no_longer_has_fails_asking_for_a_new_export(engine: Engine):
    exported = engine.export()
    engine.marketo.jobs[exported.export_id].script.file_gone = True
    with machine_b(engine), pytest.raises(ExportFailed, match="export step") as info:
        engine.load(client=lambda: nullcontext(engine.marketo))
    assert not info.value.retryable and "another machine" in info.value.message
    assert engine.entries() == [(exported.export_id, "expired")]  # the next export creates anew
    assert engine.ledger.current_claim("marketo/leads", "2026-02-01") is None


def test_without_a_client_a_file_of_another_machine_is_not_loaded(engine: Engine):
    engine.export()
    with machine_b(engine), pytest.raises(ExportFailed, match="No downloaded export is staged"):
        engine.load()
    assert [status for _, status in engine.entries()] == ["downloaded"]
