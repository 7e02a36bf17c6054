"""Row 0: start-up of a run process, from process start to its first Marketo call.

A run of `marketo/lead_export_files` for one partition is created in a fresh DAGSTER_HOME (the
project's dagster.yaml), then started the way Dagster starts a run process:
`python -m dagster api execute_run ARGS` (the code server's spawned run process imports the
same CLI module, the definitions, the instance, and runs the job). MARKETO_BASE_URL points at a
local HTTP listener that records when the first request arrives; the run process is then
stopped. Median of 5, against the median of 5 `python -c "import dagster"` on the same machine.

Both run as on a normal install: with Python's bytecode cache (`__pycache__`), which one
untimed run of each writes first. PYTHONDONTWRITEBYTECODE (set in some CI and sandbox
shells) is removed for them: without the cache every process compiles dagster from source,
~0.7 s more for both.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

from bench.common import PARTITION, ROOT, Row, run_worker, say
from bench.transfer import dagster_home

GOAL_SECONDS = 1.5
REPEATS = 5


class _FirstCall:
    """A listener that notes the arrival time of its first request and answers 503."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.path = ""
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                if outer.first is None:
                    outer.first, outer.path = time.time(), self.path.split("?")[0]
                    outer.arrived.set()
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _any

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _FirstCall:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def _import_dagster() -> tuple[float, float]:
    """Wall and CPU seconds of `python -c "import dagster"`."""
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import dagster"], cwd=ROOT, env=_environ())
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"python -c 'import dagster' exited {proc.returncode}")
    return time.time() - t0, usage.ru_utime + usage.ru_stime


def _one(work: Path, i: int) -> tuple[float, float, str]:
    """Wall seconds from start to the first Marketo call, CPU seconds the process had used
    by then, and the path it called."""
    run_dir = work / f"startup-{i}"
    with _FirstCall() as listener:
        env = {
            "DAGSTER_HOME": str(dagster_home(run_dir / "dagster_home")),
            "MARKETO_BASE_URL": listener.url,
            "MARKETO_CLIENT_ID": "bench",
            "MARKETO_CLIENT_SECRET": "bench",
            "DUCKDB_PATH": str(run_dir / "marketo.duckdb"),
            "MARKETO_STAGING_DIR": str(run_dir / "exports"),
            "MARKETO_LEDGER_PATH": str(run_dir / "ledger.sqlite"),
            "MARKETO_PARTITION_START": "2025-01-01",
        }
        created = run_worker(
            ["create_run", json.dumps({"partition": PARTITION})],
            env=env,
            log=work / "startup.log",
        ).data
        full_env = _environ(env)
        with open(work / "startup.log", "ab") as log:
            started = time.time()
            proc = subprocess.Popen(
                [sys.executable, "-m", "dagster", "api", "execute_run", created["args"]],
                cwd=ROOT,
                env=full_env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
            try:
                if not listener.arrived.wait(120):
                    raise RuntimeError(f"no Marketo call within 120 s (log: {work}/startup.log)")
                times = psutil.Process(proc.pid).cpu_times()
                cpu = times.user + times.system
            finally:
                proc.kill()
                proc.wait()
        assert listener.first is not None
        return listener.first - started, cpu, listener.path


def measure(profile: object, work: Path) -> Row:
    say("row 0: run process start-up to its first Marketo call …")
    ours: list[float] = []
    reference: list[float] = []
    ours_cpu: list[float] = []
    reference_cpu: list[float] = []
    path = ""
    _import_dagster(), _one(work, REPEATS)  # untimed: writes the bytecode cache
    for i in range(REPEATS):
        wall, cpu = _import_dagster()
        reference.append(wall)
        reference_cpu.append(cpu)
        wall, cpu, path = _one(work, i)
        ours.append(wall)
        ours_cpu.append(cpu)
    say(
        f"  first call: {_s(ours)} (CPU {_s(ours_cpu)}); import dagster: {_s(reference)} "
        f"(CPU {_s(reference_cpu)})"
    )
    median, ref = statistics.median(ours), statistics.median(reference)
    cpu, ref_cpu = statistics.median(ours_cpu), statistics.median(reference_cpu)
    return Row(
        "0",
        f"Start-up: run process start to its first Marketo call (median of {REPEATS}) vs "
        '`python -c "import dagster"`',
        median,
        ref,
        "s",
        f"≤ {GOAL_SECONDS} s",
        median <= GOAL_SECONDS,
        details={
            "runs": [round(v, 3) for v in ours],
            "import_dagster": [round(v, 3) for v in reference],
            "cpu": [round(v, 3) for v in ours_cpu],
            "import_dagster_cpu": [round(v, 3) for v in reference_cpu],
            "note": (
                f"`python -m dagster api execute_run` of one lead export partition, first "
                f"call {path}: {median - ref:.2f} s more than importing dagster; CPU seconds "
                f"(medians) {cpu:.2f} vs {ref_cpu:.2f} (wall times stretch on a busy machine, "
                "CPU times much less)"
            ),
        },
    )


def _s(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s"
