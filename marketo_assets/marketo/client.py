"""MarketoClient: the bulk lead export cycle over Marketo's REST API (httpx, no dagster)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from .clock import quota_day_start, quota_reset_time
from .core import RequestCore
from .download import download_export
from .errors import (
    DailyCallLimitError,
    ExportJobCancelledError,
    ExportJobFailedError,
    ExportTimeoutError,
    InvalidRequestError,
    MarketoAPIError,
    MarketoError,
    QuotaExceededError,
    TransientError,
    UnsupportedFilterError,
)
from .exports import (
    EXPORT_BASE,
    ExportFilter,
    ExportJob,
    ExportRequest,
    checked_export_id,
    export_path,
)
from .models import DownloadResult, Event, LeadField, SmartList, StaticList
from .retry import AUTH_RETRIES
from .settings import ClientSettings
from .throttle import Throttle, shared_throttle

__all__ = ["AUTH_RETRIES", "MarketoClient", "checked_export_id", "export_path"]

log = logging.getLogger("marketo_assets.marketo")


class MarketoClient:
    """Marketo bulk lead export client. Use as a context manager or call close().

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
            transport=transport if transport is not None else httpx.HTTPTransport(),
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
    def _job_from(env: dict[str, Any], export_id: str | None = None) -> ExportJob:
        result = env.get("result") or []
        if not result or not isinstance(result[0], dict):
            raise TransientError("Marketo answered with an empty `result` for an export job")
        job = ExportJob.from_api(result[0])
        if not job.export_id and export_id:
            job = ExportJob.from_api({**result[0], "exportId": export_id})
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
            env = self._core.call("GET", "/rest/v1/leads/describe2.json")
            result = env.get("result") or []
            fields = result[0].get("fields") if result and isinstance(result[0], dict) else None
            if fields:
                return [
                    LeadField(
                        name=str(f["name"]),
                        display_name=f.get("displayName"),
                        data_type=f.get("dataType"),
                        length=f.get("length"),
                        updateable=f.get("updateable"),
                    )
                    for f in fields
                    if f.get("name")
                ]
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
        max_return = 200
        offset = 0
        while True:
            env = self._core.call(
                "GET",
                "/rest/asset/v1/smartLists.json",
                params={"offset": offset, "maxReturn": max_return},
                expect_result=False,
            )
            result = env.get("result") or []
            for item in result:
                yield SmartList.from_api(item)
            if len(result) < max_return or env.get("warnings"):
                return
            offset += len(result)

    # ------------------------------------------------------------------ export jobs
    def create_export(self, request: ExportRequest) -> ExportJob:
        if not isinstance(request, ExportRequest):
            raise InvalidRequestError("create_export needs an ExportRequest")
        env = self._core.call(
            "POST",
            f"{EXPORT_BASE}/create.json",
            json_body=request.payload(),
            context={"fields": list(request.fields), "filter": request.filter.kind},
        )
        job = self._job_from(env)
        if not job.export_id:
            raise TransientError("Marketo created an export job without an exportId")
        log.info("marketo: created export %s (%s)", job.export_id, request.filter.describe())
        return job

    def enqueue_export(self, export_id: str) -> ExportJob:
        """Enqueue a Created job. "Job already queued" counts as success; queue full is retried
        along queue_full_backoff (Event enqueue_wait) before QueueFullError."""
        env = self._core.call("POST", export_path(export_id, "enqueue"), export_id=export_id)
        if env.get("success") is False:  # 1029 "Job already queued"
            return self.get_export(export_id)
        return self._job_from(env, export_id)

    def get_export(self, export_id: str) -> ExportJob:
        env = self._core.call("GET", export_path(export_id, "status"), export_id=export_id)
        return self._job_from(env, export_id)

    def cancel_export(self, export_id: str) -> ExportJob:
        env = self._core.call("POST", export_path(export_id, "cancel"), export_id=export_id)
        return self._job_from(env, export_id)

    def list_exports(self, statuses: Iterable[str] | None = None) -> Iterator[ExportJob]:
        """This API user's export jobs of the last 7 days (paged, 300 per page)."""
        status_param = ",".join(statuses) if statuses else None
        token: str | None = None
        while True:
            params: dict[str, Any] = {"batchSize": 300}
            if status_param:
                params["status"] = status_param
            if token:
                params["nextPageToken"] = token
            env = self._core.call("GET", f"{EXPORT_BASE}.json", params=params, expect_result=False)
            result = env.get("result") or []
            for item in result:
                yield ExportJob.from_api(item)
            next_token = env.get("nextPageToken")
            if not result or not next_token or next_token == token:
                return
            token = next_token

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
        self, export_id: str, *, poll_interval: float | None = None, timeout: float | None = None
    ) -> ExportJob:
        """Enqueue if Created, poll until terminal (no faster than poll_interval).

        Completed -> job; Failed -> ExportJobFailedError; Cancelled -> ExportJobCancelledError;
        no terminal status within `timeout` -> the job is cancelled, then ExportTimeoutError.
        """
        interval = self.settings.poll_interval if poll_interval is None else poll_interval
        limit = self.settings.job_timeout if timeout is None else timeout
        started = self._core.clock()
        polls = 1
        job = self.get_export(export_id)
        previous: str | None = None
        enqueued = False
        while True:
            if job.status != previous:
                self._status_event(job, previous, started, polls)
                previous = job.status
            if job.status == "Created" and not enqueued:
                enqueued = True
                job = self.enqueue_export(export_id)
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
                    self.cancel_export(export_id)
                    cancelled = True
                except MarketoError as exc:
                    log.warning("marketo: could not cancel timed-out export %s: %s", export_id, exc)
                raise ExportTimeoutError(export_id, limit, job.status, cancelled)
            self._core.sleep(min(interval, remaining))
            polls += 1
            job = self.get_export(export_id)

    # ------------------------------------------------------------------ files
    def download_export(self, job: ExportJob, dest: Path) -> DownloadResult:
        """Download a Completed job's file to `dest` (see download.download_export)."""
        return download_export(self._core, job, Path(dest))

    def export_usable(self, export_id: str) -> ExportJob | None:
        """Reattach check: the job if it is Created/Queued/Processing, or Completed with its file
        still downloadable (Range 0-0 probe); None otherwise (unknown, failed, expired...)."""
        try:
            job = self.get_export(export_id)
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
            with attempt, self._core.open_file(export_id, "bytes=0-0") as resp:
                if resp.status_code in (200, 206):
                    return job
                if resp.status_code == 404 or resp.status_code == 410:
                    return None
                if resp.status_code >= 500:
                    raise TransientError(f"file probe: HTTP {resp.status_code}")
                return None
        return None  # pragma: no cover

    def supports_filter(self, export_filter: ExportFilter) -> bool:
        """Whether this subscription accepts `export_filter`'s type (updatedAt and the smart
        list filters may be disabled: 1035). Creates a tiny job with only `id` and cancels it
        without enqueuing, so no quota is used (tap-marketo's "Corona" check). Errors other
        than 1035 are raised."""
        request = ExportRequest(fields=["id"], filter=export_filter)
        try:
            job = self.create_export(request)
        except UnsupportedFilterError:
            return False
        try:
            self.cancel_export(job.export_id)
        except MarketoError as exc:  # the probe job is never enqueued; it simply expires
            log.info("marketo: could not cancel probe export %s: %s", job.export_id, exc)
        return True

    def exported_bytes_today(self, now: datetime | None = None) -> int:
        """Sum of fileSize of this user's Completed jobs finished since midnight America/Chicago
        (the bulk export quota day), by Marketo's clock unless `now` is given."""
        jobs = list(self.list_exports(["Completed"]))  # also refreshes server_now()
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
