"""Shared pytest fixtures for the whole test suite.

Simulator fixtures: a real `marketo-simulator` subprocess on a free loopback port.
PostgreSQL: `pg_server`, one throwaway cluster per session, started only when a test asks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from marketo_assets.simulator.process import SimulatorHandle, run_simulator
from marketo_assets_tests.support.pg_cluster import PgServer, throwaway_cluster, unavailable_reason


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., SimulatorHandle]]:
    """Start simulators with specific options, e.g. `simulator_factory(quota_mb=1)`;
    defaults: 2000 leads, 0.2 s status interval. All are stopped at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(**kwargs: Any) -> SimulatorHandle:
            kwargs.setdefault("leads", 2000)
            kwargs.setdefault("status_interval", 0.2)
            return stack.enter_context(run_simulator(**kwargs))

        yield start


@pytest.fixture
def simulator(simulator_factory: Callable[..., SimulatorHandle]) -> SimulatorHandle:
    """A fresh simulator for one test: 2000 leads, status interval 0.2 s."""
    return simulator_factory()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL cluster (see postgres/conftest.py: skipped when unavailable)."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("MARKETO_REQUIRE_ALL") == "1":
            pytest.fail(f"MARKETO_REQUIRE_ALL=1 but PostgreSQL is unavailable: {reason}")
        pytest.skip(reason)
    with throwaway_cluster() as server:
        yield server
