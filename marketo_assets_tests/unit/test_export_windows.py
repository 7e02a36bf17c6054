"""Marketo's 31-day limit in absolute time, and windows split into several jobs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketo_assets.marketo import ExportFilter, errors
from marketo_assets.marketo.exports import MAX_WINDOW, split_window

BERLIN = ZoneInfo("Europe/Berlin")
SECOND = timedelta(seconds=1)


def _month(zone: ZoneInfo, year: int, month: int) -> tuple[datetime, datetime]:
    """A monthly partition's inclusive Marketo window: local midnight to the last second."""
    start = datetime(year, month, 1, tzinfo=zone)
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start, nxt - SECOND


def _absolute(start: datetime, end: datetime) -> timedelta:
    return end.astimezone(UTC) - start.astimezone(UTC)


def _assert_partition_of(windows, start: datetime, end: datetime) -> None:
    """Contiguous, no gap, no overlap, each inside Marketo's limit, exactly [start, end]."""
    assert windows[0][0] == start and windows[-1][1] == end
    for lo, hi in windows:
        assert lo <= hi
        assert _absolute(lo, hi) <= MAX_WINDOW
        assert lo.microsecond == hi.microsecond == 0
        ExportFilter.created_at(lo, hi)  # each one is a valid request
    for (_, prev_end), (nxt_start, _) in itertools.pairwise(windows):
        assert _absolute(prev_end, nxt_start) == SECOND


def test_berlin_october_is_longer_than_31_days_in_absolute_time():
    start, end = _month(BERLIN, 2025, 10)
    assert end - start <= MAX_WINDOW  # what Python's wall-clock subtraction says
    assert _absolute(start, end) == timedelta(days=31, minutes=59, seconds=59)
    with pytest.raises(errors.InvalidRequestError, match="longer than 31 days"):
        ExportFilter.created_at(start, end)


def test_berlin_october_is_split_in_two_jobs():
    start, end = _month(BERLIN, 2025, 10)
    windows = split_window(start, end)
    assert len(windows) == 2
    _assert_partition_of(windows, start, end)
    assert windows[0][0].isoformat() == "2025-09-30T22:00:00+00:00"
    assert windows[-1][1].isoformat() == "2025-10-31T22:59:59+00:00"


@pytest.mark.parametrize(
    ("zone", "year", "month"),
    [
        ("Europe/Berlin", 2025, 3),  # spring forward: 30 d 23 h, one job
        ("Europe/London", 2025, 10),  # fall back inside a 31-day month
        ("America/Chicago", 2025, 11),  # fall back inside a 30-day month: one job
        ("Australia/Sydney", 2025, 4),  # southern hemisphere fall back
        ("UTC", 2025, 1),
        ("UTC", 2025, 2),
        ("Asia/Kolkata", 2025, 12),
    ],
)
def test_every_month_is_covered_exactly(zone, year, month):
    start, end = _month(ZoneInfo(zone), year, month)
    windows = split_window(start, end)
    _assert_partition_of(windows, start, end)
    assert len(windows) == (1 if _absolute(start, end) <= MAX_WINDOW else 2)


def test_a_window_that_fits_is_sent_unchanged():
    start, end = _month(BERLIN, 2025, 3)
    assert split_window(start, end) == [(start, end)]
    assert split_window(start, start) == [(start, start)]
    whole = datetime(2025, 1, 1, tzinfo=UTC)
    assert split_window(whole, whole + MAX_WINDOW) == [(whole, whole + MAX_WINDOW)]


@pytest.mark.parametrize("days", [31, 62, 63, 100, 365])
def test_long_windows_split_into_the_fewest_equal_jobs(days):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=days, seconds=1)
    windows = split_window(start, end)
    _assert_partition_of(windows, start, end)
    seconds = int(_absolute(start, end).total_seconds()) + 1
    assert len(windows) == -(-seconds // (int(MAX_WINDOW.total_seconds()) + 1))
    lengths = {int(_absolute(lo, hi).total_seconds()) for lo, hi in windows}
    assert max(lengths) - min(lengths) <= 1
