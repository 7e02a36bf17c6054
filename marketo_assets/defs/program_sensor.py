"""`program_sensor`: one dynamic partition per program selected by MARKETO_PROGRAMS (the list
selection syntax), and a member export when a program is new, its `updatedAt` moved or
MARKETO_PROGRAM_REFRESH_HOURS passed. The tick is `extract.list_plan.run_program_tick`, the
sensor `list_sensors.selection_sensor` (as for lists); it reads the program catalog (one call
per 200 programs), never DuckDB."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketo_assets.extract.batch import plan_batches
from marketo_assets.extract.list_plan import PROGRAMS as SETTING
from marketo_assets.extract.list_plan import DiscoveredList, Tick, run_program_tick
from marketo_assets.settings import ListConfig

from .cycle import BATCH_TAG, GENERATION_TAG
from .list_sensors import Run, selection_sensor
from .probes import TICK_CLIENT
from .programs import PM_EXPORTS, PROGRAM_MEMBERS, PROGRAM_PARTITIONS
from .resources import MarketoResource

program_members_job = dg.define_asset_job(
    "export_program_members",
    selection=dg.AssetSelection.assets(PM_EXPORTS, PROGRAM_MEMBERS),
    description="Export one program's members (a job shared with the programs requested "
    "with it) and load them into the warehouse.",
    executor_def=dg.in_process_executor,
)


def program_sensor(lists: ListConfig) -> dg.SensorDefinition:
    selection = lists.settings.program_selection
    refresh_hours = lists.settings.program_refresh_hours
    refresh = timedelta(hours=refresh_hours) if refresh_hours else None
    off = lists.sensor_problem("program")

    def tick(context, marketo: MarketoResource, existing: set[str]) -> Tick:
        def discover() -> list[DiscoveredList]:
            with marketo.client(**TICK_CLIENT) as client:
                return [DiscoveredList(p.id, p.name, p.updated_at) for p in client.iter_programs()]

        now = datetime.now(UTC)
        return run_program_tick(selection, existing, context.cursor, now, refresh, discover)

    def tags(runs: Sequence[Run]) -> list[dict[str, str]]:
        # The programs requested together share jobs of up to 10 (each run's BATCH_TAG).
        batches = plan_batches([(key, run_key) for key, run_key, _, _ in runs])
        return [
            {GENERATION_TAG: run_key} | ({BATCH_TAG: batches[key].tag} if key in batches else {})
            for key, run_key, _, _ in runs
        ]

    return selection_sensor(
        name="program_members_sensor",
        partitions=PROGRAM_PARTITIONS,
        run_job=program_members_job,
        tick=tick,
        run_tags=tags,
        minimum_interval_seconds=lists.settings.list_sensor_interval,
        off=off and f"The program sensor is off: {off}",
        description=f"OFF: {off}"
        if off
        else (
            f"Keeps one partition `<program id>` per program selected by {SETTING} "
            f"({selection.describe()}), deletes those of deleted or unselected programs, and "
            "requests a member export when a program is new, its updatedAt moved, or "
            f"{refresh_hours:g} h after its last export (0 = never); the programs of one tick "
            "share Marketo jobs of up to 10. Never opens the warehouse."
        ),
    )
