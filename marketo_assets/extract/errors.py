"""The one exception the engine raises for a failed step: what to tell the user, and whether
retrying the step can help."""

from __future__ import annotations

from typing import Any

__all__ = ["ExportFailed"]


class ExportFailed(Exception):
    """A step failed for a reason the user is told (`message`). `retryable` is False when a
    retry of the same step would fail the same way (bad input, quota, a claim held elsewhere);
    `metadata` holds plain values worth showing next to the message."""

    def __init__(
        self, message: str, *, retryable: bool, metadata: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.metadata = dict(metadata or {})
