"""MarketoClient: the bulk export cycle (leads, activities, program members) over Marketo's REST
API (httpx, no dagster)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from . import deleted_leads, programs
from .clock import quota_day_start, quota_reset_time
from .core import RequestCore
from .deleted_leads import DeletedLead
from .download import download_export
from .errors import (
    DailyCallLimitError,
    ExportJobCancelledError,
    ExportJobFailedError,
    ExportTimeoutError,
    InvalidRequestError,
    MarketoAPIError,
    MarketoError,
    QueueFullError,
    QuotaExceededError,
    TransientError,
    UnsupportedFilterError,
)
from .exports import (
    EXPORT_TYPES,
    AnyFilter,
    ExportJob,
    ExportRequest,
    ExportType,
    checked_export_id,
    export_base,
    export_path,
)
from .models import ActivityType, DownloadResult, Event, LeadField, SmartList, StaticList
from .programs import Program
from .retry import AUTH_RETRIES
from .settings import ClientSettings
from .throttle import Throttle, shared_throttle
from .transport import http_transport

__all__ = ["AUTH_RETRIES", "MarketoClient", "checked_export_id", "export_path"]

log = logging.getLogger("marketo_assets.marketo")
# The one field a filter probe job asks for, per export type.
_PROBE_FIELD = {"leads": "id", "activities": "marketoGUID", "program_members": "leadId"}


class MarketoClient:
    """Marketo bulk export client. Use as a context manager or call close().

    Jobs of every export type (leads, activities, program members) are handled alike; calls
    about one job take its `export_type` (default "leads"), as its paths depend on it.

    Thread-safe: calls may be made from several threads; the throttle and token are shared.
    Every call goes through one RequestCore (core.py).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        on_event: Callable[[Event], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        throttle: Throttle | None = None,
    ):
        self.settings = settings
        self._http = httpx.Client(
            base_url=settings.base_url,
            transport=transport if transport is not None else http_transport(settings.base_url),
            timeout=httpx.Timeout(settings.request_timeout),
            headers={"User-Agent": "marketo-assets/0.1"},
            follow_redirects=False,
        )
        # `throttle`: share one with other clients of the same Marketo instance (see
        # throttle.shared_throttle); default: this client's own.
        self._throttle = throttle or Throttle(
            settings.max_calls_per_window, settings.window_seconds, settings.max_concurrent
        )
        self._core = RequestCore(
            settings,
            self._http,
            self._throttle,
            on_event=on_event,
            sleep=sleep,
            clock=clock,
        )
        self._auth = self._core.auth

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        return (
            f"MarketoClient(base_url={self.settings.base_url!r}, "
            f"client_id={self.settings.client_id!r}, calls_made={self.calls_made})"
        )

    @classmethod
    def sharing_throttle(
        cls, settings: ClientSettings, on_event: Callable[[Event], None] | None = None
    ) -> MarketoClient:
        """A client drawing from the throttle of its Marketo instance shared in this process
        (`throttle.shared_throttle`): runs and sensor ticks share Marketo's 100 calls / 20 s."""
        throttle = shared_throttle(
            settings.base_url,
            settings.max_calls_per_window,
            settings.window_seconds,
            settings.max_concurrent,
        )
        return cls(settings, on_event=on_event, throttle=throttle)

    def __enter__(self) -> MarketoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def calls_made(self) -> int:
        """REST calls made (each retry and re-authenticated repeat counts)."""
        return self._core.calls_made

    @property
    def auth_calls(self) -> int:
        """Identity calls made (not counted in calls_made; Marketo does not meter them)."""
        return self._auth.auth_calls

    def server_now(self) -> datetime:
        """Marketo's current time as last seen in a response's `Date` header (else local time)."""
        return self._core.server_now()

    @staticmethod
    def _job_from(
        env: dict[str, Any], export_id: str | None = None, export_type: ExportType = "leads"
    ) -> ExportJob:
        result = env.get("result") or []
        if not result or not isinstance(result[0], dict):
            raise TransientError("Marketo answered with an empty `result` for an export job")
        job = ExportJob.from_api(result[0], export_type)
        if not job.export_id and export_id:
            job = ExportJob.from_api({**result[0], "exportId": export_id}, export_type)
        if job.export_id:
            checked_export_id(job.export_id, "Marketo's answer")
            if export_id and job.export_id.lower() != export_id.lower():
                raise MarketoAPIError(
                    "",
                    f"Marketo answered about export {job.export_id} when asked about "
                    f"{export_id}; not using the answer",
                )
        return job

    # ------------------------------------------------------------------ catalog
    def describe_fields(self) -> list[LeadField]:
        """Lead field catalog from describe2 (falls back to describe)."""
        try:
            fields = programs.fields_of(self._core.call("GET", "/rest/v1/leads/describe2.json"))
            if fields:
                return fields
        except (MarketoAPIError, TransientError) as exc:
            if isinstance(exc, QuotaExceededError | DailyCallLimitError):
                raise
            log.info("marketo: describe2 unavailable (%s); falling back to describe", exc)
        out: list[LeadField] = []
        token: str | None = None
        while True:
            params = {"nextPageToken": token} if token else None
            env = self._core.call("GET", "/rest/v1/leads/describe.json", params=params)
            for item in env.get("result") or []:
                rest = item.get("rest") or {}
                if not rest.get("name"):
                    continue
                read_only = rest.get("readOnly")
                out.append(
                    LeadField(
                        name=str(rest["name"]),
                        display_name=item.get("displayName"),
                        data_type=item.get("dataType"),
                        length=item.get("length"),
                        updateable=None if read_only is None else not read_only,
                    )
                )
            next_token = env.get("nextPageToken")
            if not env.get("moreResult") or not next_token or next_token == token:
                return out
            token = next_token

    def activity_types(self) -> list[ActivityType]:
        """The activity type catalog (`GET /rest/v1/activities/types.json`): standard and
        custom types with their primary attribute and attributes."""
        env = self._core.call("GET", "/rest/v1/activities/types.json")
        return [
            ActivityType.from_api(item)
            for item in env.get("result") or []
            if isinstance(item, dict) and item.get("id") is not None
        ]

    def iter_static_lists(self) -> Iterator[StaticList]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"batchSize": 300}
            if token:
                params["nextPageToken"] = token
            env = self._core.call("GET", "/rest/v1/lists.json", params=params, expect_result=False)
            result = env.get("result") or []
            for item in result:
                yield StaticList.from_api(item)
            next_token = env.get("nextPageToken")
            if not result or not next_token or next_token == token:
                return
            token = next_token

    def iter_smart_lists(self) -> Iterator[SmartList]:
        pages = programs.asset_pages(self._core, "/rest/asset/v1/smartLists.json")
        return (SmartList.from_api(item) for item in pages)

    def iter_programs(self) -> Iterator[Program]:
        """Every program (asset API, 200 per call)."""
        return programs.iter_programs(self._core)

    def describe_program_members(self) -> list[LeadField]:
        """The fields the bulk program member export takes."""
        return programs.describe_program_members(self._core)

    def iter_deleted_leads(self, start: datetime, end: datetime) -> Iterator[DeletedLead]:
        """The leads deleted in [start, end): one paging-token call, one call per 300."""
        return deleted_leads.iter_deleted_leads(self._core, start, end)

    # ------------------------------------------------------------------ export jobs
    def create_export(self, request: ExportRequest) -> ExportJob:
        if not isinstance(request, ExportRequest):
            raise InvalidRequestError("create_export needs an ExportRequest")
        kind = request.export_type
        env = self._core.call(
            "POST",
            f"{export_base(kind)}/create.json",
            json_body=request.payload(),
            context={"fields": list(request.fields), "filter": request.filter.kind},
        )
        job = self._job_from(env, export_type=kind)
        if not job.export_id:
            raise TransientError("Marketo created an export job without an exportId")
        log.info("marketo: created export %s (%s)", job.export_id, request.filter.describe())
        return job

    def enqueue_export(self, export_id: str, export_type: ExportType = "leads") -> ExportJob:
        """Enqueue a Created job. "Job already queued" counts as success; queue full is retried
        along queue_full_backoff (Event enqueue_wait) before QueueFullError, which then says
        how many of this user's jobs of every type are queued or processing."""
        path = export_path(export_id, "enqueue", export_type)
        try:
            env = self._core.call("POST", path, export_id=export_id)
        except QueueFullError as exc:
            raise self._queue_full(exc) from None
        if env.get("success") is False:  # 1029 "Job already queued"
            return self.get_export(export_id, export_type)
        return self._job_from(env, export_id, export_type)

    def _queue_full(self, exc: QueueFullError) -> QueueFullError:
        """`exc` with the count of our own queued and processing jobs of every type."""
        try:
            ours = self.active_exports()
        except MarketoError as err:  # the count is a hint; the queue-full error is the news
            log.info("marketo: could not count our active exports: %s", err)
            return exc
        counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(ours.items()))
        return QueueFullError(
            f"{exc.message} (this API user's jobs of all export types: {counts or 'none'})",
            waited_seconds=exc.waited_seconds,
            code=exc.code,
        )

    def get_export(self, export_id: str, export_type: ExportType = "leads") -> ExportJob:
        path = export_path(export_id, "status", export_type)
        env = self._core.call("GET", path, export_id=export_id)
        return self._job_from(env, export_id, export_type)

    def cancel_export(self, export_id: str, export_type: ExportType = "leads") -> ExportJob:
        path = export_path(export_id, "cancel", export_type)
        env = self._core.call("POST", path, export_id=export_id)
        return self._job_from(env, export_id, export_type)

    def list_exports(
        self, statuses: Iterable[str] | None = None, export_type: ExportType = "leads"
    ) -> Iterator[ExportJob]:
        """This API user's export jobs of one type of the last 7 days (paged, 300 per page)."""
        status_param = ",".join(statuses) if statuses else None
        path = f"{export_base(export_type)}.json"
        token: str | None = None
        while True:
            params: dict[str, Any] = {"batchSize": 300}
            if status_param:
                params["status"] = status_param
            if token:
                params["nextPageToken"] = token
            env = self._core.call("GET", path, params=params, expect_result=False)
            result = env.get("result") or []
            for item in result:
                yield ExportJob.from_api(item, export_type)
            next_token = env.get("nextPageToken")
            if not result or not next_token or next_token == token:
                return
            token = next_token

    def list_all_exports(self, statuses: Iterable[str] | None = None) -> list[ExportJob]:
        """This API user's export jobs of every type (leads, activities, program members): the
        queue and the daily quota are shared by all of them. A type this user may not export
        (603 access denied, or no such job list: 610 or HTTP 404) has no jobs of this user."""
        wanted = list(statuses) if statuses else None
        jobs: list[ExportJob] = []
        for export_type in EXPORT_TYPES:
            try:
                jobs.extend(self.list_exports(wanted, export_type))
            except MarketoAPIError as exc:
                if export_type == "leads" or exc.code not in ("603", "610", "404"):
                    raise
                log.info("marketo: no %s export jobs visible (%s)", export_type, exc)
        return jobs

    def active_exports(self) -> dict[str, int]:
        """How many of this user's jobs of all types are Queued and Processing."""
        counts: dict[str, int] = {}
        for job in self.list_all_exports(["Queued", "Processing"]):
            if job.status in ("Queued", "Processing"):
                counts[job.status] = counts.get(job.status, 0) + 1
        return counts

    def _status_event(self, job: ExportJob, previous: str | None, started: float, polls: int):
        def iso(dt: datetime | None) -> str | None:
            return dt.isoformat() if dt else None

        def secs(a: datetime | None, b: datetime | None) -> float | None:
            return (b - a).total_seconds() if a and b else None

        self._core.emit(
            "status",
            job.export_id,
            {
                "status": job.status,
                "previous": previous,
                "elapsed_seconds": round(self._core.clock() - started, 3),
                "polls": polls,
                "created_at": iso(job.created_at),
                "queued_at": iso(job.queued_at),
                "started_at": iso(job.started_at),
                "finished_at": iso(job.finished_at),
                "queue_wait_seconds": secs(job.queued_at, job.started_at),
                "processing_seconds": secs(job.started_at, job.finished_at),
                "number_of_records": job.number_of_records,
                "file_size": job.file_size,
                "calls_made": self.calls_made,
            },
        )

    def wait_for_export(
        self,
        export_id: str,
        *,
        export_type: ExportType = "leads",
        poll_interval: float | None = None,
        timeout: float | None = None,
        seen: ExportJob | None = None,
    ) -> ExportJob:
        """Enqueue if Created, poll until terminal (no faster than poll_interval).

        Completed -> job; Failed -> ExportJobFailedError; Cancelled -> ExportJobCancelledError;
        no terminal status within `timeout` -> the job is cancelled, then ExportTimeoutError.
        `seen`: the job as the caller has just seen it (create_export's or export_usable's
        answer), which saves the first status call.
        """
        interval = self.settings.poll_interval if poll_interval is None else poll_interval
        limit = self.settings.job_timeout if timeout is None else timeout
        started = self._core.clock()
        polls = 0 if seen else 1
        job = seen or self.get_export(export_id, export_type)
        previous: str | None = None
        enqueued = False
        while True:
            if job.status != previous:
                self._status_event(job, previous, started, polls)
                previous = job.status
            if job.status == "Created" and not enqueued:
                enqueued = True
                job = self.enqueue_export(export_id, export_type)
                continue
            if job.status == "Completed":
                return job
            if job.status == "Failed":
                raise ExportJobFailedError(export_id, job.error_msg)
            if job.status == "Cancelled":
                raise ExportJobCancelledError(export_id)
            remaining = limit - (self._core.clock() - started)
            if remaining <= 0:
                cancelled = False
                try:
                    self.cancel_export(export_id, export_type)
                    cancelled = True
                except MarketoError as exc:
                    log.warning("marketo: could not cancel timed-out export %s: %s", export_id, exc)
                raise ExportTimeoutError(export_id, limit, job.status, cancelled)
            self._core.sleep(min(interval, remaining))
            polls += 1
            job = self.get_export(export_id, export_type)

    # ------------------------------------------------------------------ files
    def download_export(self, job: ExportJob, dest: Path) -> DownloadResult:
        """Download a Completed job's file to `dest` (see download.download_export)."""
        return download_export(self._core, job, Path(dest))

    def export_usable(self, export_id: str, export_type: ExportType = "leads") -> ExportJob | None:
        """Reattach check: the job if it is Created/Queued/Processing, or Completed with its file
        still downloadable (Range 0-0 probe); None otherwise (unknown, failed, expired...)."""
        try:
            job = self.get_export(export_id, export_type)
        except (MarketoAPIError, TransientError) as exc:
            if isinstance(exc, QuotaExceededError | DailyCallLimitError):
                raise
            log.info("marketo: export %s is not usable: %s", export_id, exc)
            return None
        if job.status in ExportJob.ACTIVE:
            return job
        if job.status != "Completed":
            return None
        for attempt in self._core.transient(export_id):
            with attempt, self._core.open_file(export_id, "bytes=0-0", export_type) as resp:
                if resp.status_code in (200, 206):
                    return job
                if resp.status_code == 404 or resp.status_code == 410:
                    return None
                if resp.status_code >= 500:
                    raise TransientError(f"file probe: HTTP {resp.status_code}")
                return None
        return None  # pragma: no cover

    def supports_filter(self, export_filter: AnyFilter) -> bool:
        """Whether this subscription accepts `export_filter`'s type (updatedAt and the smart
        list filters may be disabled: 1035). Creates a tiny job with only `id` and cancels it
        without enqueuing, so no quota is used (tap-marketo's "Corona" check). Errors other
        than 1035 are raised."""
        probe_field = _PROBE_FIELD[export_filter.export_type]
        request = ExportRequest(fields=[probe_field], filter=export_filter)
        try:
            job = self.create_export(request)
        except UnsupportedFilterError:
            return False
        try:
            self.cancel_export(job.export_id, job.export_type)
        except MarketoError as exc:  # the probe job is never enqueued; it simply expires
            log.info("marketo: could not cancel probe export %s: %s", job.export_id, exc)
        return True

    def exported_bytes_today(self, now: datetime | None = None) -> int:
        """Sum of fileSize of this user's Completed jobs of every export type finished since
        midnight America/Chicago (the bulk export quota day, shared by all types), by Marketo's
        clock unless `now` is given."""
        jobs = self.list_all_exports(["Completed"])  # also refreshes server_now()
        day_start = quota_day_start(now or self.server_now())
        total = 0
        for job in jobs:
            if job.status == "Completed" and job.finished_at and job.finished_at >= day_start:
                total += job.file_size or 0
        return total

    @staticmethod
    def quota_reset_time(now: datetime | None = None) -> datetime:
        """Next midnight America/Chicago after `now` (UTC-aware datetime)."""
        return quota_reset_time(now)
