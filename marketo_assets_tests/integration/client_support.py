"""Helpers for the client integration tests (real simulator over loopback HTTP)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx

from marketo_assets.marketo import ClientSettings, Event, MarketoClient

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
