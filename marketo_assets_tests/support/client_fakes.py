"""An in-process fake Marketo for client unit tests (httpx.MockTransport)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from marketo_assets.marketo import ClientSettings, MarketoClient

SECRET = "s3cr3t-VALUE-never-logged"
TOKEN_PREFIX = "tok-9f8e7d6c-"
EXPORT_ID = "11111111-2222-3333-4444-555555555555"


def ok(result: Any = None, **extra: Any) -> dict[str, Any]:
    env: dict[str, Any] = {"requestId": "abcd#18c0", "success": True}
    if result is not None:
        env["result"] = result
    env.update(extra)
    return env


def err(code: str, message: str) -> dict[str, Any]:
    return {
        "requestId": "abcd#18c0",
        "success": False,
        "errors": [{"code": code, "message": message}],
    }


def job(status: str = "Created", **extra: Any) -> dict[str, Any]:
    data = {
        "exportId": EXPORT_ID,
        "format": "CSV",
        "status": status,
        "createdAt": "2025-01-01T00:00:00Z",
    }
    data.update(extra)
    return data


Responder = Callable[[httpx.Request], httpx.Response] | dict[str, Any] | httpx.Response


class FakeMarketo:
    """Scripted responses per path (consumed in order; the last one repeats)."""

    def __init__(self, token_ttl: int = 3600):
        self.token_ttl = token_ttl
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.by_path: Counter[str] = Counter()
        self.scripts: dict[str, list[Responder]] = {}
        self.identity_status = 200
        self.identity_query_only = False  # like servers that read POST params from the URL only

    def token(self) -> str:
        return f"{TOKEN_PREFIX}{self.tokens_issued}:sim"

    def script(self, path: str, *responses: Responder) -> None:
        self.scripts[path] = list(responses)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        self.by_path[path] += 1
        if path == "/identity/oauth/token":
            if self.identity_status != 200:
                return httpx.Response(
                    self.identity_status,
                    json={"error": "invalid_client", "error_description": "Bad client credentials"},
                )
            if self.identity_query_only:
                form = dict(request.url.params)
                if form.get("grant_type") != "client_credentials":
                    return httpx.Response(
                        400,
                        json={
                            "error": "invalid_request",
                            "error_description": "grant_type must be client_credentials",
                        },
                    )
            else:
                form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            assert form["client_secret"] == SECRET.replace("-", "-")
            self.tokens_issued += 1
            tok = self.token()
            self.valid_tokens.add(tok)
            return httpx.Response(
                200,
                json={
                    "access_token": tok,
                    "token_type": "bearer",
                    "expires_in": self.token_ttl,
                    "scope": "api@example.com",
                },
            )
        auth = request.headers.get("authorization", "")
        tok = auth.removeprefix("Bearer ")
        if tok not in self.valid_tokens:
            return httpx.Response(200, json=err("601", "Access token invalid"))
        script = self.scripts.get(path)
        if not script:
            return httpx.Response(404, text="not scripted")
        item = script.pop(0) if len(script) > 1 else script[0]
        if callable(item):
            return item(request)
        if isinstance(item, httpx.Response):
            return item
        return httpx.Response(200, json=item)

    def calls(self, path: str) -> int:
        return self.by_path[path]

    @property
    def rest_calls(self) -> int:
        return sum(v for k, v in self.by_path.items() if k != "/identity/oauth/token")


def settings(**overrides: Any) -> ClientSettings:
    base = {
        "base_url": "https://mkto.example.com",
        "client_id": "client-id-1",
        "client_secret": SECRET,
        "poll_interval": 1.0,  # the fake clock makes waits instant
        "retry_initial_wait": 0.01,
        "retry_max_wait": 0.05,
        "queue_full_backoff": (1.0, 2.0, 4.0),
    }
    base.update(overrides)
    return ClientSettings(**base)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(
    fake: FakeMarketo, events: list | None = None, clock: FakeClock | None = None, **overrides: Any
) -> MarketoClient:
    clock = clock or FakeClock()
    return MarketoClient(
        settings(**overrides),
        transport=httpx.MockTransport(fake.handler),
        on_event=events.append if events is not None else None,
        sleep=clock.sleep,
        clock=clock.time,
    )


def file_body(size: int = 3 * 1024 * 1024 + 17) -> bytes:
    line = b"id,email\n" + b"".join(
        b"%d,user%d@example.com\n" % (i, i) for i in range(size // 20 + 1)
    )
    return line[:size]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(data: Any) -> str:
    return json.dumps(data)
