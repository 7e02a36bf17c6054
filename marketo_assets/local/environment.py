"""Which Marketo local commands use: the real one when MARKETO_* is set, else the simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marketo_assets.simulator.process import SimulatorHandle

REAL_MARKETO_VARS = ("MARKETO_BASE_URL", "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET")

# The demo's fixed data set: ~200,000 leads over six months, one status refresh a second.
DEMO_SIMULATOR = {
    "leads": 200_000,
    "seed": 7,
    "created_from": "2025-01-01",
    "created_to": "2025-07-01",
    "status_interval": 1.0,
}


@dataclass
class MarketoTarget:
    env: dict[str, str]
    simulator: SimulatorHandle | None  # None: a real Marketo

    @property
    def is_simulator(self) -> bool:
        return self.simulator is not None


def real_marketo_configured() -> bool:
    return all(os.environ.get(name) for name in REAL_MARKETO_VARS)


@contextmanager
def marketo_target(**simulator_args) -> Iterator[MarketoTarget]:
    """Yield the env vars that point the MarketoResource at Marketo or at a fresh simulator."""
    if real_marketo_configured():
        yield MarketoTarget(env={}, simulator=None)
        return
    from marketo_assets.simulator.process import run_simulator

    args = {**DEMO_SIMULATOR, **simulator_args}
    with run_simulator(**args) as sim:
        env = {
            "MARKETO_BASE_URL": sim.base_url,
            "MARKETO_CLIENT_ID": sim.client_id,
            "MARKETO_CLIENT_SECRET": sim.client_secret,
            # The simulator refreshes job status every `status_interval` seconds, not 60.
            "MARKETO_POLL_INTERVAL": os.environ.get(
                "MARKETO_POLL_INTERVAL", str(args["status_interval"])
            ),
            # Lists the list sensors export from the simulator: "Webinar Attendees 2025"
            # (static) and "High Score Leads" (smart).
            "MARKETO_STATIC_LISTS": os.environ.get("MARKETO_STATIC_LISTS", "1001"),
            "MARKETO_SMART_LISTS": os.environ.get("MARKETO_SMART_LISTS", "5001"),
            # The program the program sensor exports: "Webinar: Data Warehouses 101".
            "MARKETO_PROGRAMS": os.environ.get("MARKETO_PROGRAMS", "3002"),
        }
        yield MarketoTarget(env=env, simulator=sim)
