"""Local state that cannot work (a damaged ledger, a ledger path that is a folder, a staging
folder under a regular file or not writable): real Dagster runs against the simulator fail at
once, without retries, naming the path, the variable that sets it and the fix, before any
Marketo export job is created, and leave the user's files as they were."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import dagster as dg
import pytest

from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import (
    CREATE,
    SIM_ARGS,
    failure_text,
    read_only,
    resources_for,
)

KEY = "2025-02-01"
NOT_A_DATABASE = b"SQLite format 2\x00 this is not an export ledger\n" * 64


@pytest.fixture(scope="module")
def sim():
    with run_simulator(**SIM_ARGS) as handle:
        yield handle


def _ledger_is_a_folder(tmp: Path) -> dict:
    (tmp / "ledger").mkdir()
    return {"ledger_path": str(tmp / "ledger")}


def _ledger_is_damaged(tmp: Path) -> dict:
    (tmp / "ledger.sqlite").write_bytes(NOT_A_DATABASE)
    return {"ledger_path": str(tmp / "ledger.sqlite")}


def _ledger_is_another_database(tmp: Path) -> dict:
    with closing(sqlite3.connect(tmp / "app.sqlite")) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
        conn.commit()
    return {"ledger_path": str(tmp / "app.sqlite")}


def _ledger_under_a_file(tmp: Path) -> dict:
    (tmp / "notes.txt").write_text("mine\n")
    return {"ledger_path": str(tmp / "notes.txt" / "ledger.sqlite")}


def _staging_under_a_file(tmp: Path) -> dict:
    (tmp / "notes.txt").write_text("mine\n")
    return {"staging_dir": str(tmp / "notes.txt" / "exports")}


def _staging_is_a_file(tmp: Path) -> dict:
    (tmp / "notes.txt").write_text("mine\n")
    return {"staging_dir": str(tmp / "notes.txt")}


def _staging_folder_of_someone_else(tmp: Path) -> dict:
    """A `marketo_assets` folder the project did not create (no marker) in the staging dir."""
    (tmp / "shared" / "marketo_assets").mkdir(parents=True)
    (tmp / "shared" / "marketo_assets" / "thesis.txt").write_text("mine\n")
    return {"staging_dir": str(tmp / "shared")}


CASES = {
    # id: (set-up returning MarketoResource overrides, path named, expected phrases)
    "ledger_is_a_folder": (
        _ledger_is_a_folder,
        "ledger",
        ["MARKETO_LEDGER_PATH", "is a folder", "export_ledger.sqlite"],
    ),
    "ledger_is_damaged": (
        _ledger_is_damaged,
        "ledger.sqlite",
        ["MARKETO_LEDGER_PATH", "not a readable export ledger", "move it aside"],
    ),
    "ledger_is_another_database": (
        _ledger_is_another_database,
        "app.sqlite",
        ["MARKETO_LEDGER_PATH", "no `exports` table", "was not changed"],
    ),
    "ledger_under_a_file": (
        _ledger_under_a_file,
        "notes.txt",
        ["MARKETO_LEDGER_PATH", "is a file, not a folder"],
    ),
    "staging_under_a_file": (
        _staging_under_a_file,
        "notes.txt",
        ["MARKETO_STAGING_DIR", "is a file, not a folder"],
    ),
    "staging_is_a_file": (
        _staging_is_a_file,
        "notes.txt",
        ["MARKETO_STAGING_DIR", "is a file, not a folder"],
    ),
    "staging_folder_of_someone_else": (
        _staging_folder_of_someone_else,
        "shared/marketo_assets",
        ["MARKETO_STAGING_DIR", "was not created by marketo_assets", "another folder"],
    ),
}


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def _creates(sim) -> int:
    return sim.state()["requests"]["by_path"].get(CREATE, 0)


def _fails_fast(sim, tmp: Path, overrides: dict, phrases: list[str]) -> None:
    creates = _creates(sim)
    started = time.monotonic()
    result = dg.materialize(
        [lead_export_files, leads],
        partition_key=KEY,
        resources=resources_for(sim, tmp, **overrides),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    elapsed = time.monotonic() - started
    assert not result.success
    text = failure_text(result)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in:\n{text[-3000:]}"
    events = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in events and events.count("STEP_START") == 1, events
    assert elapsed < 30, f"took {elapsed:.0f} s"
    assert _creates(sim) == creates, "a Marketo export job was created"


@pytest.mark.parametrize("case", list(CASES))
def test_unusable_local_path_fails_at_once_naming_it(sim, tmp_path, case):
    setup, named, phrases = CASES[case]
    overrides = setup(tmp_path)
    before = _snapshot(tmp_path)
    _fails_fast(sim, tmp_path, overrides, [*phrases, str(tmp_path / named)])
    after = _snapshot(tmp_path)
    # The user's files are as they were (the run may only have added its own files).
    assert {k: v for k, v in after.items() if k in before} == before


@pytest.mark.parametrize("setting", ["staging_dir", "ledger_path"])
def test_read_only_folder_fails_at_once_naming_it(sim, tmp_path, setting):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / ("ledger.sqlite" if setting == "ledger_path" else "exports")
    variable = "MARKETO_LEDGER_PATH" if setting == "ledger_path" else "MARKETO_STAGING_DIR"
    with read_only(folder):
        _fails_fast(sim, tmp_path, {setting: str(path)}, [variable, str(folder), "not writable"])
