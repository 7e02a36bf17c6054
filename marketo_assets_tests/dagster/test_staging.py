"""Staged export files hold personal data: private to the user (0600 in 0700 folders), kept
while their load has not committed (a failed load is retried from them without a new export),
deleted once the load commits, and cleaned by age at the start of every export and load step
without ever touching a file whose export is not finished."""

from __future__ import annotations

import os
import stat
import time
import uuid
from pathlib import Path

import dagster as dg
import duckdb

from marketo_assets.marketo.ledger import ExportLedger
from marketo_assets_tests.assets import lead_export_files, leads

from .conftest import resources_for
from .test_bad_input_runs import failure_text
from .test_lead_partitions import _window

KEY = "2025-03-01"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _old_file(path: Path, hours: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,email\n1,someone@example.com\n")
    then = time.time() - hours * 3600
    os.utime(path, (then, then))
    return path


def test_staged_files_private_kept_until_loaded_and_cleaned_by_age(lead_sim, tmp_path):
    resources = resources_for(lead_sim, tmp_path, staging_max_age_hours=24)
    root = tmp_path / "exports"
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    finished, pending = str(uuid.uuid4()), str(uuid.uuid4())
    old_exports = [(finished, "loaded", "2025-01-01"), (pending, "downloaded", "2025-06-01")]
    for export_id, status, partition in old_exports:
        ledger.record_created(
            export_id=export_id,
            asset="marketo/leads",
            partition_key=partition,
            request_hash="old",
            request={},
            status=status,
        )
    old_finished = _old_file(root / "marketo_leads" / "2025-01-01" / f"{finished}.csv", 48)
    old_pending = _old_file(root / "marketo_leads" / "2025-06-01" / f"{pending}.csv", 48)
    old_orphan = _old_file(root / "marketo_leads" / "2025-02-01" / f"{uuid.uuid4()}.csv.part", 48)
    young_orphan = _old_file(root / "marketo_leads" / "2025-02-01" / f"{uuid.uuid4()}.csv", 1)
    instance = dg.DagsterInstance.ephemeral()

    # The export step alone: it cleans old files first, then stages its own file privately.
    assert dg.materialize(
        [lead_export_files], partition_key=KEY, resources=resources, instance=instance
    ).success
    assert not old_finished.exists() and not old_orphan.exists()
    assert old_pending.exists()  # its export is downloaded but not loaded: never deleted
    assert young_orphan.exists()  # younger than staging_max_age_hours
    entry = ledger.latest_downloaded("marketo/leads", KEY)
    staged = Path(entry.staged_file)
    assert staged.exists() and _mode(staged) == 0o600
    for folder in (root, staged.parent.parent, staged.parent):
        assert _mode(folder) == 0o700, folder

    # A load that fails (the table has `id` as text): no retry storm, table untouched, file kept.
    database = tmp_path / "marketo.duckdb"
    with duckdb.connect(str(database)) as conn:
        conn.execute("CREATE SCHEMA marketo")
        conn.execute("CREATE TABLE marketo.marketo.leads (id VARCHAR, note VARCHAR)")
        conn.execute("INSERT INTO marketo.marketo.leads VALUES ('x', 'kept')")
    failed = dg.materialize(
        [leads], partition_key=KEY, resources=resources, instance=instance, raise_on_error=False
    )
    assert not failed.success
    text = failure_text(failed)
    assert "column 'id'" in text and "staged export" in text and "is kept" in text
    assert "STEP_UP_FOR_RETRY" not in {e.event_type_value for e in failed.all_events}
    assert staged.exists() and _mode(staged) == 0o600
    assert ledger.get(entry.export_id).status == "downloaded"
    # (through the resource: the same DuckDB settings as the run's connection in this process)
    with resources["warehouse"].get_connection() as conn:
        assert conn.execute("SELECT * FROM marketo.marketo.leads").fetchall() == [("x", "kept")]

    # Fixed: the load step alone loads the kept file; no second export job; file deleted.
    with resources["warehouse"].get_connection() as conn:
        conn.execute("DROP TABLE marketo.marketo.leads")
    loaded = dg.materialize([leads], partition_key=KEY, resources=resources, instance=instance)
    assert loaded.success
    assert not staged.exists()
    assert ledger.get(entry.export_id).status == "loaded"
    assert [j["exportId"] for j in lead_sim.state()["jobs"]] == [entry.export_id]
    with resources["warehouse"].get_connection() as conn:
        (rows,) = conn.execute("SELECT count(*) FROM marketo.marketo.leads").fetchone()
    assert rows == lead_sim.truth(_window(KEY))["count"]
    assert old_pending.exists()  # still not final: still kept
