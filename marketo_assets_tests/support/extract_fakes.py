"""An in-memory fake Marketo (the client calls the export engine makes) and a fake clock, for
the engine's unit tests: no HTTP, no sleeping, milliseconds per test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from marketo_assets import extract
from marketo_assets.extract import (
    ExportLedger,
    ExportLimits,
    ExportOutcome,
    ExportSpec,
    FilterCapabilities,
    LoadOutcome,
    Notice,
    Staging,
)
from marketo_assets.extract.staging import staging_root
from marketo_assets.marketo import DownloadResult, Event, ExportFilter, ExportJob, ExportRequest
from marketo_assets.marketo import errors as marketo_errors
from marketo_assets.marketo.exports import split_window
from marketo_assets.warehouse import DuckDBSession

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
MB = 1024 * 1024
POLL_SECONDS = 30.0
JOB_TIMEOUT = 3600.0


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@dataclass
class Script:
    """How one job Marketo creates behaves: the statuses the wait sees after Created (one poll
    each), what the wait ends with, and what the download finds."""

    statuses: tuple[str, ...] = ("Queued", "Processing")
    # "Completed", "Failed", "Cancelled", "hang" (never ends: the wait times out) or
    # "interrupt" (the wait is interrupted by `interrupt`).
    end: str = "Completed"
    records: int = 3
    file_gone: bool = False
    bad_checksum: bool = False
    interrupt: BaseException | None = None


@dataclass
class FakeJob:
    export_id: str
    request: ExportRequest
    script: Script
    status: str = "Created"
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def content(self) -> bytes:
        rows = "".join(f"{i},lead{i}@example.com\n" for i in range(1, self.script.records + 1))
        return ("id,email\n" + rows).encode()

    def as_job(self) -> ExportJob:
        done = self.status == "Completed"
        return ExportJob(
            export_id=self.export_id,
            status=self.status,
            format=self.request.format,
            queued_at=self.queued_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            number_of_records=self.script.records if done else None,
            file_size=len(self.content) if done else None,
            file_checksum=f"sha256:{hashlib.sha256(self.content).hexdigest()}" if done else None,
            export_type=self.request.export_type,
        )


@dataclass
class FakeMarketo:
    """Implements ExportClient. `scripts` are used by the jobs created next, in order (then
    the default Script); `calls` lists (method, export id or "") in call order."""

    clock: FakeClock
    scripts: list[Script] = field(default_factory=list)
    used_today: int = 0
    unsupported: set[str] = field(default_factory=set)
    create_error: Exception | None = None
    cancel_error: Exception | None = None
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    calls_made: int = 0

    def _call(self, method: str, export_id: str = "") -> None:
        self.calls.append((method, export_id))
        self.calls_made += 1

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def add_job(self, export_id: str, request: ExportRequest, status: str, **script: object):
        """A job Marketo already has (e.g. created by a run that was killed)."""
        job = FakeJob(export_id, request, Script(**script), status=status)  # type: ignore[arg-type]
        self.jobs[export_id] = job
        return job

    # ------------------------------------------------------------------ ExportClient
    def create_export(self, request: ExportRequest) -> ExportJob:
        self._call("create")
        if request.filter.kind in self.unsupported:
            raise marketo_errors.UnsupportedFilterError(
                request.filter.kind, "Unsupported filter type for target subscription"
            )
        if self.create_error is not None:
            raise self.create_error
        export_id = f"00000000-0000-4000-8000-{len(self.jobs) + 1:012d}"
        script = self.scripts.pop(0) if self.scripts else Script()
        self.jobs[export_id] = FakeJob(export_id, request, script)
        return self.jobs[export_id].as_job()

    def _job(self, export_id: str, export_type: str) -> FakeJob | None:
        """The job, if Marketo knows it under `export_type`'s paths (else HTTP 404)."""
        job = self.jobs.get(export_id)
        return job if job is not None and job.request.export_type == export_type else None

    def export_usable(self, export_id: str, export_type: str = "leads") -> ExportJob | None:
        self._call("usable", export_id)
        job = self._job(export_id, export_type)
        if job is None:  # HTTP 404: Marketo does not know the job (any more)
            return None
        if job.status in ExportJob.ACTIVE:
            return job.as_job()
        if job.status == "Completed" and not job.script.file_gone:
            return job.as_job()
        return None

    def wait_for_export(
        self, export_id: str, *, export_type: str = "leads", seen: ExportJob | None = None
    ) -> ExportJob:
        self._call("wait", export_id)
        job = self._job(export_id, export_type)
        assert job is not None, f"no {export_type} export {export_id}"
        if job.status == "Completed":
            return job.as_job()
        started = self.clock.now()
        order = ["Created", "Queued", "Processing"]
        rank = order.index(job.status) if job.status in order else len(order)
        steps = [s for s in job.script.statuses if order.index(s) > rank]
        for status in steps:
            self.clock.sleep(POLL_SECONDS)
            job.status = status
            if status == "Queued":
                job.queued_at = self.clock.now()
            if status == "Processing":
                job.started_at = self.clock.now()
        end = job.script.end
        if job.status in ExportJob.TERMINAL:
            end = job.status
        if end == "interrupt":
            assert job.script.interrupt is not None
            raise job.script.interrupt
        if end == "hang":
            while (self.clock.now() - started).total_seconds() < JOB_TIMEOUT:
                self.clock.sleep(POLL_SECONDS)
            self.cancel_export(export_id, export_type)
            raise marketo_errors.ExportTimeoutError(export_id, JOB_TIMEOUT, job.status, True)
        self.clock.sleep(POLL_SECONDS)
        job.status = end
        job.finished_at = self.clock.now()
        if end == "Failed":
            raise marketo_errors.ExportJobFailedError(export_id, "Internal error")
        if end == "Cancelled":
            raise marketo_errors.ExportJobCancelledError(export_id)
        return job.as_job()

    def cancel_export(self, export_id: str, export_type: str = "leads") -> ExportJob:
        self._call("cancel", export_id)
        if self.cancel_error is not None:
            raise self.cancel_error
        job = self._job(export_id, export_type)
        assert job is not None, f"no {export_type} export {export_id}"
        job.status = "Cancelled"
        return job.as_job()

    def download_export(self, job: ExportJob, dest: Path) -> DownloadResult:
        self._call("download", job.export_id)
        fake = self._job(job.export_id, job.export_type)
        assert fake is not None, f"no {job.export_type} export {job.export_id}"
        if fake.script.file_gone:
            raise marketo_errors.ExportFileExpiredError(job.export_id)
        content = fake.content
        actual = hashlib.sha256(content + b"x" if fake.script.bad_checksum else content)
        if fake.script.bad_checksum:
            raise marketo_errors.ChecksumMismatchError(
                job.export_id,
                expected_size=len(content),
                actual_size=len(content) + 1,
                expected_sha256=job.sha256,
                actual_sha256=actual.hexdigest(),
                attempts=3,
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        return DownloadResult(dest, len(content), actual.hexdigest(), 0, 1, 0.5)

    def exported_bytes_today(self) -> int:
        """Like Marketo's shared quota: the Completed jobs of every export type."""
        self._call("quota")
        done = [j for j in self.jobs.values() if j.status == "Completed"]
        return self.used_today + sum(len(j.content) for j in done)

    def server_now(self) -> datetime:
        return self.clock.now()


def lead_request(day: int = 1, **options: object) -> ExportRequest:
    start = datetime(2026, 2, day, tzinfo=UTC)
    return ExportRequest(
        fields=["id", "email"],
        filter=ExportFilter.created_at(start, start + timedelta(days=1) - timedelta(seconds=1)),
        **options,  # type: ignore[arg-type]
    )


FIELD_TYPES = [("id", "integer"), ("email", "email")]
LEADS, KEY = "marketo/leads", "2026-02-01"


def lead_spec(key: str = "2026-02-01", **options: object) -> ExportSpec:
    return ExportSpec("marketo/leads", key, lead_request(), FIELD_TYPES, **options)  # type: ignore[arg-type]


def long_window_spec() -> ExportSpec:
    """A 40-day window: two jobs (Marketo allows 31 days per job)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    requests = [
        ExportRequest(fields=["id", "email"], filter=ExportFilter.created_at(lo, hi))
        for lo, hi in split_window(start, start + timedelta(days=40))
    ]
    return ExportSpec.of(LEADS, KEY, requests, FIELD_TYPES)


@dataclass
class Engine:
    """Everything one export or load call needs, in a temporary folder."""

    root: Path
    clock: FakeClock = field(default_factory=FakeClock)
    events: list[Notice | Event] = field(default_factory=list)
    limits: ExportLimits = field(
        default_factory=lambda: ExportLimits(daily_quota_mb=1, max_job_attempts=3)
    )

    def __post_init__(self) -> None:
        self.marketo = FakeMarketo(self.clock)
        self.ledger = ExportLedger(self.root / "ledger.sqlite")
        self.staging = Staging(staging_root(self.root / "staging"), max_age_hours=168)
        self.capabilities = FilterCapabilities(self.root / "capabilities.json")

    def export(
        self, spec: ExportSpec | None = None, run_id: str = "run-1", run_status=None
    ) -> ExportOutcome:
        return extract.export(
            spec or lead_spec(),
            self.marketo,
            self.ledger,
            self.staging,
            self.capabilities,
            run_id=run_id,
            run_status=run_status,
            limits=self.limits,
            on_event=self.events.append,
            now=self.clock.now,
        )

    @contextmanager
    def session(self) -> Iterator[DuckDBSession]:
        conn = duckdb.connect(str(self.root / "warehouse.duckdb"))
        try:
            yield DuckDBSession(conn)
        finally:
            conn.close()

    def load(self, run_id: str = "run-1", key: str = "2026-02-01", **options: Any) -> LoadOutcome:
        return extract.load(
            self.ledger,
            self.staging,
            self.session,
            asset="marketo/leads",
            partition_key=key,
            table="marketo.leads",
            run_id=run_id,
            on_event=self.events.append,
            now=self.clock.now,
            **options,
        )

    def notices(self) -> list[str]:
        return [e.kind for e in self.events if isinstance(e, Notice)]

    def entries(self, asset: str = "marketo/leads") -> list[tuple[str, str]]:
        return [(e.export_id, e.status) for e in self.ledger.entries(asset)]
