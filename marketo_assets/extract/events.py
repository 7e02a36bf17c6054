"""What the engine tells its caller while it works: plain callbacks, no logging framework."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from marketo_assets.marketo import Event

__all__ = ["Notice", "OnEvent", "ignore"]


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
