"""A daily refresh of the current, still-open lead window."""

import dagster as dg

from marketo_assets.settings import SettingsError

from .leads import LEAD_EXPORTS, LEADS
from .partitions import future_start, lead_windows

refresh_open_window_job = dg.define_asset_job(
    "refresh_open_lead_window",
    selection=dg.AssetSelection.assets(LEAD_EXPORTS, LEADS),
    description="Re-export and reload the current (still open) lead window.",
)


@dg.schedule(
    job=refresh_open_window_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_open_window_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every day at 06:00 UTC, refresh the partition whose window contains today."""
    reason = future_start(context.scheduled_execution_time)
    if reason:
        raise SettingsError(reason)
    key = lead_windows.get_last_partition_key(current_time=context.scheduled_execution_time)
    return dg.RunRequest(
        run_key=f"{key}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=key
    )
