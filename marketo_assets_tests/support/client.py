"""Helpers for the client integration tests (real simulator over loopback HTTP)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from marketo_assets.marketo import ClientSettings, Event, ExportFilter, ExportRequest, MarketoClient

DELIMS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
FIELDS = ["id", "email", "firstName", "lastName", "createdAt", "updatedAt"]


def client_settings(sim: Any, **overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "base_url": sim.base_url,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "poll_interval": 0.2,
        "job_timeout": 30.0,
        "request_timeout": 10.0,
        "retry_initial_wait": 0.05,
        "retry_max_wait": 0.5,
        "max_retry_seconds": 20.0,
        "queue_full_backoff": (0.2, 0.2, 0.2),
    }
    values.update(overrides)
    return ClientSettings(**values)


def make_client(sim: Any, events: list[Event] | None = None, **overrides: Any) -> MarketoClient:
    return MarketoClient(
        client_settings(sim, **overrides),
        on_event=events.append if events is not None else None,
    )


def read_export(path: Path, fmt: str) -> tuple[list[str], list[list[str]]]:
    text = path.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=DELIMS[fmt]))
    return rows[0], rows[1:]


def ids_in(path: Path, fmt: str, id_header: str = "id") -> list[int]:
    header, rows = read_export(path, fmt)
    col = header.index(id_header)
    return [int(r[col]) for r in rows]


def control(sim: Any, method: str, path: str, **kwargs: Any) -> Any:
    resp = httpx.request(method, sim.base_url + path, timeout=10, **kwargs)
    resp.raise_for_status()
    return resp.json()


@contextmanager
def not_marketo(body: bytes, content_type: str) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that answers every request HTTP 200 with `body` (a login page, a
    proxy, a REST path where the identity endpoint should be). Yields its base URL and the
    paths it was asked for."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Export windows and a finished job of the simulator's data.
JAN = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC))
FEB = (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC))


def request(window=JAN, fields=("id", "email", "firstName", "lastName")) -> ExportRequest:
    return ExportRequest(fields=list(fields), filter=ExportFilter.created_at(*window))


def finished_job(client: MarketoClient, window=JAN):
    job = client.create_export(request(window))
    return client.wait_for_export(job.export_id)
