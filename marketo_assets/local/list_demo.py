"""`make demo`'s list part: the list sensors and the program sensor tick in the daemon, the demo
waits for their runs.

The sensors are running by default. When the daemon starts they evaluate at once: each adds a
partition per selected list or program (the simulator demo selects static list 1001, smart list
5001 and program 3002, see `environment.py`), requests one export run per new or changed one
(and, for lists, a refresh of the list catalog). This module waits for those ticks and runs.

"At once" needs a sensor state without a recent tick: the daemon spaces ticks by the sensor's
minimum interval (MARKETO_LIST_SENSOR_INTERVAL, 300 s) counted from the last tick stored in the
instance, so a re-run within five minutes waited for it. Against the simulator the demo first
forgets the sensors' state (`forget_list_sensor_state`): each demo starts a new simulator, a new
Marketo as far as the sensors know, so their cursor and last tick are about a Marketo that is
gone. Against a real Marketo the state is kept and the demo waits for the interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.scheduler.instigation import (
    InstigatorStatus,
    InstigatorTick,
    InstigatorType,
    TickStatus,
)

LIST_SENSORS = ("static_list_sensor", "smart_list_sensor", "program_members_sensor")
_DONE = {TickStatus.SUCCESS, TickStatus.SKIPPED, TickStatus.FAILURE}


@dataclass
class ListSensorOutcome:
    ticks: dict[str, str] = field(default_factory=dict)  # sensor -> tick status / skip reason
    runs: dict[str, str] = field(default_factory=dict)  # run label -> final status
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(s == "SUCCESS" for s in self.runs.values())


def forget_list_sensor_state(instance: dg.DagsterInstance) -> list[str]:
    """Delete the stored state (cursor, last tick time) of the list and program sensors: the
    daemon then treats them as new and evaluates them at once. Tick history and runs are kept."""
    forgotten = []
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        # A sensor stopped in the UI stays stopped (its state holds that choice).
        if state.instigator_name in LIST_SENSORS and state.status != InstigatorStatus.STOPPED:
            instance.delete_instigator_state(state.instigator_origin_id, state.selector_id)
            forgotten.append(state.instigator_name)
    return forgotten


def _first_ticks(instance: dg.DagsterInstance, since: float) -> dict[str, InstigatorTick]:
    found: dict[str, InstigatorTick] = {}
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name not in LIST_SENSORS:
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=since)
        done = sorted((t for t in ticks if t.status in _DONE), key=lambda t: t.timestamp)
        if done:
            found[state.instigator_name] = done[0]
    return found


def wait_for_list_sensors(
    instance: dg.DagsterInstance,
    since: float,
    timeout: float = 240,
    say: Callable[[str], None] = print,
) -> ListSensorOutcome:
    """Wait for each list sensor's first tick after `since`, then for the runs it requested."""
    outcome = ListSensorOutcome()
    deadline = time.monotonic() + timeout
    ticks: dict[str, InstigatorTick] = {}
    while len(ticks) < len(LIST_SENSORS) and time.monotonic() < deadline:
        ticks = _first_ticks(instance, since)
        time.sleep(1.0)
    for name in LIST_SENSORS:
        tick = ticks.get(name)
        if tick is None:
            outcome.errors.append(f"{name}: no tick within {timeout:.0f} s (is it stopped?)")
            continue
        status = tick.status.value
        if tick.status == TickStatus.FAILURE and tick.error:
            # The innermost cause is the sensor's own message (e.g. which setting is bad).
            error = tick.error
            while error.cause is not None:
                error = error.cause
            outcome.errors.append(f"{name}: tick failed: {error.message.strip()}")
        detail = f"{len(tick.run_ids)} run(s)" if tick.run_ids else (tick.skip_reason or "")
        outcome.ticks[name] = f"{status.lower()}: {detail}"
        say(f"Sensor {name}: {status.lower()}, {detail}")
    run_ids = [rid for t in ticks.values() for rid in t.run_ids]
    seen: dict[str, str] = {}
    while run_ids:
        runs = [instance.get_run_by_id(rid) for rid in run_ids]
        for run in runs:
            if run is None:
                continue
            label = run.tags.get("dagster/partition") or run.job_name
            if seen.get(run.run_id) != run.status.value:
                seen[run.run_id] = run.status.value
                say(f"  {label}: {run.status.value.lower()}")
            if run.is_finished:
                outcome.runs[label] = run.status.value
        if all(r is not None and r.is_finished for r in runs):
            break
        if time.monotonic() > deadline:
            outcome.errors.append("list runs still running at the timeout")
            break
        time.sleep(1.0)
    return outcome
