"""The warehouse is checked before Marketo spends quota, and a held DuckDB file fails fast.

Real Dagster runs against the simulator and a real DuckDB file, through the project's own
`WarehouseResource`. Each bad warehouse (the file
held by another process, DUCKDB_PATH in a missing folder or under a file, a folder that takes
no new file) fails the export step within seconds, without retries, naming the cause and the
fix, before any export job is created; the rows already loaded are unchanged. A lock taken
after the export fails the load step the same way, and the staged export is loaded once the
holder is gone, without a new export.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from marketo_assets.defs.resources import ExportOptions, WarehouseResource
from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import SIM_ARGS, failure_text, marketo_resource, read_only

CREATE = "/bulk/v1/leads/export/create.json"
KEY = "2025-01-01"
EXPORT_STEP, LOAD_STEP = "marketo__lead_export_files", "marketo__leads"
FAIL_WITHIN = 10.0  # seconds from the step's start to its failure
HOLD = (
    "import duckdb, sys\n"
    "conn = duckdb.connect(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "sys.stdin.read()\n"  # until the test closes its stdin (or ends: the pipe closes)
)


@pytest.fixture(scope="module")
def sim():
    with run_simulator(**SIM_ARGS) as handle:
        yield handle


@pytest.fixture
def loaded(sim, tmp_path) -> Path:
    """A data dir whose DuckDB file holds partition KEY."""
    assert materialize(sim, tmp_path, [lead_export_files, leads]).success
    return tmp_path


def materialize(sim, root: Path, assets, database: Path | None = None):
    """The run's result, with `.logs`: its event log entries (timestamps)."""
    database = database or root / "marketo.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        assets,
        partition_key=KEY,
        resources={
            "marketo": marketo_resource(sim, root),
            "export_options": ExportOptions(),
            "warehouse": WarehouseResource(database=str(database)),  # as in definitions.py
        },
        instance=instance,
        raise_on_error=False,
    )
    result.logs = instance.all_logs(result.run_id)
    return result


