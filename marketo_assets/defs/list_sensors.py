"""The list and program sensors, planned by `extract.list_plan` (docs/ARCHITECTURE.md)."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from marketo_assets.extract import list_plan
from marketo_assets.extract.batch import plan_batches
from marketo_assets.extract.list_plan import DiscoveredList, Tick
from marketo_assets.marketo import ExportFilter
from marketo_assets.settings import ListConfig, ListSelection, ProjectSettings, SettingsError

from .cycle import BATCH_TAG, GENERATION_TAG
from .family import asset_job
from .lists import EXPORT_KEYS, LIST_KINDS, LISTS, MEMBER_KEYS
from .partitions import LIST_PARTITIONS
from .programs import PM_EXPORTS, PROGRAM_MEMBERS, PROGRAM_PARTITIONS
from .resources import MarketoResource

list_catalog_job = asset_job(
    "refresh_list_catalog", [LISTS], "Reload the catalog of Marketo lists (marketo.lists)."
)
list_member_jobs = {
    kind: asset_job(
        f"export_{kind}_lists",
        [EXPORT_KEYS[kind], MEMBER_KEYS[kind]],
        f"Export one {kind} list's members and load them into DuckDB.",
    )
    for kind in LIST_KINDS
}
program_members_job = asset_job(
    "export_program_members",
    [PM_EXPORTS, PROGRAM_MEMBERS],
    "Export one program's members (in its tick's shared job) and load them.",
)

LIST_ID_TAG = "marketo/list_id"
REASON_TAG = "marketo/list_change"
Job = Any  # what dg.define_asset_job returns (its class is not public)
Run = tuple[str, str, str, int]  # partition key, run key, why, list id (TickPlan.runs)


def selection_sensor(
    *,
    name: str,
    partitions: dg.DynamicPartitionsDefinition,
    run_job: Job,
    tick: Callable[[dg.SensorEvaluationContext, MarketoResource, set[str]], Tick],
    run_tags: Callable[[Sequence[Run]], list[dict[str, str]]],
    description: str,
    off: str | None,
    minimum_interval_seconds: int,
    catalog_job: Job | None = None,
) -> dg.SensorDefinition:
    """One dynamic partition per selected list or program, `run_job` runs as `tick` plans them.
    `off`: a bad setting; every tick then fails with it, changing nothing."""

    @dg.sensor(
        name=name,
        jobs=[run_job, *([catalog_job] if catalog_job else [])],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def selection(
        context: dg.SensorEvaluationContext, marketo: MarketoResource
    ) -> dg.SensorResult | dg.SkipReason:
        if off:
            raise SettingsError(off)
        existing = set(context.instance.get_dynamic_partitions(str(partitions.name)))
        planned = tick(context, marketo, existing)
        if planned.cursor is None:
            return dg.SkipReason(planned.skip)
        for level, line in planned.logs:
            getattr(context.log, level)(line)
        run_requests = [
            dg.RunRequest(run_key=run_key, job_name=run_job.name, partition_key=key, tags=tags)
            for (key, run_key, _, _), tags in zip(planned.runs, run_tags(planned.runs), strict=True)
        ]
        if planned.catalog_run_key and catalog_job:
            run_requests.append(
                dg.RunRequest(run_key=planned.catalog_run_key, job_name=catalog_job.name)
            )
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        requests += [partitions.build_add_request(planned.add)] if planned.add else []
        requests += [partitions.build_delete_request(planned.delete)] if planned.delete else []
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=requests,
            cursor=planned.cursor,
            skip_reason=planned.skip,
        )

    return selection


def build_list_sensor(
    kind: str,
    *,
    selection: ListSelection,
    minimum_interval_seconds: int = 300,
    refresh_hours: float = 0,
    recheck_hours: float = 24,
    off_reason: str | None = None,
) -> dg.SensorDefinition:
    """`off_reason`: a bad list setting; every tick then fails with it, changing nothing."""
    refresh = timedelta(hours=refresh_hours) if refresh_hours else None
    recheck = timedelta(hours=recheck_hours) if recheck_hours else None
    setting = f"MARKETO_{kind.upper()}_LISTS"
    later = f", or {refresh_hours:g} h after its last export" if refresh_hours else ""
    off = f"The {kind}-list sensor is off: {off_reason} Lead partitions are not affected."

    def tick(context, marketo: MarketoResource, existing: set[str]) -> Tick:
        def discover() -> list[DiscoveredList]:
            with marketo.tick_client() as client:
                lists = client.iter_static_lists if kind == "static" else client.iter_smart_lists
                return [DiscoveredList(lst.id, lst.name, lst.updated_at) for lst in lists()]

        def smart_enabled(list_id: int) -> tuple[bool, str | None]:
            return marketo.filter_enabled(ExportFilter.smart_list_id(list_id), recheck, context.log)

        now, probe = datetime.now(UTC), smart_enabled if kind == "smart" else None
        return list_plan.run_tick(
            kind, selection, existing, context.cursor, now, refresh, discover, probe
        )

    def tags(runs: Sequence[Run]) -> list[dict[str, str]]:
        return [
            {LIST_ID_TAG: str(list_id), REASON_TAG: reason, GENERATION_TAG: run_key}
            for _, run_key, reason, list_id in runs
        ]

    return selection_sensor(
        name=f"{kind}_list_sensor",
        partitions=LIST_PARTITIONS[kind],
        run_job=list_member_jobs[kind],
        catalog_job=list_catalog_job,
        run_tags=tags,
        tick=tick,
        minimum_interval_seconds=minimum_interval_seconds,
        off=off if off_reason else None,
        description=f"OFF: {off_reason} Every tick fails saying so; once fixed, the sensor "
        f"exports the {kind} lists selected by {setting}."
        if off_reason
        else f"Discovers Marketo {kind} lists every {minimum_interval_seconds} s, keeps one "
        f"partition `{kind}-<id>` per selected list ({selection.describe()}; set by {setting}), "
        f"deletes those of deleted or unselected lists, and requests an export when a list is "
        f"new or its updatedAt moved{later}. Never opens DuckDB.",
    )


def program_sensor(lists: ListConfig) -> dg.SensorDefinition:
    """`program_members_sensor`; the programs of one tick share Marketo jobs (extract.batch)."""
    selection = lists.settings.program_selection
    refresh_hours = lists.settings.program_refresh_hours
    refresh = timedelta(hours=refresh_hours) if refresh_hours else None
    off = lists.sensor_problem("program")

    def tick(context, marketo: MarketoResource, existing: set[str]) -> Tick:
        def discover() -> list[DiscoveredList]:
            with marketo.tick_client() as client:
                return [DiscoveredList(p.id, p.name, p.updated_at) for p in client.iter_programs()]

        now = datetime.now(UTC)
        return list_plan.run_program_tick(
            selection, existing, context.cursor, now, refresh, discover
        )

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
        else "Keeps one partition `<program id>` per program selected by MARKETO_PROGRAMS "
        f"({selection.describe()}), deletes those of deleted or unselected programs, and requests "
        f"a member export when a program is new, its updatedAt moved, or {refresh_hours:g} h "
        "after its last export (0 = never); the programs of one tick share Marketo jobs of up "
        "to 10. Never opens the warehouse.",
    )


def list_sensors(settings: ProjectSettings, lists: ListConfig) -> list[dg.SensorDefinition]:
    """The static, smart and program sensors (a bad setting switches off its sensor)."""
    return [
        *(
            build_list_sensor(
                kind,
                selection=getattr(lists.settings, f"{kind}_list_selection"),
                minimum_interval_seconds=lists.settings.list_sensor_interval,
                refresh_hours=getattr(lists.settings, f"{kind}_list_refresh_hours"),
                recheck_hours=settings.filter_recheck_hours,
                off_reason=lists.sensor_problem(kind),
            )
            for kind in LIST_KINDS
        ),
        program_sensor(lists),
    ]
