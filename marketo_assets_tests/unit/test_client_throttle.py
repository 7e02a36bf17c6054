"""Client-side throttle: moving window + in-flight cap, blocking rather than failing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from marketo_assets.marketo import MarketoClient
from marketo_assets.marketo.throttle import Throttle
from marketo_assets_tests.support.client_fakes import EXPORT_ID, FakeMarketo, job, ok, settings

STATUS = f"/bulk/v1/leads/export/{EXPORT_ID}/status.json"


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_throttle_blocks_to_n_per_window():
    t = Throttle(max_calls=4, window_seconds=1, max_concurrent=10)
    stamps = []
    start = time.time()
    for _ in range(6):
        with t.slot():
            stamps.append(time.time())
    assert _max_in_window(stamps, 1.0) <= 4
    assert time.time() - start >= 1.0  # the 5th call had to wait for the window


def test_client_never_exceeds_rate_or_concurrency():
    fake = FakeMarketo()
    lock = threading.Lock()
    state = {"in_flight": 0, "max": 0}
    stamps: list[float] = []

    def slow(request: httpx.Request) -> httpx.Response:
        with lock:
            state["in_flight"] += 1
            state["max"] = max(state["max"], state["in_flight"])
            stamps.append(time.time())
        time.sleep(0.05)
        with lock:
            state["in_flight"] -= 1
        return httpx.Response(200, json=ok([job("Queued")]))

    fake.script(STATUS, slow)
    client = MarketoClient(
        settings(max_calls_per_window=6, window_seconds=1.0, max_concurrent=2),
        transport=httpx.MockTransport(fake.handler),
    )
    with client, ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: client.get_export(EXPORT_ID).status, range(10)))
    assert results == ["Queued"] * 10
    assert client.calls_made == 10
    assert state["max"] <= 2
    # stamps are taken in the handler, a little after the limiter's own timestamp: allow 0.1 s
    # of scheduling jitter in the measurement
    assert _max_in_window(stamps, 0.9) <= 6
    assert _max_in_window(stamps, 2.0) <= 12 + 1
