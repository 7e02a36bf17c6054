"""Fixtures for the browser tests: the simulator, `dagster-webserver` and `dagster-daemon` on
loopback with a temporary instance (one set per module), and Debian's Chromium through Playwright.

Chromium is the system one (`.ci/setup-chromium` installs it), never a Playwright download.
Without it the tests skip, unless MARKETO_REQUIRE_ALL=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from marketo_assets.local.instance import ensure_pools, running_daemon, stop_process_group
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets.simulator.process import SimulatorHandle, run_simulator

from ..dagster.conftest import SIM_ARGS, run_env

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
LOCATION = "marketo_assets"
DBT_LOCATION = "marketo_dbt"  # the dbt models' own code location (workspace.yaml)
# A loaded machine: the webserver loads the definitions (dbt manifest included) in a subprocess.
STARTUP_TIMEOUT = 180


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterUI:
    """A running `dagster-webserver` (and daemon) on a temporary instance."""

    url: str
    env: dict[str, str]
    tmp: Path
    sim: SimulatorHandle
    webserver_log: Path
    daemon_log: Path

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=timeout,
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, json.dumps(body["errors"])[:2000]
        return body["data"]

    def logs(self, tail: int = 6000) -> str:
        parts = []
        for path in (self.webserver_log, self.daemon_log):
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            parts.append(f"----- {path.name} (last {tail} chars) -----\n{text[-tail:]}")
        return "\n".join(parts)


_LOCATION_STATUS = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def _wait_until_loaded(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"dagster-webserver exited ({proc.returncode}):\n{log.read_text()[-6000:]}"
            )
        try:
            response = httpx.post(f"{url}/graphql", json={"query": _LOCATION_STATUS}, timeout=10)
            entries = response.json()["data"]["workspaceOrError"]["locationEntries"]
            ready = []
            for entry in [e for e in entries if e["name"] in (LOCATION, DBT_LOCATION)]:
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") == "PythonError":
                    raise RuntimeError(f"code location failed to load: {loaded['message']}")
                ready.append(entry["loadStatus"] == "LOADED" and bool(loaded.get("__typename")))
            if len(ready) == 2 and all(ready):
                return
            last = str([(e["name"], e["loadStatus"]) for e in entries])
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            last = repr(exc)
        time.sleep(1)
    raise RuntimeError(
        f"dagster-webserver not ready after {STARTUP_TIMEOUT}s ({last}):\n{log.read_text()[-6000:]}"
    )


@contextmanager
def running_webserver(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`dagster-webserver` on a free loopback port; yields its URL once the code location is
    loaded."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    webserver = str(Path(sys.executable).with_name("dagster-webserver"))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [webserver, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_loaded(url, proc, log_path)
            yield url
        finally:
            stop_process_group(proc)


_SENSOR = """
query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  __typename ... on Sensor { id } ... on PythonError { message } } }
"""
_STOP_SENSOR = """
mutation ($id: String) { stopSensor(id: $id) {
  __typename ... on StopSensorMutationResult { instigationState { status } }
  ... on PythonError { message } } }
"""


def stop_sensor(ui: DagsterUI, name: str, location: str = LOCATION) -> None:
    selector = {"repositoryLocationName": location, "repositoryName": "__repository__"}
    found = ui.graphql(_SENSOR, {"selector": {**selector, "sensorName": name}})["sensorOrError"]
    assert found["__typename"] == "Sensor", found
    stopped = ui.graphql(_STOP_SENSOR, {"id": found["id"]})["stopSensor"]
    assert stopped["__typename"] == "StopSensorMutationResult", stopped


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        reason = (
            "Chromium not found: run .ci/setup-chromium (apt-get install chromium) "
            "or set CHROMIUM_PATH"
        )
        if os.environ.get("MARKETO_REQUIRE_ALL") == "1":
            pytest.fail(f"MARKETO_REQUIRE_ALL=1 and {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def dagster_ui(chromium, tmp_path_factory) -> Iterator[DagsterUI]:
    """Simulator + daemon + webserver on a temporary DAGSTER_HOME (the project's dagster.yaml:
    queued runs, pools, retries, run monitoring), DuckDB file, staging folder and ledger."""
    import dagster as dg

    from marketo_assets.defs.dbt_manifest import ensure_manifest

    ensure_manifest()  # parsed once here, not by each Dagster process (a clean clone has none)
    tmp = tmp_path_factory.mktemp("browser")
    with run_simulator(**SIM_ARGS) as sim:
        env = run_env(sim, tmp)
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            ensure_pools(instance)
        ui_log, daemon_log = tmp / "webserver.log", tmp / "daemon.log"
        with (
            running_daemon(env, log_path=daemon_log),
            running_webserver(env, ui_log) as url,
        ):
            ui = DagsterUI(url, env, tmp, sim, ui_log, daemon_log)
            # The dbt models are not under test here (marketo_assets_tests/dagster covers
            # them): keep their automation sensor from adding dbt builds to the runs below.
            stop_sensor(ui, "dbt_models_after_raw_loads", DBT_LOCATION)
            yield ui


@pytest.fixture(scope="module")
def browser(chromium) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            # Root in a container has no user namespaces for Chromium's sandbox.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, dagster_ui, request) -> Iterator:
    """A fresh page on the Dagster UI; on failure, a screenshot and the server logs."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / f"FAILED-{request.node.name}.png", full_page=True)
            print(dagster_ui.logs())
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
