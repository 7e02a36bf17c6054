"""The daily schedules (UTC, running by default) and their jobs."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketo_assets.extract.capabilities import updated_at_probe
from marketo_assets.extract.windows import future_start, lead_changes_future_start
from marketo_assets.settings import ProjectSettings, SettingsError

from .cycle import GENERATION_TAG
from .deleted_leads import DELETED_LEADS
from .family import asset_job
from .leads import LEAD_CHANGE_EXPORTS, LEAD_CHANGES, LEAD_EXPORTS, LEADS
from .partitions import lead_change_days, lead_windows
from .resources import MarketoResource

refresh_open_window_job = asset_job(
    "refresh_open_lead_window",
    [LEAD_EXPORTS, LEADS],
    "Re-export and reload the current (still open) lead window.",
)
refresh_lead_changes_job = asset_job(
    "refresh_lead_changes",
    [LEAD_CHANGE_EXPORTS, LEAD_CHANGES],
    "Export and load the leads changed on one day (updatedAt filter).",
)
deleted_leads_job = asset_job(
    "refresh_deleted_leads", [DELETED_LEADS], "Reload the deleted leads of some UTC days."
)


def _daily(name: str, job, cron: str, description: str):
    return dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )


def _runs(keys: Iterable[str], stamp: str, generation: bool = False) -> list[dg.RunRequest]:
    """One run per partition, run key `<key>@<stamp>` (a tick never requests a run twice)."""
    return [
        dg.RunRequest(
            run_key=f"{key}@{stamp}",
            partition_key=key,
            tags={GENERATION_TAG: f"{key}@{stamp}"} if generation else None,
        )
        for key in keys
    ]


def daily_schedules(settings: ProjectSettings) -> list[dg.ScheduleDefinition]:
    windows, first = lead_windows(settings), settings.partition_start.isoformat()

    @_daily(
        "daily_open_window_refresh",
        refresh_open_window_job,
        "0 6 * * *",
        "Every day at 06:00 UTC, refresh the partition whose window contains today.",
    )
    def open_window(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        if reason := future_start(settings, context.scheduled_execution_time):
            raise SettingsError(reason)
        key = windows.get_partition_keys(current_time=context.scheduled_execution_time)[-1]
        return _runs([key], f"{context.scheduled_execution_time:%Y-%m-%d}")[0]

    @_daily(
        "daily_deleted_leads_refresh",
        deleted_leads_job,
        "45 6 * * *",
        "Every day at 06:45 UTC, reload yesterday's and today's deleted leads (UTC days).",
    )
    def deleted_leads(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        today = context.scheduled_execution_time.date()
        days = [(today - timedelta(days=1)).isoformat(), today.isoformat()]
        return _runs([day for day in days if day >= first], today.isoformat())

    return [open_window, build_lead_changes_schedule(settings), deleted_leads]


def build_lead_changes_schedule(settings: ProjectSettings) -> dg.ScheduleDefinition:
    """Probes the updatedAt filter once, then after MARKETO_FILTER_RECHECK_HOURS (if not 0)."""
    hours = settings.filter_recheck_hours
    recheck = timedelta(hours=hours) if hours else None
    days = lead_change_days(settings)

    @_daily(
        "daily_lead_changes_refresh",
        refresh_lead_changes_job,
        "30 6 * * *",
        "Every day at 06:30 UTC, export yesterday's and today's lead changes (updatedAt "
        "filter). Skips, saying why, when the subscription lacks the updatedAt filter "
        "(1035, detected once with a probe job and remembered).",
    )
    def schedule(
        context: dg.ScheduleEvaluationContext, marketo: MarketoResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        scheduled = context.scheduled_execution_time or datetime.now(UTC)
        if reason := lead_changes_future_start(settings, scheduled):  # nothing could run
            raise SettingsError(reason)
        enabled, why = marketo.filter_enabled(updated_at_probe(scheduled), recheck, context.log)
        if not enabled:
            return dg.SkipReason(why)
        stamp = scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        return _runs(days.get_partition_keys(current_time=scheduled)[-2:], stamp, True)

    return schedule
