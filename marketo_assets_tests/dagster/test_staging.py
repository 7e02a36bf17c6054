"""Staged export files hold personal data: private to the user (0600 in 0700 folders), kept
while their load has not committed (a failed load is retried from them without a new export),
deleted once the load commits, and cleaned by age at the start of every export and load step
without ever touching a file whose export is not finished. The project works only in its own
folder inside MARKETO_STAGING_DIR: the user's files next to it are never touched. The DuckDB
file and the ledger are private too."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import time
import uuid
from contextlib import closing
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from marketo_assets.defs.resources import ExportOptions
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.extract.staging import MARKER, OWNED, staging_root
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import (
    created_at_window,
    failure_text,
    marketo_resource,
    resources_for,
)

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
    root = staging_root(tmp_path / "exports")  # the project's own folder in MARKETO_STAGING_DIR
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    finished, pending, killed = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    old_exports = [
        (finished, "loaded", "2025-01-01"),
        (pending, "downloaded", "2025-06-01"),
        (killed, "cancelled", "2025-02-01"),
    ]
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
    old_part = _old_file(root / "marketo_leads" / "2025-02-01" / f"{killed}.csv.part", 48)
    young_part = _old_file(root / "marketo_leads" / "2025-05-01" / f"{killed}.csv.part", 1)
    unknown = _old_file(root / "marketo_leads" / "2025-02-01" / f"{uuid.uuid4()}.csv", 48)
    instance = dg.DagsterInstance.ephemeral()

    # The export step alone: it cleans old files first, then stages its own file privately.
    assert dg.materialize(
        [lead_export_files], partition_key=KEY, resources=resources, instance=instance
    ).success
    assert not old_finished.exists() and not old_part.exists()
    assert old_pending.exists()  # its export is downloaded but not loaded: never deleted
    assert young_part.exists()  # younger than staging_max_age_hours
    assert unknown.exists()  # no export of the ledger: not provably ours
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
    assert rows == lead_sim.truth(created_at_window(KEY))["count"]
    assert old_pending.exists()  # still not final: still kept


def _tree(root: Path) -> dict[str, tuple]:
    """Everything under `root` except the folder the project owns: mode of every folder, and
    mode, size, mtime and content of every file."""
    found: dict[str, tuple] = {".": ("dir", _mode(root))}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == OWNED:
            continue
        if path.is_dir():
            found[str(rel)] = ("dir", _mode(path))
        else:
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(rel)] = ("file", _mode(path), info.st_size, info.st_mtime_ns, digest)
    return found


def _conflicting_table(resources: dict) -> None:
    """A table whose `id` is text: the next lead load fails (and keeps its staged file)."""
    with resources["warehouse"].get_connection() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marketo.marketo")
        conn.execute("CREATE TABLE marketo.marketo.leads (id VARCHAR, note VARCHAR)")


def test_staging_in_a_shared_folder_touches_only_its_own_files(lead_sim, tmp_path):
    """MARKETO_STAGING_DIR pointed at a folder the user keeps other files in (a shared data/,
    ~/Downloads): exports, loads, a failed load and the clean-up leave every file and folder
    of the user as it was, whatever its age or name, and the folder keeps its mode."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    finished = str(uuid.uuid4())  # an export of ours that is loaded: its files may go
    ledger.record_created(
        export_id=finished,
        asset="marketo/leads",
        partition_key="2025-01-01",
        request_hash="old",
        request={},
        status="loaded",
    )
    ages = {"old": 1000, "new": 0}
    for age, hours in ages.items():
        _old_file(shared / f"report-{age}.csv", hours)
        _old_file(shared / f".hidden-{age}.nonul", hours)
        _old_file(shared / f"{finished}-{age}.csv", hours)  # holds one of our export ids
        _old_file(shared / "marketo_leads" / "2025-03-01" / f"{uuid.uuid4()}.csv.part", hours)
        _old_file(shared / "projects" / "deep" / f"{finished}.csv", hours)
    (shared / "projects").chmod(0o755)
    (shared / "projects" / "deep").chmod(0o750)
    before = _tree(shared)

    resources = resources_for(lead_sim, tmp_path, staging_dir=str(shared), staging_max_age_hours=1)
    instance = dg.DagsterInstance.ephemeral()
    # Our own old file inside the project's folder is cleaned: the clean-up does run.
    ours = _old_file(staging_root(shared) / "marketo_leads" / "2025-01-01" / f"{finished}.csv", 48)
    # Export and load one partition.
    assert dg.materialize(
        [lead_export_files, leads], partition_key=KEY, resources=resources, instance=instance
    ).success
    assert _tree(shared) == before
    assert not ours.exists()
    # Export another, fail its load (the table has `id` as text), then load it once fixed.
    other = "2025-04-01"
    assert dg.materialize(
        [lead_export_files], partition_key=other, resources=resources, instance=instance
    ).success
    staged = Path(ledger.latest_downloaded("marketo/leads", other).staged_file)
    assert staged.is_relative_to(shared / OWNED) and _mode(staged) == 0o600
    assert (shared / OWNED / MARKER).is_file()
    for folder in (shared / OWNED, staged.parent.parent, staged.parent):
        assert _mode(folder) == 0o700, folder
    with resources["warehouse"].get_connection() as conn:
        conn.execute("ALTER TABLE marketo.marketo.leads RENAME TO leads_kept")
    _conflicting_table(resources)
    failed = dg.materialize(
        [leads], partition_key=other, resources=resources, instance=instance, raise_on_error=False
    )
    assert not failed.success and staged.exists()
    assert _tree(shared) == before
    with resources["warehouse"].get_connection() as conn:
        conn.execute("DROP TABLE marketo.marketo.leads")
    assert dg.materialize(
        [leads], partition_key=other, resources=resources, instance=instance
    ).success
    assert not staged.exists()

    assert _tree(shared) == before
    # The failed load was retried from the kept file: one export job per partition.
    jobs = sorted(j["exportId"] for j in lead_sim.state()["jobs"])
    assert jobs == sorted(e.export_id for e in ledger.entries() if e.export_id != finished)
    assert len(jobs) == 2