@pytest.fixture
def hold() -> Iterator:
    """`hold(path)`: another process opens the DuckDB file (as the DuckDB CLI or a BI tool
    would) and keeps it open until the test ends."""
    started: list[subprocess.Popen] = []

    def start(path: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout.readline().strip() == "holding"
        return proc

    yield start
    for proc in started:
        release(proc)


def release(proc: subprocess.Popen) -> None:
    """Let the holder go: it exits when its stdin closes."""
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rows(root: Path) -> list:
    with duckdb.connect(str(root / "marketo.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT * FROM marketo.marketo.leads ORDER BY id").fetchall()


def creates(sim) -> int:
    return sim.state()["requests"]["by_path"].get(CREATE, 0)


def marketo_calls(sim) -> int:
    return sim.state()["requests"]["total"]


def step_events(result, step: str) -> list:
    """(event type, timestamp) of one step's events, in order."""
    return [
        (e.dagster_event.event_type_value, e.timestamp)
        for e in result.logs
        if e.dagster_event is not None and e.dagster_event.step_key == step
    ]


def assert_failed_fast_once(result, step: str) -> None:
    """The step ran once (no retry) and failed within FAIL_WITHIN seconds of its start."""
    events = step_events(result, step)
    kinds = [kind for kind, _ in events]
    assert kinds.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in kinds, kinds
    start = next(t for kind, t in events if kind == "STEP_START")
    failed = next(t for kind, t in events if kind == "STEP_FAILURE")
    assert failed - start < FAIL_WITHIN, f"{step} took {failed - start:.1f} s to fail"


def test_a_held_file_fails_the_export_before_any_job(sim, loaded, hold):
    before, jobs = rows(loaded), creates(sim)
    holder = hold(loaded / "marketo.duckdb")

    result = materialize(sim, loaded, [lead_export_files, leads])

    assert not result.success
    assert_failed_fast_once(result, EXPORT_STEP)
    text = failure_text(result)
    for phrase in (f"PID {holder.pid}", "python", "DUCKDB_PATH", "Close that program", "CLI"):
        assert phrase in text, f"{phrase!r} not in:\n{text[-2000:]}"
    assert "No Marketo export job was created" in text
    assert creates(sim) == jobs, "an export job was created"
    release(holder)
    assert rows(loaded) == before


def test_a_lock_taken_after_the_export_fails_the_load_fast_and_keeps_the_export(sim, loaded, hold):
    before = rows(loaded)
    assert materialize(sim, loaded, [lead_export_files]).success
    jobs = creates(sim)
    holder = hold(loaded / "marketo.duckdb")

    result = materialize(sim, loaded, [leads])

    assert not result.success
    assert_failed_fast_once(result, LOAD_STEP)
    text = failure_text(result)
    for phrase in (f"PID {holder.pid}", "python", "Close that program", "re-run the load step"):
        assert phrase in text, f"{phrase!r} not in:\n{text[-2000:]}"
    release(holder)
    assert rows(loaded) == before
    # Once the holder is gone, the staged export loads: no new Marketo job.
    assert materialize(sim, loaded, [leads]).success
    assert creates(sim) == jobs


def test_duckdb_path_in_a_missing_folder_fails_before_any_marketo_call(sim, tmp_path):
    missing = tmp_path / "no-such-folder"
    calls = marketo_calls(sim)

    result = materialize(sim, tmp_path, [lead_export_files, leads], missing / "marketo.duckdb")

    assert not result.success
    assert_failed_fast_once(result, EXPORT_STEP)
    text = failure_text(result)
    for phrase in ("DUCKDB_PATH", str(missing), "does not exist", "No Marketo export job"):
        assert phrase in text, f"{phrase!r} not in:\n{text[-2000:]}"
    assert marketo_calls(sim) == calls, "Marketo was called"
    assert not missing.exists()  # a user's typo is not created


def test_duckdb_path_under_a_regular_file_fails_before_any_marketo_call(sim, tmp_path):
    in_the_way = tmp_path / "not-a-folder"
    in_the_way.write_text("a file, not a folder")
    calls = marketo_calls(sim)

    result = materialize(
        sim, tmp_path, [lead_export_files, leads], in_the_way / "sub" / "marketo.duckdb"
    )

    assert not result.success
    assert_failed_fast_once(result, EXPORT_STEP)
    text = failure_text(result)
    for phrase in ("DUCKDB_PATH", f"{in_the_way} is a file, not a folder"):
        assert phrase in text, f"{phrase!r} not in:\n{text[-2000:]}"
    assert marketo_calls(sim) == calls, "Marketo was called"
    assert in_the_way.read_text() == "a file, not a folder"


@pytest.fixture
def read_only_folder(loaded) -> Iterator[Path]:
    """`loaded`'s folder made read-only: the DuckDB file in it stays writable, but no new
    file (DuckDB's .wal) can be created. Root ignores permission bits: the folder is made
    immutable (chattr +i) instead, or the test is skipped where that is not possible."""
    with read_only(loaded):
        yield loaded


def test_a_read_only_folder_fails_before_any_job(sim, read_only_folder):
    root = read_only_folder
    before, jobs = rows(root), creates(sim)

    # The ledger and staging folder elsewhere: a read-only folder of theirs fails first,
    # naming their own variables (dagster/test_local_state_runs.py).
    state = root.parent / "state"
    state.mkdir()
    result = materialize(sim, state, [lead_export_files, leads], database=root / "marketo.duckdb")

    assert not result.success
    assert_failed_fast_once(result, EXPORT_STEP)
    text = failure_text(result)
    for phrase in ("DUCKDB_PATH", f"cannot create files in {root}", "writable"):
        assert phrase in text, f"{phrase!r} not in:\n{text[-2000:]}"
    assert creates(sim) == jobs, "an export job was created"
    assert rows(root) == before
