"""Marketo's clock (from HTTP `Date` headers) and its quota day (midnight America/Chicago)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from .errors import CHICAGO

__all__ = ["ServerClock", "quota_day_start", "quota_reset_time"]


class ServerClock:
    """Marketo's current time as last seen in a response's `Date` header (else local time)."""

    def __init__(self) -> None:
        self._offset = 0.0  # Marketo's clock minus ours

    def note(self, date_header: str | None) -> None:
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        self._offset = (server - datetime.now(UTC)).total_seconds()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)


def _chicago(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(CHICAGO)


def quota_day_start(now: datetime | None = None) -> datetime:
    """The last midnight America/Chicago at or before `now` (the bulk export quota day)."""
    local = _chicago(now)
    return datetime(local.year, local.month, local.day, tzinfo=CHICAGO)


def quota_reset_time(now: datetime | None = None) -> datetime:
    """Next midnight America/Chicago after `now` (UTC-aware datetime)."""
    nxt = (_chicago(now) + timedelta(days=1)).date()
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=CHICAGO).astimezone(UTC)
