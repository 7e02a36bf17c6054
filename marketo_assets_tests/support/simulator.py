"""Plain-httpx helpers for the simulator tests (deliberately not the project's client)."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from typing import Any

import httpx

from marketo_assets.simulator.process import SimulatorHandle

JAN = {"createdAt": {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-01-31T23:59:59Z"}}
FIELDS = ["id", "email", "firstName", "lastName", "createdAt", "updatedAt"]
DELIMS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
LEADS = "/bulk/v1/leads/export"
ACTIVITIES = "/bulk/v1/activities/export"
PROGRAM_MEMBERS = "/bulk/v1/program/members/export"


class Api:
    """A Marketo caller with a bearer token."""

    def __init__(
        self,
        sim: SimulatorHandle,
        client_id: str | None = None,
        client_secret: str | None = None,
        base: str = LEADS,
    ) -> None:
        self.sim = sim
        self.base = base  # which bulk export family: LEADS, ACTIVITIES, PROGRAM_MEMBERS
        self.http = httpx.Client(base_url=sim.base_url, trust_env=False, timeout=30)
        self.token = sim.token(client_id, client_secret)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw: Any) -> dict:
        return self.http.get(path, headers=self.headers, **kw).json()

    def post(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> dict:
        return self.http.post(path, headers={**self.headers, **(headers or {})}, **kw).json()

    def create(
        self, filter: dict | None = None, fields: list[str] | None = None, **extra: Any
    ) -> dict:
        body = {"fields": fields or FIELDS, "filter": filter or JAN, **extra}
        return self.create_body(body)

    def create_body(self, body: dict) -> dict:
        return self.post(f"{self.base}/create.json", json=body)

    def create_body_id(self, body: dict) -> str:
        r = self.create_body(body)
        assert r["success"], r
        return r["result"][0]["exportId"]

    def create_id(
        self, filter: dict | None = None, fields: list[str] | None = None, **extra: Any
    ) -> str:
        r = self.create(filter, fields, **extra)
        assert r["success"], r
        return r["result"][0]["exportId"]

    def enqueue(self, eid: str) -> dict:
        return self.post(f"{self.base}/{eid}/enqueue.json")

    def status(self, eid: str) -> dict:
        return self.get(f"{self.base}/{eid}/status.json")

    def job(self, eid: str) -> dict:
        r = self.status(eid)
        assert r["success"], r
        return r["result"][0]

    def cancel(self, eid: str) -> dict:
        return self.post(f"{self.base}/{eid}/cancel.json")

    def file(self, eid: str, range_: str | None = None) -> httpx.Response:
        h = dict(self.headers)
        if range_:
            h["Range"] = range_
        return self.http.get(f"{self.base}/{eid}/file.json", headers=h)

    def export(
        self,
        filter: dict | None = None,
        fields: list[str] | None = None,
        timeout: float = 20,
        **extra: Any,
    ) -> tuple[dict, bytes]:
        """Create, enqueue, wait, download: (job, file bytes)."""
        eid = self.create_id(filter, fields, **extra)
        return self.run(eid, timeout)

    def run(self, eid: str, timeout: float = 20) -> tuple[dict, bytes]:
        """Enqueue, wait, download: (job, file bytes)."""
        assert self.enqueue(eid)["success"]
        job = wait_status(self.sim, eid, {"Completed", "Failed"}, timeout)
        job = self.job(eid)
        assert job["status"] == "Completed", job
        body = self.file(eid).content
        return job, body


def error(resp: dict) -> tuple[str, str]:
    assert resp["success"] is False, resp
    e = resp["errors"][0]
    return e["code"], e["message"]


def sim_job(sim: SimulatorHandle, eid: str) -> dict:
    for j in sim.state()["jobs"]:
        if j["exportId"] == eid:
            return j
    raise KeyError(eid)


def wait_status(sim: SimulatorHandle, eid: str, statuses: set[str], timeout: float = 20) -> dict:
    """Wait through the control API (not counted as Marketo calls)."""
    deadline = time.monotonic() + timeout
    while True:
        j = sim_job(sim, eid)
        if j["status"] in statuses:
            return j
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {eid} still {j['status']}")
        time.sleep(0.05)


def parse(body: bytes, fmt: str = "CSV") -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline=""), delimiter=DELIMS[fmt]))


def sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
