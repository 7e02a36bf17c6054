"""A loaded export's staged file (personal data) is gone from its path at once; the file is
freed by a thread the process waits for, and a deletion a killed process left half done is
finished by the next cleaning, whatever its age."""

import threading
import uuid

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.extract.staging import (
    DISCARD_THREAD,
    OWNED,
    clean_staging,
    discard_staged,
)


def _wait_for_discards() -> None:
    for thread in threading.enumerate():
        if thread.name == DISCARD_THREAD:
            thread.join(10)


def test_discard_staged_removes_the_file_at_once_and_frees_it(tmp_path):
    folder = tmp_path / OWNED / "leads"
    folder.mkdir(parents=True)
    staged = folder / f"{uuid.uuid4()}.csv"
    staged.write_bytes(b"id\n1\n" * 1000)
    (folder / f".{staged.name}.k2j_x9.nonul").write_text("id\n1\n")  # a killed load's copy

    assert discard_staged(str(staged)) is True
    assert not staged.exists()
    _wait_for_discards()
    assert list(folder.iterdir()) == []
    assert discard_staged(str(staged)) is True  # already gone: nothing to do, no error
    assert discard_staged(None) is False


def test_clean_staging_finishes_a_deletion_a_killed_process_left(tmp_path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    root = tmp_path / OWNED
    (root / "leads").mkdir(parents=True)
    export_id = str(uuid.uuid4())
    ledger.record_created(
        export_id=export_id,
        asset="marketo/leads",
        partition_key="2025-01-01",
        request_hash="h",
        request={},
        status="downloaded",  # a batch's file: the entry stays active until all are loaded
    )
    leftover = root / "leads" / f".{export_id}.csv.0a1b2c3d.deleted"
    leftover.write_text("id\n1\n")  # written just now: younger than any max age

    result = clean_staging(root, ledger, max_age_seconds=168 * 3600)

    assert result.deleted == [leftover] and result.kept_active == []
    assert not leftover.exists()
