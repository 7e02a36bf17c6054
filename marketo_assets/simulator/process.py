"""Run the simulator as a subprocess (for tests, the demo and benchmarks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from .cli import READY


@dataclass
class SimulatorHandle:
    base_url: str
    client_id: str
    client_secret: str
    pid: int
    control: httpx.Client = field(repr=False)
    output: list[str] = field(default_factory=list, repr=False)  # stdout lines after READY

    # `with handle:` is allowed and does nothing: whoever started the simulator stops it
    # (run_simulator's exit, or the simulator_factory fixture at the end of the test).
    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def _post(self, path: str, body=None) -> dict:
        r = self.control.post(path, json=body)
        r.raise_for_status()
        return r.json()

    def state(self) -> dict:
        r = self.control.get("/_sim/state")
        r.raise_for_status()
        return r.json()

    def advance(self, seconds: float) -> dict:
        return self._post("/_sim/clock/advance", {"seconds": seconds})

    def tick(self) -> dict:
        return self._post("/_sim/tick")

    def set_faults(self, spec) -> dict:
        return self._post("/_sim/faults", spec)

    def clear_faults(self) -> dict:
        r = self.control.delete("/_sim/faults")
        r.raise_for_status()
        return r.json()

    def truth(self, filter: dict, ids: bool = False) -> dict:
        return self._post("/_sim/truth", {"filter": filter, "ids": ids})

    def lead(self, lead_id: int) -> dict:
        r = self.control.get(f"/_sim/leads/{lead_id}")
        r.raise_for_status()
        return r.json()

    def update_lead(self, lead_id: int, fields: dict) -> dict:
        return self._post(f"/_sim/leads/{lead_id}", {"fields": fields})

    def set_list_members(
        self, kind: str, list_id: int, add: Iterable[int] = (), remove: Iterable[int] = ()
    ) -> dict:
        return self._post(
            f"/_sim/lists/{kind}/{list_id}/members", {"add": list(add), "remove": list(remove)}
        )

    def create_list(self, kind: str, name: str) -> dict:
        return self._post(f"/_sim/lists/{kind}", {"name": name})

    def delete_list(self, kind: str, list_id: int) -> dict:
        r = self.control.delete(f"/_sim/lists/{kind}/{list_id}")
        r.raise_for_status()
        return r.json()

    def add_foreign_jobs(
        self, count: int, status: str = "Queued", seconds: float = 300, type: str = "leads"
    ) -> dict:
        """Another tool's jobs (`type`: leads, activities or program_members) in the queue."""
        body = {"count": count, "status": status, "seconds": seconds, "type": type}
        return self._post("/_sim/jobs/foreign", body)

    def _get(self, path: str, **params) -> dict:
        r = self.control.get(path, params={k: v for k, v in params.items() if v is not None})
        r.raise_for_status()
        return r.json()

    def truth_activities(
        self, start: str, end: str, activity_type_ids: list[int] | None = None, ids: bool = False
    ) -> dict:
        """Activities with start <= activityDate <= end: {"count", "guids" (if ids)}."""
        body = {"start": start, "end": end, "activityTypeIds": activity_type_ids, "ids": ids}
        return self._post("/_sim/truth/activities", body)

    def truth_program_members(self, program_ids: list[int], ids: bool = False) -> dict:
        """{"count", "rows": [[programId, leadId], ...] (if ids)}."""
        return self._post("/_sim/truth/program_members", {"programIds": program_ids, "ids": ids})

    def truth_deleted_leads(self, start: str | None = None, end: str | None = None) -> dict:
        """{"count", "leadIds", "deletedAt"} for deletions in [start, end]."""
        return self._get("/_sim/truth/deleted_leads", start=start, end=end)

    def truth_merges(self) -> dict:
        return self._get("/_sim/truth/merges")

    def job_record(self) -> dict:
        """Every job of every type with its status transitions."""
        return self._get("/_sim/jobs/record")

    def clear_foreign_jobs(self) -> dict:
        r = self.control.delete("/_sim/jobs/foreign")
        r.raise_for_status()
        return r.json()

    def revoke_tokens(self, mode: str = "invalid") -> dict:
        return self._post("/_sim/tokens/revoke", {"mode": mode})

    def add_client(self, client_id: str, client_secret: str) -> dict:
        return self._post("/_sim/clients", {"client_id": client_id, "client_secret": client_secret})

    def configure(self, **settings) -> dict:
        return self._post("/_sim/config", settings)

    def token(self, client_id: str | None = None, client_secret: str | None = None) -> str:
        """An access token from the identity endpoint (convenience for tests)."""
        r = self.control.get(
            "/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": client_id or self.client_id,
                "client_secret": client_secret or self.client_secret,
            },
        )
        r.raise_for_status()
        return r.json()["access_token"]


@contextmanager
def run_simulator(
    *,
    leads: int = 2000,
    seed: int = 7,
    created_from: str = "2025-01-01",
    created_to: str = "2025-07-01",
    status_interval: float = 0.2,
    faults: str | None = None,
    quota_mb: float = 500,
    rows_per_second: float | None = None,
    activities_per_lead: float | None = None,
    extra_args: Iterable[str] = (),
    client_id: str = "demo-client",
    client_secret: str = "demo-secret",  # noqa: S107 - the documented demo credential
    ready_timeout: float = 30,
    host: str = "127.0.0.1",
) -> Iterator[SimulatorHandle]:
    """Start `python -m marketo_assets.simulator.cli --port 0 ...`, wait for the READY line,
    yield a handle; stop with SIGTERM (then SIGKILL) on exit."""
    cmd = [
        sys.executable,
        "-m",
        "marketo_assets.simulator.cli",
        "--host",
        host,
        "--port",
        "0",
        "--leads",
        str(leads),
        "--seed",
        str(seed),
        "--created-from",
        created_from,
        "--created-to",
        created_to,
        "--status-interval",
        str(status_interval),
        "--client-id",
        client_id,
        "--client-secret",
        client_secret,
        "--quota-mb",
        str(quota_mb),
    ]
    if faults:
        cmd += ["--faults", faults]
    if rows_per_second is not None:
        cmd += ["--rows-per-second", str(rows_per_second)]
    if activities_per_lead is not None:
        cmd += ["--activities-per-lead", str(activities_per_lead)]
    cmd += list(extra_args)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    )
    lines: list[str] = []
    ready = threading.Event()
    info: dict = {}

    def pump() -> None:  # read stdout forever so the pipe never fills
        assert proc.stdout is not None
        for line in proc.stdout:
            if not ready.is_set() and line.startswith(READY + " "):
                info.update(json.loads(line[len(READY) + 1 :]))
                ready.set()
            else:
                lines.append(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True, name="sim-stdout").start()
    control = None
    try:
        deadline = time.monotonic() + ready_timeout
        while not ready.wait(0.05):
            if proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {proc.returncode}: {lines[-20:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator not ready after {ready_timeout}s")
        control = httpx.Client(base_url=info["base_url"], timeout=60, trust_env=False)
        yield SimulatorHandle(
            info["base_url"], info["client_id"], info["client_secret"], proc.pid, control, lines
        )
    finally:
        if control is not None:
            control.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
