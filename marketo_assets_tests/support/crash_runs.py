"""Helpers of the tests that run lead partitions in separate processes: run processes forked
by `crash_worker --fork-server` (killable like a run worker), what DuckDB and the simulator
hold afterwards, and when steps ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from marketo_assets.settings import PROJECT_ROOT

from .dagster import created_at_window

# Simulator settings for a fast cycle (after a test held it in some phase).
FAST = {"latency": 0.0, "max_processing": 2, "rows_per_second": 0, "download_bytes_per_second": 0}


def wait_until(predicate, timeout: float, what: str, proc: RunProcess | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.ended():
            raise AssertionError(f"the run process ended before {what}: {proc.output()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class RunProcesses:
    """Starts run processes (forked by `crash_worker --fork-server`, which imported everything
    once) and kills them."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.logs = logs
        self.count = 0
        self.server = subprocess.Popen(
            [sys.executable, "-m", "marketo_assets_tests.dagster.crash_worker", "--fork-server"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, command: dict) -> int:
        self.server.stdin.write(json.dumps(command) + "\n")
        self.server.stdin.flush()
        return int(self.server.stdout.readline())

    def start(self, partitions: list[str], pause_load: str = "") -> RunProcess:
        self.count += 1
        log = self.logs / f"run-{self.count}.log"
        command = {"partitions": partitions, "pause_load": pause_load, "log": str(log)}
        return RunProcess(self._ask(command), log, self)

    def reap(self, pid: int) -> None:
        self._ask({"wait": pid})

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=60)


class RunProcess:
    def __init__(self, pid: int, log: Path, server: RunProcesses):
        self.pid, self.log, self.server = pid, log, server
        self.rc_file = Path(str(log) + ".rc")

    def ended(self) -> bool:
        return self.rc_file.exists()

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self) -> None:
        # The main thread turns zombie before DuckDB's threads are gone (and the file's lock
        # with them): wait for the parent to reap the whole process.
        os.kill(self.pid, signal.SIGKILL)
        self.server.reap(self.pid)

    def wait(self, timeout: float) -> int:
        wait_until(self.ended, timeout, f"run process {self.pid} to end")
        return int(self.rc_file.read_text())


def partition_rows(tmp_path) -> dict[str, int]:
    path = tmp_path / "marketo.duckdb"
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as conn:
        if not conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'leads'"
        ).fetchone()[0]:
            return {}
        return dict(
            conn.execute(
                "SELECT _partition_key, count(*) FROM marketo.marketo.leads GROUP BY 1"
            ).fetchall()
        )


def duplicate_ids(tmp_path) -> int:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT count(*) - count(DISTINCT id) FROM marketo.marketo.leads"
        ).fetchone()[0]


def jobs_for(sim, key: str) -> list[dict]:
    window = created_at_window(key)["createdAt"]
    return [
        j
        for j in sim.state()["jobs"]
        if (j.get("filter") or {}).get("createdAt", {}).get("startAt") == window["startAt"]
    ]


def step_intervals(instance, runs) -> dict[str, list[tuple[float, float]]]:
    """(start, end) of every step execution, by step key, from the runs' event logs."""
    out: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        started: dict[str, float] = {}
        for event in instance.all_logs(run.run_id):
            kind, key = event.dagster_event_type, event.step_key
            if kind == dg.DagsterEventType.STEP_START:
                started[key] = event.timestamp
            elif key in started and kind in (
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
                dg.DagsterEventType.STEP_UP_FOR_RETRY,
            ):
                out.setdefault(key, []).append((started.pop(key), event.timestamp))
    return out


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best
