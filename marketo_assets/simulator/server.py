"""The simulator's HTTP server: Marketo endpoints, limits, auth, jobs and the /_sim control API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import os
import random
import shutil
import tempfile
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import activity_jobs, deleted, program_jobs
from .activities import activity_types
from .activity_data import ActivityModel
from .data import FIELDS, DataSet, ListDef, iso
from .faults import Drop, Faults, flip
from .files import DELIMITERS, SSV_SEPARATORS
from .jobs import (
    KINDS,
    STATUSES,
    ApiError,
    FileInfo,
    Job,
    generate,
    select_ids,
    signature,
    snapshot_list,
    validate_filter,
    validate_request,
)
from .lifecycle import Lifecycle
from .programs import Program, make_programs

CHICAGO = ZoneInfo("America/Chicago")
BASES = {  # bulk export path -> job type; one queue and one quota for all
    "/bulk/v1/leads/export": "leads",
    "/bulk/v1/activities/export": "activities",
    "/bulk/v1/program/members/export": "program_members",
}
CHUNK = 1 << 20  # file streaming chunk
NO_ASSETS = "No assets found for the given search criteria."
log = logging.getLogger("marketo_assets.simulator")


@dataclass
class Config:
    """Settings that /_sim/config may change at run time."""

    status_interval: float = 60.0
    rows_per_second: float = 50000.0  # 0 = as fast as possible
    quota_mb: float = 500
    disabled_filters: list[str] = field(default_factory=list)  # "updatedAt", "smartList"
    token_ttl: int = 3600
    daily_call_limit: int = 50000
    allow_query_token: bool = False
    latency: float = 0.0  # extra seconds per Marketo call (e.g. to provoke 615 in tests)
    download_bytes_per_second: float = 0.0  # file.json speed (0 = as fast as possible)
    rate_limit: int = 100
    rate_window: float = 20.0
    max_in_flight: int = 10
    max_processing: int = 2
    max_queue: int = 10
    file_retention_days: float = 7
    list_retention_days: float = 7
    status_retention_days: float = 30
    ssv_separator: str = ";"  # SSV files: ";" or " " (Marketo's pages name both)
    activities_per_lead: float = 8.0  # mean, "New Lead" included
    deleted_lead_rate: float = 0.01  # share of leads deleted (within 120 days of creation)
    merge_rate: float = 0.005  # share of leads merged into an older lead
    programs: int = 10

    @property
    def quota_bytes(self) -> int:
        return int(self.quota_mb * 1024 * 1024)


@dataclass
class Token:
    client_id: str
    expires: float
    revoked: str | None = None  # "601" | "602"


def _is_loopback(host: str | None) -> bool:
    return host is not None and (host.startswith("127.") or host in ("::1", "localhost"))


def _drop_filter(record: logging.LogRecord) -> bool:
    """Hide uvicorn's traceback for deliberate connection drops."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, Drop)


