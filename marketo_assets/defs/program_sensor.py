"""`program_sensor`: one dynamic partition per program selected by MARKETO_PROGRAMS (the list
selection syntax), and a member export when a program is new, its `updatedAt` moved or
MARKETO_PROGRAM_REFRESH_HOURS passed. The tick is planned by `extract.list_plan.plan_tick`
(as for lists); it reads the program catalog (one call per 200 programs), never DuckDB."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketo_assets.extract.batch import plan_batches
from marketo_assets.extract.list_plan import DiscoveredList, load_cursor, plan_tick
from marketo_assets.extract.list_plan import unmatched_message as unmatched_text
from marketo_assets.settings import ListConfig, SettingsError

from .cycle import BATCH_TAG, GENERATION_TAG
from .probes import TICK_CLIENT
from .programs import PM_EXPORTS, PROGRAM_MEMBERS, PROGRAM_PARTITIONS
from .resources import MarketoResource

SETTING = "MARKETO_PROGRAMS"
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
    off = lists.sensor_problem("program")

    @dg.sensor(
        jobs=[program_members_job],
        minimum_interval_seconds=lists.settings.list_sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
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
    def program_members_sensor(
        context: dg.SensorEvaluationContext, marketo: MarketoResource
    ) -> dg.SensorResult | dg.SkipReason:
        if off:
            raise SettingsError(f"The program sensor is off: {off}")
        existing = set(context.instance.get_dynamic_partitions(str(PROGRAM_PARTITIONS.name)))
        if selection.empty:
            if not existing:
                return dg.SkipReason(f"No program selected: set {SETTING}.")
            return dg.SensorResult(
                dynamic_partitions_requests=[
                    PROGRAM_PARTITIONS.build_delete_request(sorted(existing))
                ],
                cursor=json.dumps(load_cursor(None)),
            )
        with marketo.client(**TICK_CLIENT) as client:
            found = [DiscoveredList(p.id, p.name, p.updated_at) for p in client.iter_programs()]
        names = {p.name for p in found}
        unknown = sorted(selection.names - names)
        if unknown:  # a typo: export nothing rather than a partial, silent selection
            raise SettingsError(
                f"{SETTING} names program(s) Marketo does not have: {unknown} (names are exact "
                f"and case-sensitive; {len(found)} programs found). Fix {SETTING}; nothing "
                "was requested."
            )
        plan = plan_tick(
            "program",
            found,
            selection,
            existing,
            load_cursor(context.cursor),
            datetime.now(UTC),
            timedelta(hours=refresh_hours) if refresh_hours else None,
            partition_key=str,
        )
        if plan.unmatched:
            missing = unmatched_text("program", plan.unmatched, len(found), SETTING, "programs")
            context.log.warning(missing)
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        if plan.add:
            requests.append(PROGRAM_PARTITIONS.build_add_request(plan.add))
        if plan.delete:
            requests.append(PROGRAM_PARTITIONS.build_delete_request(plan.delete))
        # The programs requested together share jobs of up to 10 (each run's BATCH_TAG).
        batches = plan_batches([(key, run_key) for key, run_key, _, _ in plan.runs])
        runs = [
            dg.RunRequest(
                run_key=run_key,
                partition_key=key,
                tags={GENERATION_TAG: run_key}
                | ({BATCH_TAG: batches[key].tag} if key in batches else {}),
            )
            for key, run_key, _, _ in plan.runs
        ]
        return dg.SensorResult(
            run_requests=runs,
            dynamic_partitions_requests=requests,
            cursor=json.dumps(plan.cursor, sort_keys=True),
            skip_reason=None if runs else f"No program changed ({len(plan.cursor['lists'])}).",
        )

    return program_members_sensor
