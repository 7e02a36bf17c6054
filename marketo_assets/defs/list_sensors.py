"""List sensors (`static_list_sensor`, `smart_list_sensor`): one dynamic partition per selected
list, an export run when a list is new or its `updatedAt` moved. A tick only lists Marketo's
lists, never opens DuckDB and returns one SensorResult, planned by `extract.list_plan`. A bad
list setting switches off the sensors it concerns (their ticks fail saying why).
`selection_sensor` is the factory of these and of the program sensor."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from marketo_assets.extract.capabilities import smart_list_answer
from marketo_assets.extract.list_plan import DiscoveredList, Tick, run_tick
from marketo_assets.marketo import ExportFilter
from marketo_assets.settings import ListConfig, ListSelection, ProjectSettings, SettingsError

from .cycle import GENERATION_TAG
from .lists import EXPORT_KEYS, LISTS, MEMBER_KEYS
from .partitions import LIST_PARTITIONS
from .probes import TICK_CLIENT, filter_status
from .resources import MarketoResource

list_catalog_job = dg.define_asset_job(
    "refresh_list_catalog",
    selection=dg.AssetSelection.assets(LISTS),
    description="Reload the catalog of Marketo lists (marketo.lists).",
    executor_def=dg.in_process_executor,
)
list_member_jobs = {
    kind: dg.define_asset_job(
        f"export_{kind}_lists",
        selection=dg.AssetSelection.assets(EXPORT_KEYS[kind], MEMBER_KEYS[kind]),
        description=f"Export one {kind} list's members and load them into DuckDB.",
        executor_def=dg.in_process_executor,  # pools still apply per step
    )
    for kind in ("static", "smart")
}

LIST_ID_TAG = "marketo/list_id"
REASON_TAG = "marketo/list_change"
Job = Any  # what dg.define_asset_job returns (its class is not public)
Run = tuple[str, str, str, int]  # partition key, run key, why, list id (TickPlan.runs)


def _discover(kind: str, marketo: MarketoResource) -> list[DiscoveredList]:
    with marketo.client(**TICK_CLIENT) as client:
        found = client.iter_static_lists() if kind == "static" else client.iter_smart_lists()
        return [DiscoveredList(lst.id, lst.name, lst.updated_at) for lst in found]


def smart_filter_enabled(
    context: dg.SensorEvaluationContext,
    marketo: MarketoResource,
    probe_list_id: int,
    recheck: timedelta | None,
) -> tuple[bool, str | None]:
    """Is the smart-list filter enabled? (see `probes.filter_status`)"""
    probe = ExportFilter.smart_list_id(probe_list_id)
    status = filter_status(marketo, "smartList", probe, recheck, context.log, inconclusive_ok=True)
    return smart_list_answer(status, marketo.capabilities().path)


RunTags = Callable[[Sequence[Run]], list[dict[str, str]]]


def _generations(runs: Sequence[Run]) -> list[dict[str, str]]:
    return [{GENERATION_TAG: run_key} for _, run_key, _, _ in runs]


def selection_sensor(
    *,
    name: str,
    partitions: dg.DynamicPartitionsDefinition,
    run_job: Job,
    tick: Callable[[dg.SensorEvaluationContext, MarketoResource, set[str]], Tick],
    description: str,
    off: str | None,
    minimum_interval_seconds: int,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    catalog_job: Job | None = None,
    run_tags: RunTags | None = None,
) -> dg.SensorDefinition:
    """A sensor keeping one dynamic partition per selected item (list, program) and requesting
    `run_job` runs as `tick` plans them (`extract.list_plan`); `run_tags(runs)` tags the runs
    of one tick together (default: each run's GENERATION_TAG, its run key). `off`: a bad
    setting; every tick then fails with it, changing nothing."""

    @dg.sensor(
        name=name,
        jobs=[run_job, *([catalog_job] if catalog_job else [])],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
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
        tag_sets = (run_tags or _generations)(planned.runs)
        run_requests = [
            dg.RunRequest(run_key=run_key, job_name=run_job.name, partition_key=key, tags=tags)
            for (key, run_key, _, _), tags in zip(planned.runs, tag_sets, strict=True)
        ]
        if planned.catalog_run_key and catalog_job:
            run_requests.append(
                dg.RunRequest(run_key=planned.catalog_run_key, job_name=catalog_job.name)
            )
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        if planned.add:
            requests.append(partitions.build_add_request(planned.add))
        if planned.delete:
            requests.append(partitions.build_delete_request(planned.delete))
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
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    name: str | None = None,
    off_reason: str | None = None,
) -> dg.SensorDefinition:
    """`off_reason`: a bad list setting; every tick then fails with it, changing nothing."""
    refresh = timedelta(hours=refresh_hours) if refresh_hours else None
    recheck = timedelta(hours=recheck_hours) if recheck_hours else None
    setting = f"MARKETO_{kind.upper()}_LISTS"

    def tick(context, marketo: MarketoResource, existing: set[str]) -> Tick:
        return run_tick(
            kind,
            selection,
            existing,
            context.cursor,
            datetime.now(UTC),
            refresh,
            lambda: _discover(kind, marketo),
            (lambda list_id: smart_filter_enabled(context, marketo, list_id, recheck))
            if kind == "smart"
            else None,
        )

    def tags(runs: Sequence[Run]) -> list[dict[str, str]]:
        return [
            {LIST_ID_TAG: str(list_id), REASON_TAG: reason, GENERATION_TAG: run_key}
            for _, run_key, reason, list_id in runs
        ]

    return selection_sensor(
        name=name or f"{kind}_list_sensor",
        partitions=LIST_PARTITIONS[kind],
        run_job=list_member_jobs[kind],
        catalog_job=list_catalog_job,
        run_tags=tags,
        tick=tick,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        off=off_reason
        and f"The {kind}-list sensor is off: {off_reason} Lead partitions are not affected.",
        description=(
            f"OFF: {off_reason} Every tick fails saying so; once fixed, the sensor exports the "
            f"{kind} lists selected by {setting}."
        )
        if off_reason
        else (
            f"Discovers Marketo {kind} lists every {minimum_interval_seconds} s, keeps one "
            f"partition `{kind}-<id>` per selected list ({selection.describe()}; set by "
            f"{setting}), deletes partitions of deleted or unselected lists, and requests an "
            f"export when a list is new or its updatedAt moved"
            + (f", or {refresh_hours:g} h after its last export" if refresh_hours else "")
            + ". Never opens DuckDB."
        ),
    )


def list_sensors(settings: ProjectSettings, lists: ListConfig) -> list[dg.SensorDefinition]:
    """`static_list_sensor` and `smart_list_sensor` for these settings (a bad list setting
    switches off the sensor it concerns)."""
    return [
        build_list_sensor(
            kind,
            selection=getattr(lists.settings, f"{kind}_list_selection"),
            minimum_interval_seconds=lists.settings.list_sensor_interval,
            refresh_hours=getattr(lists.settings, f"{kind}_list_refresh_hours"),
            recheck_hours=settings.filter_recheck_hours,
            off_reason=lists.sensor_problem(kind),
        )
        for kind in ("static", "smart")
    ]
