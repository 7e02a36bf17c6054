"""Helpers of the browser tests: `dagster-webserver` on loopback, the running UI, screenshots."""

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

from marketo_assets.local.instance import stop_process_group
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets.simulator.process import SimulatorHandle

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


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