class Simulator:
    def __init__(
        self,
        data: DataSet,
        config: Config,
        clients: dict[str, str],
        *,
        faults: str | None = None,
        now: str | None = None,
        on_ready=None,
    ) -> None:
        self.ds = data
        self.cfg = config
        self.clients = dict(clients)
        self.offset = 0.0
        if now:
            dt = datetime.fromisoformat(now.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            self.offset = dt.timestamp() - time.time()
        self.faults = Faults(seed=data.seed)
        self.tokens: dict[str, Token] = {}
        self.current: dict[str, str] = {}  # client_id -> token
        self.jobs: dict[str, Job] = {}
        self.cancelled: list[str] = []
        self.creates: dict[str, int] = {}  # signature -> creates so far
        self.window: deque[float] = deque()
        self.arrivals: deque[float] = deque()  # every Marketo call, accepted or not
        self.max_window_calls_seen = 0  # most calls accepted in one rate window
        self.max_window_arrivals_seen = 0  # most calls received in one rate window
        self.limit_rejections = {"606": 0, "615": 0}  # real limits hit (not injected faults)
        self.file_requests: dict[str, list[dict]] = {}  # exportId -> each file.json response
        self.in_flight = 0
        self.max_in_flight_seen = 0
        self.max_processing_seen = 0
        self.max_queue_seen = 0  # most jobs Queued or Processing at once (all clients)
        self.daily_calls: dict[str, int] = {}
        self.daily_calls_by_user: dict[str, dict[str, int]] = {}  # day -> client id -> calls
        self.requests: dict[str, Any] = {
            "total": 0,
            "marketo": 0,
            "identity": 0,
            "by_path": {},
            "by_code": {},
            "by_status": {},
        }
        self.files: dict[str, Future[FileInfo]] = {}  # cache key -> the file being made
        self._models: dict[tuple, Any] = {}  # derived data per config (lifecycle, activities)
        self.tmp = tempfile.mkdtemp(prefix="marketo-sim-")
        os.chmod(self.tmp, 0o700)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sim-export")
        self.rng = random.Random(f"ids:{data.seed}")
        self.on_ready = on_ready
        self._ticker: asyncio.Task | None = None
        if faults:
            self.set_faults(faults)
        logging.getLogger("uvicorn.error").addFilter(_drop_filter)
        self.app = self._build_app()

    # ---- clock -------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def last_reset(self, now: float) -> float:
        d = datetime.fromtimestamp(now, CHICAGO).date()
        return datetime(d.year, d.month, d.day, tzinfo=CHICAGO).timestamp()

    def next_reset(self, now: float) -> float:
        d = datetime.fromtimestamp(now, CHICAGO).date() + timedelta(days=1)
        return datetime(d.year, d.month, d.day, tzinfo=CHICAGO).timestamp()

    def quota_used(self, now: float) -> int:
        since = self.last_reset(now)
        return sum(
            j.file.size
            for j in self.jobs.values()
            if j.status == "Completed" and j.file and (j.finished or 0) >= since
        )

    def request_id(self) -> str:
        return f"{self.rng.getrandbits(16):04x}#{int(self.now() * 1000):x}"

    # ---- envelopes ---------------------------------------------------------------------------
    def ok(self, result, **extra) -> JSONResponse:
        return JSONResponse(
            {"requestId": self.request_id(), "result": result, "success": True, **extra}
        )

    def fail(self, code: str, message: str) -> JSONResponse:
        self.requests["by_code"][code] = self.requests["by_code"].get(code, 0) + 1
        return JSONResponse(
            {
                "requestId": self.request_id(),
                "success": False,
                "errors": [{"code": code, "message": message}],
            }
        )

    # ---- derived data (rebuilt when the config it depends on changes) ------------------------
    def _model(self, key: tuple, build):
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = build()
        return model

    def lifecycle(self) -> Lifecycle:
        rates = (self.cfg.deleted_lead_rate, self.cfg.merge_rate)
        return self._model(("life", *rates), lambda: Lifecycle(self.ds, *rates))

    def programs(self) -> list[Program]:
        n = int(self.cfg.programs)
        return self._model(("programs", n), lambda: make_programs(self.ds, n))

    def activity_model(self) -> ActivityModel:
        """Built in the caller's thread (a worker or to_thread: the lifecycle pass takes time)."""
        per_lead = float(self.cfg.activities_per_lead)
        life, progs = self.lifecycle(), self.programs()
        key = ("activities", per_lead, life.rates, len(progs))
        return self._model(key, lambda: ActivityModel(self.ds, per_lead, life, progs))

    def call(self, handler):
        """A route endpoint for a family module's `handler(sim, request)`."""

        async def endpoint(request: Request) -> Response:
            return await handler(self, request)

        return endpoint

    # ---- app ---------------------------------------------------------------------------------
    def _build_app(self):
        r = Route
        routes = [
            r("/identity/oauth/token", self.identity, methods=["GET", "POST"]),
            r("/rest/v1/leads/describe2.json", self.describe2, methods=["GET"]),
            r("/rest/v1/leads/describe.json", self.describe, methods=["GET"]),
            r("/rest/v1/lists.json", self.lists, methods=["GET"]),
            r("/rest/asset/v1/smartLists.json", self.smart_lists, methods=["GET"]),
            r("/rest/v1/stats/usage.json", self.usage, methods=["GET"]),
            r("/rest/v1/activities/types.json", self.activity_types, methods=["GET"]),
            r("/rest/asset/v1/programs.json", self.call(program_jobs.programs), methods=["GET"]),
            r(
                "/rest/v1/programs/members/describe.json",
                self.call(program_jobs.describe),
                methods=["GET"],
            ),
            r("/rest/v1/activities/pagingtoken.json", self.call(deleted.paging_token)),
            r("/rest/v1/activities/deletedleads.json", self.call(deleted.deleted_leads)),
        ]
        for base in BASES:
            routes += [
                r(f"{base}/create.json", self.create, methods=["POST"]),
                r(f"{base}.json", self.list_jobs, methods=["GET"]),
                r(base + "/{eid}/enqueue.json", self.enqueue, methods=["POST"]),
                r(base + "/{eid}/status.json", self.status, methods=["GET"]),
                r(base + "/{eid}/cancel.json", self.cancel, methods=["POST"]),
                r(base + "/{eid}/file.json", self.file, methods=["GET"]),
            ]
        routes += [
            r("/_sim/state", self.c_state, methods=["GET"]),
            r("/_sim/config", self.c_config, methods=["GET", "POST"]),
            r("/_sim/clock/advance", self.c_advance, methods=["POST"]),
            r("/_sim/tick", self.c_tick, methods=["POST"]),
            r("/_sim/faults", self.c_faults, methods=["GET", "POST", "DELETE"]),
            r("/_sim/truth", self.c_truth, methods=["POST"]),
            r("/_sim/truth/activities", self.call(activity_jobs.truth), methods=["POST"]),
            r("/_sim/truth/program_members", self.call(program_jobs.truth), methods=["POST"]),
            r("/_sim/truth/deleted_leads", self.call(deleted.truth_deleted), methods=["GET"]),
            r("/_sim/truth/merges", self.call(deleted.truth_merges), methods=["GET"]),
            r("/_sim/jobs/record", self.c_record, methods=["GET"]),
            r("/_sim/leads/{lid:int}", self.c_lead, methods=["GET", "POST"]),
            r("/_sim/lists", self.c_lists, methods=["GET"]),
            r("/_sim/lists/{kind}", self.c_list_create, methods=["POST"]),
            r("/_sim/lists/{kind}/{list_id:int}", self.c_list_delete, methods=["DELETE"]),
            r("/_sim/lists/{kind}/{list_id:int}/members", self.c_members, methods=["POST"]),
            r("/_sim/jobs/foreign", self.c_foreign, methods=["POST", "DELETE"]),
            r("/_sim/tokens/revoke", self.c_revoke, methods=["POST"]),
            r("/_sim/clients", self.c_clients, methods=["POST"]),
        ]
        app = Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={404: self._not_found, 405: self._bad_method},
        )
        return self._middleware(app)

    async def _not_found(self, request: Request, exc) -> Response:
        if request.url.path.startswith("/_sim/"):
            return JSONResponse({"error": "not found"}, 404)
        return self.fail("610", "Requested resource not found")

    async def _bad_method(self, request: Request, exc) -> Response:
        if request.url.path.startswith("/_sim/"):
            return JSONResponse({"error": "method not allowed"}, 405)
        return self.fail("605", "HTTP Method not supported")

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        self._ticker = asyncio.create_task(self._tick_loop())
        self.pool.submit(self.ds.warm)  # makes the first big export faster
        if self.on_ready:
            self.on_ready()
        try:
            yield
        finally:
            self._ticker.cancel()
            self.close()

    def close(self) -> None:
        self.ds.stopping = True
        self.pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _middleware(self, app):
        async def asgi(scope, receive, send):
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            path = scope["path"]
            if path.startswith("/_sim/"):
                client = scope.get("client")
                if not _is_loopback(client[0] if client else None):
                    await PlainTextResponse("forbidden", 403)(scope, receive, send)
                    return
                await app(scope, receive, send)
                return
            await self._marketo_call(app, scope, receive, send, path)

        return asgi

    def _count_path(self, path: str) -> None:
        parts = path.split("/")
        if parts[1:2] == ["bulk"] and "export" in parts[:-2]:
            k = parts.index("export") + 1
            if len(parts) == k + 2:  # .../export/<id>/<verb>.json
                parts[k] = "{exportId}"
        key = "/".join(parts)
        by_path = self.requests["by_path"]
        by_path[key] = by_path.get(key, 0) + 1

    async def _marketo_call(self, app, scope, receive, send, path: str) -> None:
        req = self.requests
        req["total"] += 1
        self._count_path(path)

        async def send_counted(message):
            if message["type"] == "http.response.start":
                st = str(message["status"])
                req["by_status"][st] = req["by_status"].get(st, 0) + 1
                # Like any HTTP server, a `Date` header - on the simulated clock.
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", formatdate(self.now(), usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        if path == "/identity/oauth/token":  # exempt from limits
            req["identity"] += 1
            await app(scope, receive, send_counted)
            return
        req["marketo"] += 1
        self._note_arrival()
        self.in_flight += 1
        self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
        try:
            if self.cfg.latency > 0:
                await asyncio.sleep(self.cfg.latency)
            resp = self._gate(scope)
            if resp is not None:
                await resp(scope, receive, send_counted)
                return
            await app(scope, receive, send_counted)
        finally:
            self.in_flight -= 1

    def _note_arrival(self) -> None:
        now, arrivals = self.now(), self.arrivals
        arrivals.append(now)
        while arrivals and arrivals[0] <= now - self.cfg.rate_window:
            arrivals.popleft()
        self.max_window_arrivals_seen = max(self.max_window_arrivals_seen, len(arrivals))

    def _note_queue(self) -> None:
        busy = sum(1 for j in self.jobs.values() if j.status in ("Queued", "Processing"))
        self.max_queue_seen = max(self.max_queue_seen, busy)

    def _gate(self, scope) -> Response | None:
        """Faults, concurrency, auth, rate and daily limits. None = go ahead."""
        fault = self.faults.call_fault()
        if fault is not None:
            kind, code = fault
            if kind == "drop":
                return _DropResponse()
            if kind == "http":
                if code == "502":
                    return Response(
                        "<html><body><h1>502 Bad Gateway</h1></body></html>",
                        502,
                        media_type="text/html",
                    )
                text = "Service Unavailable" if code == "503" else "Internal Server Error"
                return JSONResponse({"error": text}, int(code))
            return self.fail(code, self._limit_message(code))
        if self.in_flight > self.cfg.max_in_flight:
            self.limit_rejections["615"] += 1
            return self.fail("615", self._limit_message("615"))
        revoke = self.faults.revoke_now()
        if revoke:
            for t in self.tokens.values():
                t.revoked = t.revoked or revoke
        owner, err = self._authenticate(scope)
        if err is not None or owner is None:
            return err
        now = self.now()
        win = self.window
        while win and win[0] <= now - self.cfg.rate_window:
            win.popleft()
        if len(win) >= self.cfg.rate_limit:
            self.limit_rejections["606"] += 1
            return self.fail("606", self._limit_message("606"))
        day = datetime.fromtimestamp(now, CHICAGO).date().isoformat()
        if self.daily_calls.get(day, 0) >= self.cfg.daily_call_limit:
            return self.fail("607", "Daily quota reached")
        win.append(now)
        self.max_window_calls_seen = max(self.max_window_calls_seen, len(win))
        self.daily_calls[day] = self.daily_calls.get(day, 0) + 1
        users = self.daily_calls_by_user.setdefault(day, {})
        users[owner] = users.get(owner, 0) + 1
        scope.setdefault("state", {})["owner"] = owner
        return None

    def _limit_message(self, code: str) -> str:
        if code == "606":
            return (
                f"Max rate limit '{self.cfg.rate_limit}' exceeded with in "
                f"'{int(self.cfg.rate_window)}' secs"
            )
        return f"Concurrent access limit '{self.cfg.max_in_flight}' reached"

    def _authenticate(self, scope) -> tuple[str | None, Response | None]:
        token = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                text = v.decode("latin-1").strip()
                if text[:7].lower() == "bearer ":
                    token = text[7:].strip()
        if token is None and self.cfg.allow_query_token:
            qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if qs.get("access_token"):
                token = qs["access_token"][0]
        if not token:
            return None, self.fail("600", "Empty access token")
        t = self.tokens.get(token)
        if t is None or t.revoked == "601":
            return None, self.fail("601", "Access token invalid")
        if t.revoked == "602" or self.now() >= t.expires:
            return None, self.fail("602", "Access token expired")
        return t.client_id, None

    # ---- identity ----------------------------------------------------------------------------
    async def identity(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":  # form body (no python-multipart needed for urlencoded)
            raw = (await request.body()).decode("utf-8", "replace")
            if "=" in raw and not raw.lstrip().startswith("{"):
                params.update({k: v[0] for k, v in parse_qs(raw).items()})
        if params.get("grant_type") != "client_credentials":
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "grant_type must be client_credentials",
                },
                400,
            )
        cid, secret = params.get("client_id", ""), params.get("client_secret", "")
        if not cid or self.clients.get(cid) != secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Bad client credentials"}, 401
            )
        now = self.now()
        tok = self.current.get(cid)
        t = self.tokens.get(tok) if tok else None
        if t is None or t.revoked or now >= t.expires:
            tok = f"{uuid.uuid4()}:sim"  # random per start, like Marketo
            t = Token(cid, now + self.cfg.token_ttl)
            self.tokens[tok] = t
            self.current[cid] = tok
        return JSONResponse(
            {
                "access_token": tok,
                "token_type": "bearer",
                "expires_in": max(0, int(t.expires - now)),
                "scope": f"{cid}@api.sim.example",
            }
        )

    # ---- describe / lists --------------------------------------------------------------------
    async def describe2(self, request: Request) -> Response:
        fields = []
        for f in FIELDS:
            item: dict[str, Any] = {
                "name": f.name,
                "displayName": f.display,
                "dataType": f.data_type,
            }
            if f.length:
                item["length"] = f.length
            item.update(updateable=f.updateable, crmManaged=f.crm)
            fields.append(item)
        searchable = [
            ["email"],
            ["id"],
            ["cookies"],
            ["externalCompanyId"],
            ["sfdcLeadOwnerId"],
            ["firstName", "lastName", "email"],
        ]
        return self.ok([{"name": "API Lead", "searchableFields": searchable, "fields": fields}])

    async def describe(self, request: Request) -> Response:
        out = []
        for i, f in enumerate(FIELDS):
            item = {"id": 1 + i * 2, "displayName": f.display, "dataType": f.data_type}
            if f.length:
                item["length"] = f.length
            ro = not f.updateable
            item["rest"] = {"name": f.name, "readOnly": ro}
            item["soap"] = {"name": f.name[0].upper() + f.name[1:], "readOnly": ro}
            out.append(item)
        return self.ok(out)

    def _page(self, request: Request, items: list, default: int, cap: int):
        """batchSize + nextPageToken paging (token = base64 offset)."""
        try:
            size = int(request.query_params.get("batchSize", default))
        except ValueError:
            raise ApiError("1003", "Invalid batchSize") from None
        if size <= 0:
            raise ApiError("1003", "Invalid batchSize")
        size = min(size, cap)
        start = 0
        token = request.query_params.get("nextPageToken")
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])
            except Exception:
                raise ApiError("1003", "Invalid nextPageToken") from None
        page = items[start : start + size]
        extra = {}
        if start + size < len(items):
            extra["nextPageToken"] = base64.urlsafe_b64encode(f"p:{start + size}".encode()).decode()
        return page, extra

    async def lists(self, request: Request) -> Response:
        q = request.query_params

        def multi(name):
            return {v for raw in q.getlist(name) for v in raw.split(",") if v}

        ids, names = multi("id"), multi("name")
        progs, wss = multi("programName"), multi("workspaceName")
        items = []
        for lst in sorted(
            (x for x in self.ds.lists.values() if x.kind == "static"), key=lambda x: x.id
        ):
            if (ids and str(lst.id) not in ids) or (names and lst.name not in names):
                continue
            if (progs and lst.program not in progs) or (wss and lst.workspace not in wss):
                continue
            items.append(
                {
                    "id": lst.id,
                    "name": lst.name,
                    "description": lst.description,
                    "programName": lst.program,
                    "workspaceName": lst.workspace,
                    "createdAt": iso(lst.created),
                    "updatedAt": iso(lst.updated),
                }
            )
        try:
            page, extra = self._page(request, items, 300, 300)
        except ApiError as e:
            return self.fail(e.code, e.message)
        return self.ok(page, **extra)

    async def smart_lists(self, request: Request) -> Response:
        q = request.query_params
        try:
            offset = int(q.get("offset", 0))
            max_return = min(int(q.get("maxReturn", 20)), 200)
        except ValueError:
            return self.fail("1003", "Invalid offset or maxReturn")
        lo = q.get("earliestUpdatedAt")
        hi = q.get("latestUpdatedAt")
        items = []
        for lst in sorted(
            (x for x in self.ds.lists.values() if x.kind == "smart"), key=lambda x: x.id
        ):
            if lo and lst.updated < _loose_date(lo):
                continue
            if hi and lst.updated > _loose_date(hi):
                continue
            items.append(
                {
                    "id": lst.id,
                    "name": lst.name,
                    "description": lst.description,
                    "createdAt": _asset_date(lst.created),
                    "updatedAt": _asset_date(lst.updated),
                    "url": f"https://app-sim.marketo.com/#SL{lst.id}A1",
                    "folder": {"id": lst.folder_id, "type": "Folder"},
                    "workspace": lst.workspace,
                }
            )
        page = items[offset : offset + max_return] if max_return > 0 else []
        base = {"requestId": self.request_id(), "success": True, "errors": []}
        if not page:
            return JSONResponse(base | {"warnings": [NO_ASSETS]})
        return JSONResponse(base | {"warnings": [], "result": page})

    # ---- usage / activity types ---------------------------------------------------------------
    async def usage(self, request: Request) -> Response:
        """Calls used today (Marketo's day: America/Chicago), per API user; this call counts."""
        day = datetime.fromtimestamp(self.now(), CHICAGO).date().isoformat()
        users = self.daily_calls_by_user.get(day, {})
        return self.ok(
            [
                {
                    "date": f"{day}T00:00:00Z",
                    "total": self.daily_calls.get(day, 0),
                    "users": [
                        {"userId": f"{cid}@api.sim.example", "count": n}
                        for cid, n in sorted(users.items())
                    ],
                }
            ]
        )

    async def activity_types(self, request: Request) -> Response:
        return self.ok(activity_types())

    # ---- bulk export -------------------------------------------------------------------------
    def _owner(self, request: Request) -> str:
        return request.scope["state"]["owner"]

    def _kind(self, request: Request) -> str:
        path = request.url.path
        for base, kind in BASES.items():
            if path.startswith(base + "/") or path == base + ".json":
                return kind
        raise AssertionError(path)

    def _find(self, request: Request) -> Job:
        job = self.jobs.get(request.path_params["eid"])
        gone = (
            job is not None
            and job.finished is not None
            and (self.now() > job.finished + self.cfg.status_retention_days * 86400)
        )
        wrong = job is not None and (
            job.owner != self._owner(request) or job.kind != self._kind(request)
        )
        if job is None or wrong or job.foreign or gone:
            raise ApiError("1003", f"Export id {request.path_params['eid']} not found")
        return job

    def _quota_error(self) -> ApiError | None:
        if self.quota_used(self.now()) >= self.cfg.quota_bytes:
            q = self.cfg.quota_mb
            return ApiError("1029", f"Export daily quota {q:g}MB exceeded.")
        return None

    def _content_type_error(self, request: Request, takes_body: bool) -> Response | None:
        """612 like Marketo: a POST body must come as application/json (a POST without a body,
        enqueue or cancel, may leave the header out)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json" or (not ctype and not takes_body):
            return None
        return self.fail("612", "Invalid Content Type")

    async def create(self, request: Request) -> Response:
        bad = self._content_type_error(request, takes_body=True)
        if bad is not None:
            return bad
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return self.fail("609", "Invalid JSON")
        kind = self._kind(request)
        disabled = set(self.cfg.disabled_filters)
        try:
            sel: Any
            if kind == "activities":
                req, sel = activity_jobs.validate_request(body)
            elif kind == "program_members":
                req, sel = program_jobs.validate_request(self.programs(), body, disabled)
            else:
                req, sel = validate_request(self.ds, body, disabled)
            err = self._quota_error()
            if err:
                raise err
        except ApiError as e:
            return self.fail(e.code, e.message)
        sig = kind + ":" + signature(req)
        self.creates[sig] = self.creates.get(sig, 0) + 1
        eid = str(uuid.uuid4())  # random per start, like Marketo (the data stays seeded)
        job = Job(
            eid,
            self._owner(request),
            req,
            sel,
            self.now(),
            create_count=self.creates[sig],
            kind=kind,
            clock=self.now,
        )
        self.jobs[eid] = job
        return self.ok([job.public()])

    async def enqueue(self, request: Request) -> Response:
        bad = self._content_type_error(request, takes_body=False)
        if bad is not None:
            return bad
        try:
            job = self._find(request)
            if job.status in ("Queued", "Processing"):
                raise ApiError("1029", "Job already queued")
            if job.status != "Created":
                raise ApiError("1003", f"Export job is {job.status} and cannot be enqueued")
            err = self._quota_error()
            if err:
                raise err
            busy = sum(1 for j in self.jobs.values() if j.status in ("Queued", "Processing"))
            if busy >= self.cfg.max_queue:
                raise ApiError("1029", f"Too many jobs ({self.cfg.max_queue}) in queue")
        except ApiError as e:
            return self.fail(e.code, e.message)
        job.status = "Queued"
        job.queued = self.now()
        self._note_queue()
        return self.ok([job.public()])

    async def status(self, request: Request) -> Response:
        try:
            job = self._find(request)
        except ApiError as e:
            return self.fail(e.code, e.message)
        return self.ok([job.public()])

    async def cancel(self, request: Request) -> Response:
        bad = self._content_type_error(request, takes_body=False)
        if bad is not None:
            return bad
        try:
            job = self._find(request)
        except ApiError as e:
            return self.fail(e.code, e.message)
        if job.status in ("Created", "Queued", "Processing"):
            job.status = "Cancelled"
            self.cancelled.append(job.export_id)
        return self.ok([job.public()])  # terminal jobs: answered unchanged

    async def list_jobs(self, request: Request) -> Response:
        wanted = {
            s.strip().lower()
            for raw in request.query_params.getlist("status")
            for s in raw.split(",")
            if s.strip()
        }
        wanted = {"cancelled" if s == "canceled" else s for s in wanted}
        known = {s.lower() for s in STATUSES}
        if wanted - known:
            return self.fail("1003", "Invalid status: " + ", ".join(sorted(wanted - known)))
        owner, kind = self._owner(request), self._kind(request)
        since = self.now() - self.cfg.list_retention_days * 86400
        items = [
            j.public()
            for j in sorted(self.jobs.values(), key=lambda j: j.created)
            if j.owner == owner
            and j.kind == kind
            and not j.foreign
            and j.created >= since
            and (not wanted or j.status.lower() in wanted)
        ]
        try:
            page, extra = self._page(request, items, 300, 300)
        except ApiError as e:
            return self.fail(e.code, e.message)
        return self.ok(page, **extra)

    async def file(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["eid"])
        if (
            job is None
            or job.foreign
            or job.owner != self._owner(request)
            or job.kind != self._kind(request)
        ):
            return PlainTextResponse("Export job not found", 404)
        if job.status != "Completed" or job.file is None:
            return PlainTextResponse(f"Export job is not completed (status {job.status})", 404)
        if self.now() > (job.finished or 0) + self.cfg.file_retention_days * 86400:
            return PlainTextResponse("Export file has expired", 404)
        if self.faults.file_gone(job.export_id):
            self.faults.count("file_gone_404")
            return PlainTextResponse("Export file not found", 404)
        size = job.file.size
        rng = request.headers.get("range")
        start, end, status = 0, size - 1, 200
        if rng:
            parsed = _parse_range(rng, size)
            if parsed == "unsatisfiable":
                return Response(b"", 416, headers={"Content-Range": f"bytes */{size}"})
            if parsed is not None:
                start, end = parsed
                status = 206
        length = end - start + 1
        cut, corrupt, extra = None, False, 0
        if request.method != "HEAD":
            cut, corrupt = self.faults.download_plan(job.export_id, length)
            extra = self.faults.extra_bytes(length)
        record = {
            "range": rng,
            "status": status,
            "start": start,
            "length": length,
            "sent": 0,
            "cut": cut is not None,
            "corrupt": corrupt,
        }
        self.file_requests.setdefault(job.export_id, []).append(record)
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(length + extra)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        media = {"CSV": "text/csv", "TSV": "text/tab-separated-values"}.get(
            job.request["format"], "text/plain"
        )
        stream = _FileStream(
            job.file.path, start, length, status, headers, media, cut, corrupt, record
        )
        stream.rate = self.cfg.download_bytes_per_second
        stream.extra_bytes = extra
        return stream

    # ---- scheduler ---------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        """Tick every status_interval seconds (a changed interval applies at once)."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(0.05, max(0.01, self.cfg.status_interval)))
            if time.monotonic() - last < self.cfg.status_interval:
                continue
            last = time.monotonic()
            try:
                self.tick()
            except Exception:  # keep ticking whatever happens
                log.exception("tick failed")

    def tick(self) -> None:
        """Advance every job; the only place where status changes after enqueue/cancel."""
        now = self.now()
        for j in self.jobs.values():
            if j.foreign and j.status in ("Queued", "Processing") and now >= j.hold_until:
                j.status, j.finished = "Completed", now
        for j in list(self.jobs.values()):
            if j.status == "Processing" and not j.foreign:
                self._maybe_finish(j, now)
        processing = sum(1 for j in self.jobs.values() if j.status == "Processing")
        queued = sorted(
            (j for j in self.jobs.values() if j.status == "Queued" and not j.foreign),
            key=lambda j: j.queued or 0,
        )
        for j in queued:
            if processing >= self.cfg.max_processing:
                break
            if self.faults.stuck(j.queued or 0, now):
                continue
            self._start(j, now)
            processing += 1
        self.max_processing_seen = max(self.max_processing_seen, processing)
        self._note_queue()

    def _start(self, job: Job, now: float) -> None:
        job.status, job.started = "Processing", now
        if job.kind != "leads":
            self._start_other(job)
            return
        sel = job.selection
        assert sel is not None  # set for every job this server created
        lst = None
        list_version = 0
        if sel.list_key:
            live = self.ds.lists.get(sel.list_key)
            if live is not None:
                lst = snapshot_list(live)
                list_version = live.version
        key = signature(job.request) + f"|v{self.ds.version}|l{list_version}"
        sep = self.cfg.ssv_separator
        if job.request["format"] == "SSV":
            key += f"|sep{sep!r}"
        if sel.list_key and lst is None:
            key += "|deleted"
        job.cache_key = key
        fut = self.files.get(key)
        if fut is None or (fut.done() and fut.exception() is not None):
            path = os.path.join(self.tmp, f"{uuid.uuid4().hex}.{job.request['format'].lower()}")
            overrides = copy.deepcopy(self.ds.overrides)
            changed = dict(self.ds.changed)
            fut = self.pool.submit(
                generate, self.ds, job.request, sel, lst, overrides, changed, path, sep
            )
            self.files[key] = fut
        job.future = fut

    def _start_other(self, job: Job) -> None:
        """Activities and program members: the file is made by the family's writer."""
        sep = self.cfg.ssv_separator
        delim = sep if job.request["format"] == "SSV" else DELIMITERS[job.request["format"]]
        if job.kind == "activities":
            cfg = self.cfg
            rates = (cfg.activities_per_lead, cfg.deleted_lead_rate, cfg.merge_rate)
            key: tuple = (job.kind, signature(job.request), *rates, cfg.programs, delim)

            def make(path: str) -> FileInfo:
                model = self.activity_model()
                return activity_jobs.write_activities(
                    model, job.request, job.selection, path, delim, lambda: self.ds.stopping
                )
        else:
            key = (job.kind, signature(job.request), self.cfg.programs, self.ds.version, delim)
            progs = self.programs()

            def make(path: str) -> FileInfo:
                return program_jobs.write_members(
                    self.ds, progs, job.request, job.selection, path, delim
                )

        job.cache_key = repr(key)
        fut = self.files.get(job.cache_key)
        if fut is None or (fut.done() and fut.exception() is not None):
            ext = job.request["format"].lower()
            path = os.path.join(self.tmp, f"{uuid.uuid4().hex}.{ext}")
            fut = self.pool.submit(make, path)
            self.files[job.cache_key] = fut
        job.future = fut

    def _maybe_finish(self, job: Job, now: float) -> None:
        fut = job.future
        if fut is None or not fut.done():
            return
        exc = fut.exception()
        if exc is not None:
            job.status, job.finished = "Failed", now
            job.error_msg = f"Export failed: {exc}"
            return
        info: FileInfo = fut.result()
        rps = self.cfg.rows_per_second
        if rps > 0 and now < (job.started or now) + info.rows / rps:
            return
        job.finished = now
        if self.faults.job_fails(job.signature):
            job.status, job.error_msg = "Failed", self.faults.options["error_msg"]
            return
        job.status, job.file = "Completed", info
        self.faults.mark_completed(job.export_id, job.signature)

    def add_foreign(
        self, count: int, status: str = "Queued", seconds: float = 300.0, kind: str = "leads"
    ) -> list:
        now = self.now()
        out = []
        for _ in range(count):
            eid = str(uuid.uuid4())
            j = Job(
                eid,
                "other-client",
                {"format": "CSV"},
                None,
                now,
                status=status,
                queued=now,
                started=now if status == "Processing" else None,
                foreign=True,
                hold_until=now + seconds,
                kind=kind,
                clock=self.now,
            )
            self.jobs[eid] = j
            out.append(eid)
        return out

    def set_faults(self, spec) -> None:
        self.faults.set(spec)
        if self.faults.on("busy-queue"):
            secs = float(self.faults.options["busy_seconds"])
            self.add_foreign(2, "Processing", secs)
            self.add_foreign(8, "Queued", secs)
            self._note_queue()

    # ---- control API -------------------------------------------------------------------------
    async def _json(self, request: Request) -> dict:
        raw = await request.body()
        if not raw:
            return {}
        data = json.loads(raw)
        return data if isinstance(data, dict) else {"value": data}

    def state(self) -> dict:
        now = self.now()
        return {
            "now": iso(int(now)),
            "now_epoch": now,
            "jobs": [j.state() for j in sorted(self.jobs.values(), key=lambda j: j.created)],
            "quota_used_bytes": self.quota_used(now),
            "quota_bytes": self.cfg.quota_bytes,
            "quota_resets_at": iso(int(self.next_reset(now))),
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_processing_seen": self.max_processing_seen,
            "max_in_flight_seen": self.max_in_flight_seen,
            "max_queue_seen": self.max_queue_seen,
            "max_window_calls_seen": self.max_window_calls_seen,
            "max_window_arrivals_seen": self.max_window_arrivals_seen,
            "limit_rejections": dict(self.limit_rejections),
            "file_requests": self.file_requests,
            "cancelled": list(self.cancelled),
            "faults": {
                "active": sorted(self.faults.active),
                "options": self.faults.options,
                "injected": self.faults.injected,
            },
            "config": asdict(self.cfg),
            "data": {
                "leads": self.ds.n,
                "seed": self.ds.seed,
                "created_from": iso(self.ds.start),
                "created_to": iso(self.ds.end),
                "version": self.ds.version,
            },
            "tokens": len(self.tokens),
            "files_dir": self.tmp,
        }

    async def c_state(self, request: Request) -> Response:
        return JSONResponse(self.state())

    async def c_config(self, request: Request) -> Response:
        if request.method == "POST":
            body = await self._json(request)
            names = {f for f in Config.__dataclass_fields__}
            bad = [k for k in body if k not in names]
            if bad:
                return JSONResponse({"error": f"unknown settings: {bad}"}, 400)
            if body.get("ssv_separator", ";") not in SSV_SEPARATORS.values():
                return JSONResponse({"error": "ssv_separator must be ';' or ' '"}, 400)
            for k, v in body.items():
                setattr(self.cfg, k, v)
        return JSONResponse(asdict(self.cfg))

    async def c_advance(self, request: Request) -> Response:
        body = await self._json(request)
        self.offset += float(body.get("seconds", 0))
        self.tick()
        return JSONResponse({"now": iso(int(self.now())), "now_epoch": self.now()})

    async def c_tick(self, request: Request) -> Response:
        self.tick()
        return JSONResponse({"now": iso(int(self.now()))})

    async def c_faults(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                body = json.loads(await request.body() or b"null")
                self.set_faults(body)
            elif request.method == "DELETE":
                self.faults.set([])
        except ValueError as e:
            return JSONResponse({"error": str(e)}, 400)
        return JSONResponse(
            {
                "active": sorted(self.faults.active),
                "options": self.faults.options,
                "injected": self.faults.injected,
            }
        )

    async def c_truth(self, request: Request) -> Response:
        body = await self._json(request)
        try:
            sel, _ = validate_filter(self.ds, body.get("filter"), set(), strict=False)
        except ApiError as e:
            return JSONResponse({"error": e.message, "code": e.code}, 400)
        lst = self.ds.lists.get(sel.list_key) if sel.list_key else None
        ids = await asyncio.to_thread(select_ids, self.ds, sel, lst, dict(self.ds.changed))
        out: dict[str, Any] = {"count": len(ids)}
        if body.get("ids"):
            out["ids"] = list(ids)
        return JSONResponse(out)

    async def c_record(self, request: Request) -> Response:
        """Every job of every type with its status changes (simulated time, then `seq`)."""
        jobs = sorted(self.jobs.values(), key=lambda j: j.transitions[0]["seq"])
        return JSONResponse(
            {
                "jobs": [j.record() for j in jobs],
                "max_processing_seen": self.max_processing_seen,
                "max_queue_seen": self.max_queue_seen,
            }
        )

    async def c_lead(self, request: Request) -> Response:
        lid = request.path_params["lid"]
        if not 1 <= lid <= self.ds.n:
            return JSONResponse({"error": "no such lead"}, 404)
        if request.method == "POST":
            body = await self._json(request)
            values = body.get("fields", body)
            try:
                self.ds.update_lead(lid, values, int(self.now()))
            except ValueError as e:
                return JSONResponse({"error": str(e)}, 400)
        return JSONResponse(self.ds.lead_values(lid))

    def _list_json(self, lst: ListDef) -> dict:
        return {
            "kind": lst.kind,
            "id": lst.id,
            "name": lst.name,
            "createdAt": iso(lst.created),
            "updatedAt": iso(lst.updated),
            "version": lst.version,
        }

    async def c_lists(self, request: Request) -> Response:
        return JSONResponse([self._list_json(x) for x in self.ds.lists.values()])

    async def c_list_create(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("static", "smart"):
            return JSONResponse({"error": "kind must be static or smart"}, 400)
        body = await self._json(request)
        name = body.get("name")
        if not name or self.ds.find_list(kind, name=name):
            return JSONResponse({"error": "name missing or already used"}, 400)
        return JSONResponse(self._list_json(self.ds.create_list(kind, name, int(self.now()))))

    async def c_list_delete(self, request: Request) -> Response:
        key = (request.path_params["kind"], request.path_params["list_id"])
        if self.ds.lists.pop(key, None) is None:
            return JSONResponse({"error": "no such list"}, 404)
        return JSONResponse({"deleted": True})

    async def c_members(self, request: Request) -> Response:
        key = (request.path_params["kind"], request.path_params["list_id"])
        lst = self.ds.lists.get(key)
        if lst is None:
            return JSONResponse({"error": "no such list"}, 404)
        body = await self._json(request)
        add = {int(i) for i in body.get("add", ())}
        remove = {int(i) for i in body.get("remove", ())}
        lst.added |= add
        lst.removed -= add
        lst.removed |= remove
        lst.added -= remove
        lst.version += 1
        lst.updated = int(self.now())
        return JSONResponse(self._list_json(lst))

    async def c_foreign(self, request: Request) -> Response:
        if request.method == "DELETE":
            for j in self.jobs.values():
                if j.foreign and j.status in ("Queued", "Processing"):
                    j.status, j.finished = "Completed", self.now()
            return JSONResponse({"cleared": True})
        body = await self._json(request)
        status = body.get("status", "Queued")
        if status not in ("Queued", "Processing"):
            return JSONResponse({"error": "status must be Queued or Processing"}, 400)
        kind = body.get("type", "leads")
        if kind not in KINDS:
            return JSONResponse({"error": f"type must be one of {list(KINDS)}"}, 400)
        count, secs = int(body.get("count", 1)), float(body.get("seconds", 300))
        ids = self.add_foreign(count, status, secs, kind)
        self._note_queue()
        return JSONResponse({"exportIds": ids})

    async def c_revoke(self, request: Request) -> Response:
        body = await self._json(request)
        code = "602" if body.get("mode") == "expired" else "601"
        for t in self.tokens.values():
            t.revoked = t.revoked or code
        return JSONResponse({"revoked": len(self.tokens), "code": code})

    async def c_clients(self, request: Request) -> Response:
        body = await self._json(request)
        cid, secret = body.get("client_id"), body.get("client_secret")
        if not cid or not secret:
            return JSONResponse({"error": "client_id and client_secret required"}, 400)
        self.clients[cid] = secret
        return JSONResponse({"client_id": cid})


def _asset_date(sec: int) -> str:
    """Asset API dates look like 2017-07-27T01:38:33Z+0000 (sic)."""
    return iso(sec) + "+0000"


def _loose_date(text: str) -> int:
    text = text.replace("Z+0000", "Z").replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _parse_range(header: str, size: int):
    """(start, end) for a single 'bytes=a-b' / 'bytes=a-' / 'bytes=-n' range; None to ignore the
    header (malformed); 'unsatisfiable' for 416."""
    header = header.strip()
    if not header.lower().startswith("bytes="):
        return None
    spec = header[6:].split(",")[0].strip()
    a, sep, b = spec.partition("-")
    if not sep:
        return None
    try:
        if a == "":
            n = int(b)
            if n <= 0:
                return "unsatisfiable"
            return max(0, size - n), size - 1
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start < 0 or end < start:
        return None if end < start and b else "unsatisfiable"
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class _DropResponse(Response):
    """Answer with headers and part of a body, then break the connection."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"200")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"requestId":"', "more_body": True})
        raise Drop("deliberate connection drop")


class _FileStream(Response):
    """Stream [start, start+length) of a file in large chunks; optionally cut or corrupt it."""

    rate = 0.0  # bytes per second; 0 = unthrottled
    extra_bytes = 0  # filler sent after the file's bytes (fault `oversize`)

    def __init__(
        self, path, start, length, status, headers, media, cut, corrupt, record=None
    ) -> None:
        self.path, self.start, self.length = path, start, length
        self.status_code, self.cut, self.corrupt = status, cut, corrupt
        self.record = record if record is not None else {}
        self.media_type = media
        self.extra = headers
        self.background = None

    async def __call__(self, scope, receive, send) -> None:
        hdrs = [(k.lower().encode(), v.encode()) for k, v in self.extra.items()]
        hdrs.append((b"content-type", f"{self.media_type}; charset=utf-8".encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": hdrs})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        limit = self.length if self.cut is None else self.cut
        sent = 0
        size = CHUNK if self.rate <= 0 else max(1024, min(CHUNK, int(self.rate / 10)))
        with open(self.path, "rb") as f:
            f.seek(self.start)
            while sent < limit:
                chunk = f.read(min(size, limit - sent))
                if not chunk:
                    break
                if self.rate > 0:
                    await asyncio.sleep(len(chunk) / self.rate)
                if self.corrupt:
                    chunk = flip(chunk, self.start + sent, self.start, self.length)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
                self.record["sent"] = sent
        filler = b"x" * min(CHUNK, self.extra_bytes)
        while self.cut is None and sent < self.length + self.extra_bytes:
            piece = filler[: self.length + self.extra_bytes - sent]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            sent += len(piece)
            self.record["sent"] = sent
        if self.cut is not None:
            raise Drop("deliberate reset in the middle of a download")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
