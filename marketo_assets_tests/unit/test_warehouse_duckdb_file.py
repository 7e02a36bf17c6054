"""Opening the DuckDB file for writing: who holds it, how long we wait, what is checked first.

Real processes hold a real DuckDB file; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.warehouse import (
    WarehouseLockedError,
    WarehouseUnavailableError,
    check_writable,
    connect_for_write,
)
from marketo_assets.warehouse.duckdb_file import LOCK_WAIT_SECONDS

HOLD = (
    "import duckdb, sys, time\n"
    "conn = duckdb.connect(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 600)\n"
)
# A parent that looks like a Dagster run worker (argv[0] "dagster-worker") starts the holder.
PARENT = "import subprocess, sys\nsubprocess.run([sys.argv[1], '-c', sys.argv[2], sys.argv[3]])\n"


@pytest.fixture
def database(tmp_path) -> Path:
    path = tmp_path / "wh.duckdb"
    connect_for_write(path).close()
    return path


@pytest.fixture
def spawn():
    """Start a process group that prints 'holding' once it holds the file; killed at the end."""
    procs: list[subprocess.Popen] = []

    def start(argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "holding"
        return proc

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_an_outside_holder_fails_within_the_wait_naming_its_pid(database, spawn):
    holder = spawn([sys.executable, "-c", HOLD, str(database)])
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError) as caught:
        check_writable(database)
    waited = time.monotonic() - started
    assert LOCK_WAIT_SECONDS - 1 < waited < LOCK_WAIT_SECONDS + 5
    message = str(caught.value)
    assert f"PID {holder.pid}" in message and "python -c" in message
    assert "DUCKDB_PATH" in message and "Close that program" in message
    assert caught.value.holder.in_dagster() is False


def test_a_brief_holder_is_waited_for(database, spawn):
    spawn([sys.executable, "-c", HOLD, str(database), "1.5"])
    started = time.monotonic()
    connect_for_write(database).close()
    assert time.monotonic() - started < LOCK_WAIT_SECONDS


def test_a_holder_started_by_dagster_is_another_runs_step(database, spawn, tmp_path):
    parent = [
        "bash",
        "-c",
        'exec -a dagster-worker "$0" "$@"',
        sys.executable,
        "-c",
        PARENT,
        sys.executable,
        HOLD,
        str(database),
    ]
    spawn(parent)
    holder = check_writable(database)  # no error: the load waits its turn in the pool
    assert holder is not None and holder.in_dagster() is True


def test_a_holder_with_a_claim_in_the_ledger_is_another_runs_step(database, spawn):
    proc = spawn([sys.executable, "-c", HOLD, str(database)])
    holder = check_writable(database, is_ours=lambda h: h.pid == proc.pid)
    assert holder is not None and holder.pid == proc.pid


def test_the_ledger_names_the_processes_working_on_a_claim(tmp_path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    assert ledger.claim("marketo/leads", "2025-01-01", "run-1") is None
    assert os.getpid() in ledger.working_pids()
    ledger.hand_over("marketo/leads", "2025-01-01", "run-1")
    assert os.getpid() not in ledger.working_pids()  # between steps: no process works


def test_a_missing_folder_is_created_only_when_asked(tmp_path):
    target = tmp_path / "data" / "marketo.duckdb"
    with pytest.raises(WarehouseUnavailableError, match="does not exist"):
        check_writable(target)
    assert not target.parent.exists()
    assert check_writable(target, create_folder=True) is None
    assert target.parent.is_dir() and (target.parent.stat().st_mode & 0o777) == 0o700
    assert list(target.parent.iterdir()) == []  # the check leaves nothing behind


def test_a_file_that_is_not_a_duckdb_database_is_refused(tmp_path):
    other = tmp_path / "notes.duckdb"
    other.write_text("not a database")
    with pytest.raises(WarehouseUnavailableError, match="not a valid DuckDB database file"):
        check_writable(other)
    assert other.read_text() == "not a database"
