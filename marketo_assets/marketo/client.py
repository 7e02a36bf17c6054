"""MarketoClient: the bulk lead export cycle over Marketo's REST API (httpx, no dagster)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import tenacity

from .auth import TokenManager
from .errors import (
    CHICAGO,
    AuthenticationError,
    DailyCallLimitError,
    ExportJobCancelledError,
    ExportJobFailedError,
    ExportTimeoutError,
    InvalidExportIdError,
    InvalidFieldsError,
    InvalidRequestError,
    MarketoAPIError,
    MarketoError,
    QueueFullError,
    QuotaExceededError,
    TransientError,
    UnsupportedFilterError,
)
from .exports import ExportFilter, ExportJob, ExportRequest
from .models import DownloadResult, Event, LeadField, SmartList, StaticList
from .settings import ClientSettings
from .throttle import Throttle
from .transport import default_transport, transport_failure

__all__ = ["MarketoClient"]

log = logging.getLogger("marketo_assets.marketo")

AUTH_CODES = frozenset({"601", "602"})
TRANSIENT_CODES = frozenset({"604", "606", "608", "611", "614", "615", "713"})
RATE_CODES = frozenset({"606", "615"})
# 601/602: fetch a new token and repeat the call, this many times in a row at most. More than
# once: tokens may be revoked at any moment (also right after we fetched one); a service whose
# fresh tokens keep being refused fails with AuthenticationError.
AUTH_RETRIES = 3
EXPORT_BASE = "/bulk/v1/leads/export"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def checked_export_id(export_id: object, source: str = "the caller") -> str:
    """`export_id` if it is a UUID (the only form that goes into a URL path or file name)."""
    if not isinstance(export_id, str) or not _UUID.fullmatch(export_id):
        raise InvalidExportIdError(export_id, source)
    return export_id


def export_path(export_id: str, action: str) -> str:
    return f"{EXPORT_BASE}/{checked_export_id(export_id)}/{action}.json"


def _first_error(env: dict[str, Any]) -> tuple[str, str]:
    errs = env.get("errors") or []
    if errs and isinstance(errs, list):
        first = errs[0]
        if isinstance(first, dict):
            return str(first.get("code", "")), str(first.get("message", ""))
        return "", str(first)
    return "", ""


class _AuthRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code = code
        self.message = message


class MarketoClient:
    """Marketo bulk lead export client. Use as a context manager or call close().

    Thread-safe: calls may be made from several threads; the throttle and token are shared.
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
        self._on_event = on_event
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            base_url=settings.base_url,
            transport=transport if transport is not None else default_transport(),
            timeout=httpx.Timeout(settings.request_timeout),
            headers={"User-Agent": "marketo-assets/0.1"},
            follow_redirects=False,
        )
        # `throttle`: share one with other clients of the same Marketo instance (see
        # throttle.shared_throttle); default: this client's own.
        self._throttle = throttle or Throttle(
            settings.max_calls_per_window, settings.window_seconds, settings.max_concurrent
        )
        self._server_offset = 0.0  # Marketo's clock minus ours, from `Date` headers
        self._auth = TokenManager(
            self._http,
            settings,
            clock=clock,
            on_auth=lambda data: self._emit("auth", None, data),
        )
        self._counter_lock = threading.Lock()
        self.calls_made = 0
        self.calls_by_path: dict[str, int] = {}

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        return (
            f"MarketoClient(base_url={self.settings.base_url!r}, "
            f"client_id={self.settings.client_id!r}, calls_made={self.calls_made})"
        )

    def __enter__(self) -> MarketoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def auth_calls(self) -> int:
        """Identity calls made (not counted in calls_made; Marketo does not meter them)."""
        return self._auth.auth_calls

    def _emit(self, kind: str, export_id: str | None, data: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(Event(kind=kind, export_id=export_id, data=data))
        except Exception:
            log.warning("marketo: on_event callback raised on %s event (ignored)", kind)

    def _count_call(self, path: str) -> None:
        key = re.sub(r"/[0-9a-fA-F-]{36}/", "/{id}/", path)
        with self._counter_lock:
            self.calls_made += 1
            self.calls_by_path[key] = self.calls_by_path.get(key, 0) + 1

    # ------------------------------------------------------------------ request core
    def _send(
        self,
        method: str,
        path: str,
        token: str,
        *,
        params: Any = None,
        json_body: Any = None,
    ) -> httpx.Response:
        with self._throttle.slot():
            self._count_call(path)
            try:
                resp = self._http.request(
                    method,
                    path,
                    params=params,
                    json=json_body,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                )
            except httpx.TransportError as exc:
                raise transport_failure(
                    exc, self._http.base_url.host, f"{method} {path} failed"
                ) from None
        log.debug("marketo: %s %s -> HTTP %s", method, path, resp.status_code)
        self._note_server_time(resp.headers.get("date"))
        return resp

    def _note_server_time(self, date_header: str | None) -> None:
        """Track Marketo's clock (HTTP `Date`): the quota day is Marketo's, not this host's."""
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        self._server_offset = (server - datetime.now(UTC)).total_seconds()

    def server_now(self) -> datetime:
        """Marketo's current time as last seen in a response's `Date` header (else local time)."""
        return datetime.now(UTC) + timedelta(seconds=self._server_offset)

    @staticmethod
    def _envelope(resp: httpx.Response, method: str, path: str) -> dict[str, Any]:
        status = resp.status_code
        if status >= 500 or status in (408, 429):
            raise TransientError(f"{method} {path}: HTTP {status}", http_status=status)
        try:
            env = resp.json()
        except ValueError:
            env = None
        if status >= 400:
            if isinstance(env, dict) and env.get("success") is False:
                return env
            snippet = resp.text[:200].strip() if resp.content else ""
            raise MarketoAPIError(str(status), f"HTTP {status} for {method} {path}: {snippet}")
        if not isinstance(env, dict):
            raise TransientError(
                f"{method} {path}: HTTP {status} with a body that is not a JSON envelope",
                http_status=status,
            )
        return env

    def _raise_for_error(
        self, code: str, message: str, context: dict[str, Any], method: str, path: str
    ) -> None:
        """Map a `success:false` error to a typed exception. Returns only for benign errors."""
        lower = message.lower()
        if code in TRANSIENT_CODES:
            raise TransientError(f"Marketo error {code}: {message} ({method} {path})", code=code)
        if code == "1029":
            if "already queued" in lower:
                return
            if "too many jobs" in lower or ("queue" in lower and "quota" not in lower):
                raise QueueFullError(message)
            if "quota" in lower:
                raise QuotaExceededError(message, reset_at=self.quota_reset_time(self.server_now()))
            raise MarketoAPIError(code, message)
        if code == "1003" and "field" in lower:
            requested = context.get("fields") or []
            bad = [
                f for f in requested if re.search(rf"(?<![\w.]){re.escape(f)}(?![\w.])", message)
            ]
            if not bad and ":" in message:
                tail = message.split(":", 1)[1]
                bad = [p.strip(" '\"[]") for p in re.split(r"[,\s]+", tail) if p.strip(" '\"[]")]
            raise InvalidFieldsError(bad, message, code=code)
        if code == "1035":
            raise UnsupportedFilterError(context.get("filter"), message, code=code)
        if code == "607":
            raise DailyCallLimitError(message, reset_at=self.quota_reset_time(self.server_now()))
        if code == "603":
            raise MarketoAPIError(
                code,
                message,
                hint="The API user lacks a permission (Read-Only Lead / Asset) or the IP is "
                "not allowed; fix the role of the API-only user",
            )
        if not code:
            raise TransientError(f"{method} {path}: success=false without an error code")
        raise MarketoAPIError(code, message)

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        params: Any,
        json_body: Any,
        expect_result: bool,
        context: dict[str, Any],
    ) -> dict[str, Any]:
        token = self._auth.token()
        for auth_try in range(AUTH_RETRIES + 1):
            resp = self._send(method, path, token, params=params, json_body=json_body)
            env = self._envelope(resp, method, path)
            if env.get("success") is False:
                code, message = _first_error(env)
                if code in AUTH_CODES:
                    if auth_try < AUTH_RETRIES:
                        token = self._auth.invalidate(token, reason=code)
                        continue
                    raise AuthenticationError(
                        f"Marketo refused {AUTH_RETRIES} freshly issued access tokens in a row "
                        f"({code}: {message}) on "
                        f"{method} {path}. Check that the LaunchPoint service and its API-only "
                        "user are active"
                    )
                self._raise_for_error(code, message, context, method, path)
                env.setdefault("_benign_code", code)
                env.setdefault("_benign_message", message)
                return env
            if expect_result and "result" not in env:
                raise TransientError(
                    f"{method} {path}: Marketo answered without a `result` (will retry)"
                )
            return env
        raise AssertionError("unreachable")  # pragma: no cover

    def _stop(self, rs: tenacity.RetryCallState) -> bool:
        if rs.attempt_number >= self.settings.max_attempts:
            return True
        elapsed = max(rs.seconds_since_start or 0.0, rs.idle_for)
        return elapsed + (rs.upcoming_sleep or 0.0) > self.settings.max_retry_seconds

    def _before_sleep(self, export_id: str | None) -> Callable[[tenacity.RetryCallState], None]:
        def hook(rs: tenacity.RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            code = getattr(exc, "code", None)
            data = {
                "attempt": rs.attempt_number,
                "wait": round(rs.upcoming_sleep, 3),
                "code": code,
                "http_status": getattr(exc, "http_status", None),
                "error": str(exc),
            }
            log.info("marketo: retrying after %s (wait %.1f s)", exc, rs.upcoming_sleep)
            self._emit("retry", export_id, data)
            if code in RATE_CODES:
                self._emit("rate_limited", export_id, {"code": code, "wait": data["wait"]})

        return hook

    def _retrying(self, export_id: str | None = None) -> tenacity.Retrying:
        s = self.settings
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            stop=self._stop,
            wait=tenacity.wait_exponential_jitter(
                initial=s.retry_initial_wait, max=s.retry_max_wait, jitter=s.retry_initial_wait
            ),
            sleep=self._sleep,
            before_sleep=self._before_sleep(export_id),
            reraise=True,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        expect_result: bool = True,
        context: dict[str, Any] | None = None,
        export_id: str | None = None,
    ) -> dict[str, Any]:
        """One logical API call: auth, throttle, retries, error mapping, queue-full backoff."""
        schedule = list(self.settings.queue_full_backoff)
        waited = 0.0
        while True:
            try:
                for attempt in self._retrying(export_id):
                    with attempt:
                        return self._attempt(
                            method,
                            path,
                            params=params,
                            json_body=json_body,
                            expect_result=expect_result,
                            context=context or {},
                        )
            except QueueFullError as exc:
                if not schedule:
                    raise QueueFullError(exc.message, waited_seconds=waited) from None
                delay = float(schedule.pop(0))
                self._emit(
                    "enqueue_wait",
                    export_id,
                    {"wait": delay, "waited": waited, "message": exc.message},
                )
                log.info("marketo: export queue full, waiting %.0f s", delay)
                self._sleep(delay)
                waited += delay
        raise AssertionError("unreachable")  # pragma: no cover

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
            env = self._call("GET", "/rest/v1/leads/describe2.json")
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
            env = self._call("GET", "/rest/v1/leads/describe.json", params=params)
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
            env = self._call("GET", "/rest/v1/lists.json", params=params, expect_result=False)
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
            env = self._call(
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
        env = self._call(
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
        env = self._call("POST", export_path(export_id, "enqueue"), export_id=export_id)
        if env.get("success") is False:  # 1029 "Job already queued"
            return self.get_export(export_id)
        return self._job_from(env, export_id)

    def get_export(self, export_id: str) -> ExportJob:
        env = self._call("GET", export_path(export_id, "status"), export_id=export_id)
        return self._job_from(env, export_id)

    def cancel_export(self, export_id: str) -> ExportJob:
        env = self._call("POST", export_path(export_id, "cancel"), export_id=export_id)
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
            env = self._call("GET", f"{EXPORT_BASE}.json", params=params, expect_result=False)
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

        self._emit(
            "status",
            job.export_id,
            {
                "status": job.status,
                "previous": previous,
                "elapsed_seconds": round(self._clock() - started, 3),
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
        started = self._clock()
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
            remaining = limit - (self._clock() - started)
            if remaining <= 0:
                cancelled = False
                try:
                    self.cancel_export(export_id)
                    cancelled = True
                except MarketoError as exc:
                    log.warning("marketo: could not cancel timed-out export %s: %s", export_id, exc)
                raise ExportTimeoutError(export_id, limit, job.status, cancelled)
            self._sleep(min(interval, remaining))
            polls += 1
            job = self.get_export(export_id)

    # ------------------------------------------------------------------ files
    @contextmanager
    def _open_file(self, export_id: str, range_header: str | None) -> Iterator[httpx.Response]:
        """Stream GET file.json (throttled, counted, authenticated). 601/602 -> reauth (up to
        AUTH_RETRIES times in a row)."""
        path = export_path(export_id, "file")
        token = self._auth.token()
        for auth_try in range(AUTH_RETRIES + 1):
            headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
            if range_header:
                headers["Range"] = range_header
            with self._throttle.slot():
                self._count_call(path)
                try:
                    with self._http.stream("GET", path, headers=headers) as resp:
                        ctype = resp.headers.get("content-type", "")
                        if resp.status_code == 200 and "json" in ctype:
                            length = int(resp.headers.get("content-length") or 0)
                            if 0 < length <= 65536:
                                body = resp.read()
                                env = _maybe_envelope(body)
                                if env is not None and env.get("success") is False:
                                    code, message = _first_error(env)
                                    if code in AUTH_CODES:
                                        if auth_try < AUTH_RETRIES:
                                            token = self._auth.invalidate(token, reason=code)
                                            continue
                                        raise AuthenticationError(
                                            f"Marketo refused {AUTH_RETRIES} freshly issued "
                                            f"access tokens in a row ({code}: {message}) on "
                                            f"GET {path}"
                                        )
                                    self._raise_for_error(code, message, {}, "GET", path)
                        yield resp
                        return
                except httpx.TransportError as exc:
                    raise transport_failure(
                        exc, self._http.base_url.host, f"GET {path} failed"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def download_export(self, job: ExportJob, dest: Path) -> DownloadResult:
        """Download a Completed job's file to `dest` (see download.download_export)."""
        from .download import download_export

        return download_export(self, job, Path(dest))

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
        for attempt in self._retrying(export_id):
            with attempt, self._open_file(export_id, "bytes=0-0") as resp:
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
        now = now or self.server_now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        local = now.astimezone(CHICAGO)
        day_start = datetime(local.year, local.month, local.day, tzinfo=CHICAGO)
        total = 0
        for job in jobs:
            if job.status == "Completed" and job.finished_at and job.finished_at >= day_start:
                total += job.file_size or 0
        return total

    @staticmethod
    def quota_reset_time(now: datetime | None = None) -> datetime:
        """Next midnight America/Chicago after `now` (UTC-aware datetime)."""
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        local = now.astimezone(CHICAGO)
        nxt = (local + timedelta(days=1)).date()
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=CHICAGO).astimezone(UTC)


def _maybe_envelope(body: bytes) -> dict[str, Any] | None:
    import json

    if not body.lstrip().startswith(b"{"):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "success" in value else None
