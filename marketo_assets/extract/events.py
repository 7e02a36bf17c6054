"""What the engine tells its caller while it works: plain callbacks, no logging framework."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from marketo_assets.marketo import Event

__all__ = ["EventLines", "Notice", "OnEvent", "ignore"]

MB = 1024 * 1024


@dataclass(frozen=True)
class Notice:
    """One step of the engine worth a log line. `kind` names the transition (e.g. "created",
    "reattached", "reused", "recreating", "interrupted"); `message` is the line to show."""

    kind: str
    message: str
    level: Literal["info", "warning", "error"] = "info"
    export_id: str | None = None


# Receives the engine's notices and the Marketo client's own events.
OnEvent = Callable[[Notice | Event], None]


def ignore(_event: Notice | Event) -> None:
    """The default callback: nobody listens."""


class EventLines:
    """The engine's notices and the client's events as log lines `(level, text)` (None: not
    worth a line). Every line is an event Dagster stores (a write to its event log), so routine
    progress is kept short: no line for the `Created` status (the engine's notice says it), nor
    for deleting the staged file (the load's metadata counts `staged_files_deleted`), and
    download progress at most every `progress_seconds` (a quick download logs none; its size and
    speed are in the materialization's metadata)."""

    def __init__(self, progress_seconds: float = 10.0) -> None:
        self._every = progress_seconds
        self._last = time.monotonic()

    def __call__(self, event: Notice | Event) -> tuple[str, str] | None:
        if isinstance(event, Notice):
            return None if event.kind == "staged_deleted" else (event.level, event.message)
        data, export = event.data, f"Export {event.export_id}"
        if event.kind == "status":
            status = data.get("status")
            return None if status == "Created" else ("info", f"{export}: {status}")
        if event.kind == "download_progress":
            if time.monotonic() - self._last < self._every:
                return None
            self._last = time.monotonic()
            done, total = data.get("bytes", 0) / MB, (data.get("total") or 0) / MB
            return "info", f"{export}: downloaded {done:.1f} MB of {total:.1f} MB"
        if event.kind in ("retry", "rate_limited", "enqueue_wait", "download_resumed"):
            return "warning", f"Marketo {event.kind}: " + ", ".join(
                f"{k}={v}" for k, v in data.items()
            )
        if event.kind == "checksum_mismatch":
            return "warning", f"{export}: checksum mismatch, downloading again"
        return None
