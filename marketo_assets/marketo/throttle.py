"""Client-side throttle: a moving-window call limit plus a cap on calls in flight.

Both limits block (never fail): a caller waits until a window slot and an in-flight slot are free.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

__all__ = ["GUARD_SECONDS", "Throttle", "shared_throttle"]

GUARD_SECONDS = 1  # added to the window: network transit and server-side stamping jitter


class Throttle:
    """At most `max_calls` call starts in any `window_seconds` (+1 s guard), at most
    `max_concurrent` in flight.

    The in-flight slot is taken first and the window slot second, so the recorded time of a call
    is never earlier than the moment it is actually sent.
    """

    def __init__(self, max_calls: int, window_seconds: float, max_concurrent: int):
        self.max_calls = max_calls
        self.window_seconds = window_seconds
        self.max_concurrent = max_concurrent
        # `limits` works with whole seconds: round the window up, and add GUARD_SECONDS because
        # Marketo stamps a call when it arrives, which can be later than when we counted it.
        self._item = RateLimitItemPerSecond(
            max_calls, max(1, math.ceil(window_seconds)) + GUARD_SECONDS
        )
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._key = uuid.uuid4().hex
        self._semaphore = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()

    def _acquire_window_slot(self) -> None:
        while True:
            with self._lock:
                if self._limiter.hit(self._item, self._key):
                    return
                stats = self._limiter.get_window_stats(self._item, self._key)
            time.sleep(min(max(stats.reset_time - time.time(), 0.005), self._item.get_expiry()))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot for the duration of the block."""
        self._semaphore.acquire()
        try:
            self._acquire_window_slot()
            yield
        finally:
            self._semaphore.release()


_SHARED: dict[tuple, Throttle] = {}
_SHARED_LOCK = threading.Lock()


def shared_throttle(
    base_url: str, max_calls: int, window_seconds: float, max_concurrent: int
) -> Throttle:
    """One throttle per Marketo instance (base URL) and limits in this process.

    Marketo counts calls per instance, not per client object: the runs, steps and sensor ticks
    of one process that each build their own client must draw from the same window, or a
    backfill of short runs exceeds 100 calls / 20 s (each new client starting with an empty
    window). Clients in other processes are not covered (Marketo answers 606; retried)."""
    key = (base_url.rstrip("/").lower(), max_calls, float(window_seconds), max_concurrent)
    with _SHARED_LOCK:
        throttle = _SHARED.get(key)
        if throttle is None:
            throttle = _SHARED[key] = Throttle(max_calls, window_seconds, max_concurrent)
        return throttle
