"""Fixtures for the client integration tests: a shared simulator per module, plus cleanup."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from marketo_assets_tests.support.client import control, make_client


def _process() -> Any:
    return pytest.importorskip(
        "marketo_assets.simulator.process", reason="simulator process helper not available yet"
    )


SHARED_CONFIG = {
    "rate_limit": 100_000,
    "disabled_filters": [],
    "quota_mb": 500,
    "status_interval": 0.2,
}


@pytest.fixture(scope="module")
def client_sim() -> Iterator[Any]:
    """One simulator for a test module (2000 leads, 0.2 s status interval)."""
    with _process().run_simulator(leads=2000, status_interval=0.2) as sim:
        # Many short-lived clients share this simulator, each with its own throttle: lift the
        # instance-wide 100 calls / 20 s limit (test_client_rate_limit_respected checks it).
        sim.configure(**SHARED_CONFIG)
        yield sim


@pytest.fixture
def sim(client_sim: Any) -> Iterator[Any]:
    """The module's simulator, with faults, config and our leftover jobs reset after the test."""
    yield client_sim
    reset_sim(client_sim)


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    """Start extra simulators with specific options: `sim_factory(quota_mb=1, ...)`."""
    with contextlib.ExitStack() as stack:

        def start(**kwargs: Any) -> Any:
            kwargs.setdefault("leads", 2000)
            kwargs.setdefault("status_interval", 0.2)
            return stack.enter_context(_process().run_simulator(**kwargs))

        yield start


def reset_sim(client_sim: Any) -> None:
    with contextlib.suppress(Exception):
        client_sim.clear_faults()
    with contextlib.suppress(Exception):
        client_sim.configure(**SHARED_CONFIG)
    with contextlib.suppress(Exception):
        control(client_sim, "DELETE", "/_sim/jobs/foreign")
    with contextlib.suppress(Exception), make_client(client_sim) as client:
        for job in client.list_exports(["Created", "Queued", "Processing"]):
            with contextlib.suppress(Exception):
                client.cancel_export(job.export_id)
