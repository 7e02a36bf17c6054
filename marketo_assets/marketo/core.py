"""The request core: every Marketo call goes through here (throttle, access token, retry
policies of retry.py, error table of error_map.py, call count, Marketo's clock, events)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any, TypeVar

import httpx
import tenacity

from .auth import TokenManager
from .clock import ServerClock, quota_reset_time
from .error_map import Failure, check_envelope, error_for, first_error
from .errors import MarketoError, QueueFullError, TokenRefusedError, TransientError
from .exports import export_path
from .models import Event
from .retry import QUEUE_FULL, TOKEN_EXPIRED, TRANSIENT
from .settings import ClientSettings
from .throttle import Throttle
from .transport import transport_failure

__all__ = ["RequestCore"]

log = logging.getLogger("marketo_assets.marketo")
RATE_CODES = frozenset({"606", "615"})
T = TypeVar("T")


class RequestCore:
    """One path for every call of a MarketoClient (thread-safe)."""

    def __init__(
        self,
        settings: ClientSettings,
        http: httpx.Client,
        throttle: Throttle,
        *,
        on_event: Callable[[Event], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.http = http
        self.sleep = sleep
        self.clock = clock
        self.server_clock = ServerClock()
        self._throttle = throttle
        self._on_event = on_event
        self.auth = TokenManager(
            http, settings, clock=clock, on_auth=lambda data: self.emit("auth", None, data)
        )
        self._counter_lock = threading.Lock()
        self.calls_made = 0

    def emit(self, kind: str, export_id: str | None, data: dict[str, Any]) -> None:
        """Pass an Event to the on_event callback (whose errors are logged and ignored)."""
        if self._on_event is None:
            return
        try:
            self._on_event(Event(kind=kind, export_id=export_id, data=data))
        except Exception:
            log.warning("marketo: on_event callback raised on %s event (ignored)", kind)

    def server_now(self) -> datetime:
        return self.server_clock.now()

    # ------------------------------------------------------------------ retry policies
    def transient(self, export_id: str | None = None) -> tenacity.Retrying:
        """TRANSIENT, reporting each retry as `retry` (and `rate_limited`) events."""

        def before_sleep(rs: tenacity.RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            code = getattr(exc, "code", None)
            wait = round(rs.upcoming_sleep, 3)
            log.info("marketo: retrying after %s (wait %.1f s)", exc, rs.upcoming_sleep)
            self.emit(
                "retry",
                export_id,
                {
                    "attempt": rs.attempt_number,
                    "wait": wait,
                    "code": code,
                    "http_status": getattr(exc, "http_status", None),
                    "error": str(exc),
                },
            )
            if code in RATE_CODES:
                self.emit("rate_limited", export_id, {"code": code, "wait": wait})

        return TRANSIENT(self.settings, sleep=self.sleep, before_sleep=before_sleep)

    def _queue_full(self, export_id: str | None) -> tenacity.Retrying:
        def before_sleep(rs: tenacity.RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            message = exc.message if isinstance(exc, QueueFullError) else str(exc)
            delay = rs.upcoming_sleep
            self.emit(
                "enqueue_wait",
                export_id,
                {"wait": delay, "waited": rs.idle_for - delay, "message": message},
            )
            log.info("marketo: export queue full, waiting %.0f s", delay)

        return QUEUE_FULL(
            self.settings.queue_full_backoff, sleep=self.sleep, before_sleep=before_sleep
        )

    def _authorized(self, send: Callable[[str], T]) -> T:
        """`send(token)` under TOKEN_EXPIRED: a refused token is dropped, the next try fetches a
        new one."""
        for attempt in TOKEN_EXPIRED():
            with attempt:
                token = self.auth.token()
                try:
                    return send(token)
                except TokenRefusedError as exc:
                    self.auth.refused(token, reason=exc.code)
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _failure(
        self, env: dict[str, Any], method: str, path: str, context: dict[str, Any]
    ) -> Failure:
        code, message = first_error(env)
        return Failure(
            code=code,
            message=message,
            method=method,
            path=path,
            reset_at=quota_reset_time(self.server_now()),
            fields=list(context.get("fields") or []),
            filter_kind=context.get("filter"),
        )

    # ------------------------------------------------------------------ requests
    def _count_call(self) -> None:
        with self._counter_lock:
            self.calls_made += 1

    def _below_http(self, exc: httpx.TransportError, what: str) -> MarketoError:
        return transport_failure(exc, self.http.base_url.host, what)

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """One request (its throttle slot held by the caller), counted; errors below HTTP
        mapped (transport_failure)."""
        self._count_call()
        try:
            resp = self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise self._below_http(exc, f"{request.method} {request.url.path} failed") from None
        log.debug("marketo: %s %s -> HTTP %s", request.method, request.url.path, resp.status_code)
        self.server_clock.note(resp.headers.get("date"))
        return resp

    def _once(
        self,
        token: str,
        method: str,
        path: str,
        *,
        params: Any,
        json_body: Any,
        expect_result: bool,
        context: dict[str, Any],
    ) -> dict[str, Any]:
        request = self.http.build_request(
            method,
            path,
            params=params,
            json=json_body,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        with self._throttle.slot():
            resp = self._send(request)
        env = check_envelope(resp, method, path)
        if env.get("success") is False:
            error = error_for(self._failure(env, method, path, context))
            if error is not None:
                raise error
            return env  # a success told as an error (1029 "Job already queued")
        if expect_result and "result" not in env:
            raise TransientError(
                f"{method} {path}: Marketo answered without a `result` (will retry)"
            )
        return env

    def call(
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
        """One logical API call: QUEUE_FULL( TRANSIENT( TOKEN_EXPIRED( request ))). Returns the
        envelope (a benign `success: false` one, such as 1029 "already queued", too)."""

        def send(token: str) -> dict[str, Any]:
            return self._once(
                token,
                method,
                path,
                params=params,
                json_body=json_body,
                expect_result=expect_result,
                context=context or {},
            )

        for queued in self._queue_full(export_id):
            with queued:
                for attempt in self.transient(export_id):
                    with attempt:
                        return self._authorized(send)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def open_file(
        self, export_id: str, range_header: str | None, export_type: str = "leads"
    ) -> Iterator[httpx.Response]:
        """GET file.json as a stream (throttled and counted, its slot held while the body is
        read; 601/602 under TOKEN_EXPIRED). Transport errors while reading the body surface as
        TransientError (or HostNotFoundError)."""
        path = export_path(export_id, "file", export_type)
        headers = {"Accept-Encoding": "identity"}
        if range_header:
            headers["Range"] = range_header

        def send(token: str) -> tuple[httpx.Response, ExitStack]:
            held = ExitStack()
            held.enter_context(self._throttle.slot())
            try:
                request = self.http.build_request(
                    "GET", path, headers={**headers, "Authorization": f"Bearer {token}"}
                )
                resp = self._send(request, stream=True)
                held.callback(resp.close)
                self._check_file_envelope(resp, path)
            except httpx.TransportError as exc:
                held.close()
                raise self._below_http(exc, f"GET {path} failed") from None
            except BaseException:
                held.close()
                raise
            return resp, held

        resp, held = self._authorized(send)
        with held:
            try:
                yield resp
            except httpx.TransportError as exc:
                raise self._below_http(exc, f"GET {path} failed") from None

    def _check_file_envelope(self, resp: httpx.Response, path: str) -> None:
        """A small JSON answer to file.json is an error envelope (e.g. 601/602): raise it."""
        ctype = resp.headers.get("content-type", "")
        length = int(resp.headers.get("content-length") or 0)
        if resp.status_code != 200 or "json" not in ctype or not 0 < length <= 65536:
            return
        env = _maybe_envelope(resp.read())
        if env is not None and env.get("success") is False:
            error = error_for(self._failure(env, "GET", path, {}))
            if error is not None:
                raise error


def _maybe_envelope(body: bytes) -> dict[str, Any] | None:
    import json

    if not body.lstrip().startswith(b"{"):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "success" in value else None
