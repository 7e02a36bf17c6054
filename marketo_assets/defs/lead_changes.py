"""Incremental updates: the leads changed on each day (`updatedAt` filter), daily partitions.

Rows whose visible `updatedAt` falls outside the day are kept and counted. Without the filter
(1035) the daily schedule skips, saying why (the answer is remembered, see
`extract.capabilities`); a run started by hand fails with the same explanation."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from marketo_assets.extract.capabilities import updated_at_answer, updated_at_note, updated_at_probe
from marketo_assets.extract.checks import updated_outside_day
from marketo_assets.extract.local_state import capabilities_at
from marketo_assets.marketo import ExportFilter
from marketo_assets.settings import ProjectSettings, SettingsError

from .cycle import GENERATION_TAG, window_bounds
from .family import Context, ExportFamily, build_family
from .partitions import lead_change_days, lead_changes_future_start
from .probes import filter_status
from .resources import MarketoResource

LEAD_CHANGE_EXPORTS = dg.AssetKey(["marketo", "lead_change_export_files"])
LEAD_CHANGES = dg.AssetKey(["marketo", "lead_changes"])
LEAD_CHANGES_TABLE = "marketo.lead_changes"
LEDGER_ASSET = "marketo/lead_changes"
CHECK_UNIQUE = "lead_ids_unique_in_partition"

UPDATED_AT_1035_HINT = (
    "Incremental updates (marketo/lead_changes) stay off until Marketo Support enables the "
    "updatedAt filter for this subscription; the lead partitions (createdAt filter) keep "
    "working and a re-export of the open window picks up changes meanwhile."
)

LOAD_DESCRIPTION = (
    "Table `marketo.lead_changes`: the leads changed on each day (key `_partition_key`, `id`),\n"
    """same typed columns as `marketo.leads` plus `_partition_key` (`YYYY-MM-DD`), `_export_id`,
`_loaded_at`. Each partition's load replaces that day's rows in one transaction. Rows whose
visible `updatedAt` lies outside the day are kept (Marketo's filter matches the last change
to any field); their number is in `rows_updated_at_outside_day`. Runs in the `duckdb` pool."""
)


def _filters(context: Context) -> list[ExportFilter]:
    return [ExportFilter.updated_at(*window_bounds(context))]


def _outside_day(context: Context):
    start, end = window_bounds(context)
    key = context.partition_key
    return lambda wh, loaded: updated_outside_day(wh, loaded, LEAD_CHANGES_TABLE, key, start, end)


def lead_change_family(settings: ProjectSettings) -> ExportFamily:
    return ExportFamily(
        export_key=LEAD_CHANGE_EXPORTS,
        load_key=LEAD_CHANGES,
        partitions=lead_change_days(settings),
        table=LEAD_CHANGES_TABLE,
        ledger_asset=LEDGER_ASSET,
        required_fields=("id", "updatedAt"),
        filters=_filters,
        export_description=(
            "Marketo bulk lead export of the leads *changed* on this partition's day: "
            "`updatedAt` filter `[day start, next day start - 1 s]`. Same cycle as the lead "
            "exports (ledger, reattach, quota, checksum, cancellation). Needs the updatedAt "
            "filter: without it Marketo answers 1035 and the run fails without retries, "
            "saying so. " + updated_at_note(capabilities_at(settings.ledger_path))
        ),
        load_description=LOAD_DESCRIPTION,
        checks=((CHECK_UNIQUE, "No lead twice in a partition"),),
        load_checks=_outside_day,
        check_partitions=True,
        timestamp_field="updatedAt",
        unsupported_hint=UPDATED_AT_1035_HINT,
    )


def lead_change_assets(
    settings: ProjectSettings,
) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """`marketo/lead_change_export_files` and `marketo/lead_changes` for these settings."""
    return build_family(lead_change_family(settings))


refresh_lead_changes_job = dg.define_asset_job(
    "refresh_lead_changes",
    selection=dg.AssetSelection.assets(LEAD_CHANGE_EXPORTS, LEAD_CHANGES),
    description="Export and load the leads changed on one day (updatedAt filter).",
    executor_def=dg.in_process_executor,  # one process per run; pools still apply per step
)


def updated_at_filter_status(
    marketo: MarketoResource, now: datetime, recheck: timedelta | None, log=None
) -> tuple[bool, str]:
    """(enabled, explanation). Probes Marketo only when the answer is unknown or stale."""
    status = filter_status(marketo, "updatedAt", updated_at_probe(now), recheck, log)
    assert status is not None
    return updated_at_answer(status, marketo.capabilities().path)


def build_lead_changes_schedule(
    settings: ProjectSettings,
    recheck_hours: float | None = None,
    cron_schedule: str = "30 6 * * *",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    """The daily schedule; `recheck_hours` defaults to MARKETO_FILTER_RECHECK_HOURS."""
    if recheck_hours is None:
        recheck_hours = settings.filter_recheck_hours
    recheck = timedelta(hours=recheck_hours) if recheck_hours else None
    days = lead_change_days(settings)

    @dg.schedule(
        name="daily_lead_changes_refresh",
        job=refresh_lead_changes_job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=default_status,
        description=(
            "Every day at 06:30 UTC, export yesterday's and today's lead changes (updatedAt "
            "filter). Skips, saying why, when the subscription lacks the updatedAt filter "
            "(1035, detected once with a probe job and remembered)."
        ),
    )
    def daily_lead_changes_refresh(
        context: dg.ScheduleEvaluationContext, marketo: MarketoResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        scheduled = context.scheduled_execution_time or datetime.now(UTC)
        reason = lead_changes_future_start(settings, scheduled)
        if reason:  # before the probe: nothing could run anyway
            raise SettingsError(reason)
        enabled, why = updated_at_filter_status(marketo, scheduled, recheck, context.log)
        if not enabled:
            return dg.SkipReason(why)
        keys = days.get_partition_keys(current_time=scheduled)[-2:]
        stamp = scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        return [
            dg.RunRequest(
                run_key=f"{key}@{stamp}",
                partition_key=key,
                tags={GENERATION_TAG: f"{key}@{stamp}"},
            )
            for key in keys
        ]

    return daily_lead_changes_refresh