def _sidecar_modes(*paths: Path) -> dict[str, int]:
    return {p.name: _mode(p) for p in paths if p.exists()}


def test_files_holding_lead_data_are_private_in_any_folder(lead_sim, tmp_path):
    """The DuckDB file, the ledger and their -wal/-shm/.wal files are 0600 whatever the umask;
    a data folder the project creates is 0700; a folder the user made keeps its mode."""
    old_umask = os.umask(0o022)
    try:
        made = tmp_path / "data"  # does not exist: the project creates it
        mine = tmp_path / "mine"  # the user's own folder
        mine.mkdir(mode=0o755)
        instance = dg.DagsterInstance.ephemeral()
        for folder in (made, mine):
            resources = {
                "marketo": marketo_resource(
                    lead_sim,
                    tmp_path,
                    staging_dir=str(folder / "exports"),
                    ledger_path=str(folder / "ledger.sqlite"),
                ),
                "export_options": ExportOptions(),
                "warehouse": DuckDBResource(database=str(folder / "marketo.duckdb")),
            }
            assert dg.materialize(
                [lead_export_files, leads],
                partition_key=KEY,
                resources=resources,
                instance=instance,
            ).success
            for name in ("marketo.duckdb", "ledger.sqlite"):
                assert _mode(folder / name) == 0o600, folder / name
            assert _mode(folder / "exports") == 0o700  # created by the project
            # The write-ahead logs, kept after the run by a reader that stays connected (the
            # DuckDB connection is shared in this process, so the run writes the .wal).
            database, ledger = folder / "marketo.duckdb", folder / "ledger.sqlite"
            with (
                duckdb.connect(str(database), config={"custom_user_agent": "dagster"}) as held,
                closing(sqlite3.connect(ledger)) as reader,
            ):
                reader.execute("SELECT count(*) FROM exports").fetchone()
                assert dg.materialize(
                    [lead_export_files, leads],
                    partition_key="2025-04-01",
                    resources=resources,
                    instance=instance,
                ).success
                held.execute("SELECT 1").fetchone()
                wal = Path(f"{database}.wal")
                assert wal.exists()
                modes = _sidecar_modes(wal, Path(f"{ledger}-wal"), Path(f"{ledger}-shm"))
                assert modes == dict.fromkeys(
                    [wal.name, f"{ledger.name}-wal", f"{ledger.name}-shm"], 0o600
                ), modes
        assert _mode(made) == 0o700
        assert _mode(mine) == 0o755
    finally:
        os.umask(old_umask)
