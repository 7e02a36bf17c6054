"""`make demo` as a user runs it: interrupted mid-backfill it leaves no process behind, and a
re-run right after a run takes as long as the first.

The demo runs as a subprocess (`python -m marketo_assets.local.demo`, and through `make demo`)
on a temporary DAGSTER_HOME, DuckDB file, ledger and staging folder, with a small simulator
(MARKETO_DEMO_LEADS)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from dagster._core.storage.dagster_run import RunsFilter

from marketo_assets.local.instance import instance_at

ROOT = Path(__file__).resolve().parents[2]
REAL_MARKETO = ("MARKETO_BASE_URL", "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET")


def demo_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in REAL_MARKETO}
    env.update(
        DAGSTER_HOME=str(home),
        DUCKDB_PATH=str(tmp_path / "marketo.duckdb"),
        MARKETO_LEDGER_PATH=str(tmp_path / "ledger.sqlite"),
        MARKETO_STAGING_DIR=str(tmp_path / "exports"),
        MARKETO_DEMO_LEADS="3000",
        PYTHONUNBUFFERED="1",
    )
    return env


class Demo:
    """The demo in a subprocess; its output collected line by line."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r}: {self.output()}")
            time.sleep(0.2)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"demo still running after {timeout} s: {self.output()}") from None

    def output(self) -> str:
        return "\n".join(self.lines[-40:])


def processes_of(home: str, known: set[int]) -> list[psutil.Process]:
    """Live processes of this demo: started with its DAGSTER_HOME, or seen as its children."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.pid in known or proc.environ().get("DAGSTER_HOME") == home:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_gone(home: str, known: set[int]) -> list[psutil.Process]:
    """What is left a few seconds after the demo ended (helpers of the demo process itself,
    like multiprocessing's resource tracker, end with it, not before)."""
    deadline = time.monotonic() + 5
    left = processes_of(home, known)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_of(home, known)
    return left


def _describe(procs: list[psutil.Process]) -> str:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:150]}")
        except psutil.NoSuchProcess:
            continue
    return "\n".join(out)


def _kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            continue


STOPS = {
    "SIGTERM-python": (signal.SIGTERM, False),
    "SIGINT-python": (signal.SIGINT, False),
    "SIGTERM-make": (signal.SIGTERM, True),
}


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("case", list(STOPS))
def test_stopped_mid_backfill_leaves_no_process(tmp_path, case):
    sig, through_make = STOPS[case]
    env = demo_env(tmp_path)
    home = env["DAGSTER_HOME"]
    if through_make:
        make = shutil.which("make")
        if make is None:
            pytest.skip("make is not installed")
        cmd = [make, "-s", "demo"]
    else:
        cmd = [sys.executable, "-m", "marketo_assets.local.demo"]
    demo = Demo(cmd, env)
    try:
        demo.wait_for_line(": started", timeout=240)  # a run of the backfill is executing
        tree = {p.pid for p in psutil.Process(demo.proc.pid).children(recursive=True)}
        assert processes_of(home, set()), "no process with the demo's DAGSTER_HOME"
        assert any("dagster-daemon" in " ".join(p.cmdline()) for p in processes_of(home, tree))
        stopped_at = time.monotonic()
        demo.proc.send_signal(sig)
        code = demo.wait(90)
        left = _wait_gone(home, tree)
        assert not left, f"left running after {case}:\n{_describe(left)}\n{demo.output()}"
        expected = {128 + sig} if not through_make else {2, 128 + sig, -sig}  # make: 2 or killed
        assert code in expected, (code, demo.output())
        assert time.monotonic() - stopped_at < 60
        if not through_make:
            assert any(line.startswith("Stopped (") for line in demo.lines), demo.output()
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
        _kill(processes_of(home, set()))

    # Nothing is left for a later daemon (make dev, the next make demo) to pick up.
    with instance_at(home) as instance:
        runs = [r.dagster_run for r in instance.get_run_records(filters=RunsFilter())]
        assert runs, "the backfill launched no run"
        assert all(r.is_finished for r in runs), [(r.run_id, r.status) for r in runs]
        backfills = instance.get_backfills()
        assert backfills and all(
            b.status.value in ("CANCELED", "COMPLETED_SUCCESS") for b in backfills
        )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_rerun_takes_as_long_as_the_first(tmp_path):
    """The list sensors' minimum interval (300 s by default) counted from the previous run's
    tick made a re-run within five minutes wait for it (195 s instead of 95 s)."""
    env = demo_env(tmp_path)
    # A long interval makes the cause plain: the re-run must not wait for it at all.
    env["MARKETO_LIST_SENSOR_INTERVAL"] = "3600"
    took = []
    for _ in range(2):
        demo = Demo([sys.executable, "-m", "marketo_assets.local.demo"], env)
        try:
            code = demo.wait(800)  # ~95 s idle; a machine shared by many tests is slower
        finally:
            if demo.proc.poll() is None:  # killed: it cannot clean up, so the test does
                demo.proc.kill()
                _kill(processes_of(env["DAGSTER_HOME"], set()))
        took.append(time.monotonic() - demo.started)
        assert code == 0, demo.output()
        left = _wait_gone(env["DAGSTER_HOME"], set())
        assert not left, f"left running after a normal exit:\n{_describe(left)}"
        assert any(line.startswith("Sensor static_list_sensor: ") for line in demo.lines)
    first, second = took
    # Before: the re-run waited for the interval (here 3600 s) and failed after 240 s.
    assert second < max(first * 1.5, first + 60), f"first run {first:.0f} s, re-run {second:.0f} s"
