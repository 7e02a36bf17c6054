"""Shared pytest fixtures for the whole test suite.

Simulator fixtures: a real `marketo-simulator` subprocess on a free loopback port.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from marketo_assets.simulator.process import SimulatorHandle, run_simulator


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
