"""Ledger claims: one run per partition at a time, and claims of dead runs are taken over."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from marketo_assets.extract.ledger import ExportIdConflictError, ExportLedger

A, P = "marketo/leads", "2025-01-01"


def _claim_in_a_process_that_exits(path, run_id: str) -> int:
    code = (
        "import os, sys; from marketo_assets.extract.ledger import ExportLedger; "
        f"ExportLedger(sys.argv[1]).claim({A!r}, {P!r}, {run_id!r}); print(os.getpid())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_a_live_claim_of_another_run_is_returned_and_left_alone(tmp_path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    assert ledger.claim(A, P, "run-a") is None
    assert ledger.claim(A, P, "run-a") is None  # re-entrant: the load step of the same run
    other = ledger.claim(A, P, "run-b")
    assert other is not None and other.run_id == "run-a"
    assert "run run-a" in other.describe()
    assert ledger.current_claim(A, P).run_id == "run-a"
    assert ledger.claim(A, "2025-02-01", "run-b") is None  # other partitions are free


def test_the_claim_of_a_killed_process_is_taken_over(tmp_path):
    path = tmp_path / "ledger.sqlite"
    dead_pid = _claim_in_a_process_that_exits(path, "run-a")
    ledger = ExportLedger(path)
    assert ledger.current_claim(A, P).pid == dead_pid
    assert ledger.claim(A, P, "run-b") is None
    assert ledger.current_claim(A, P).run_id == "run-b"


def test_a_claim_handed_over_between_steps_lasts_while_its_run_is_active(tmp_path):
    path = tmp_path / "ledger.sqlite"
    dead_pid = _claim_in_a_process_that_exits(path, "run-a")  # the export step's process
    ledger = ExportLedger(path)
    ledger.hand_over(A, P, "run-a")
    assert ledger.current_claim(A, P).pid == dead_pid
    # The run still waits for its load step (e.g. for the duckdb pool): keep it, until the lease.
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "active").run_id == "run-a"
    time.sleep(0.3)
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "active", lease_seconds=0.2) is None


def test_a_handed_over_claim_of_a_run_unknown_here_from_a_dead_process_is_stale(tmp_path):
    path = tmp_path / "ledger.sqlite"
    _claim_in_a_process_that_exits(path, "run-a")
    ledger = ExportLedger(path)
    ledger.hand_over(A, P, "run-a")
    assert ledger.claim(A, P, "run-b", run_status=lambda r: None) is None


def test_a_claim_of_a_finished_run_is_taken_over(tmp_path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    ledger.claim(A, P, "run-a")
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "active") is not None
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "finished") is None


def test_release_only_drops_the_own_claim(tmp_path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    ledger.claim(A, P, "run-a")
    ledger.release(A, P, "run-b")
    assert ledger.current_claim(A, P).run_id == "run-a"
    ledger.release(A, P, "run-a")
    assert ledger.current_claim(A, P) is None


def test_a_known_export_id_for_another_request_is_a_clear_error(tmp_path):
    """A ledger written against another Marketo (or a simulator that repeated ids) must not
    fail with a raw sqlite3.IntegrityError inside the export step."""
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    kw = {"request_hash": "h1", "request": {"fields": ["id"]}}
    ledger.record_created(export_id="e-1", asset=A, partition_key=P, **kw)
    with pytest.raises(ExportIdConflictError) as info:
        ledger.record_created(
            export_id="e-1", asset=A, partition_key="2025-02-01", request_hash="h2", request={}
        )
    message = str(info.value)
    assert "e-1" in message and f"{A} {P}" in message and "MARKETO_LEDGER_PATH" in message
    assert str(tmp_path / "ledger.sqlite") in message
    entry = ledger.get("e-1")
    assert (entry.partition_key, entry.request_hash) == (P, "h1")  # the old row is untouched
