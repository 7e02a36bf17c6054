"""The `quota_resume` sensor of every export family (docs/QUOTA.md; planned by extract.quota)."""

from collections.abc import Sequence
from datetime import datetime

import dagster as dg

from marketo_assets.extract import quota
from marketo_assets.settings import ProjectSettings

from .family import LEDGER_ASSET, asset_job
from .resources import MarketoResource

RESUME_TAG = "marketo/quota_resume"
UNFINISHED = [dg.DagsterRunStatus[s] for s in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")]


def _families(assets: Sequence[dg.AssetsDefinition]) -> dict[str, list[dg.AssetsDefinition]]:
    out: dict[str, list[dg.AssetsDefinition]] = {}
    for asset in assets:
        for key in asset.keys:
            if ledger_asset := asset.metadata_by_key.get(key, {}).get(LEDGER_ASSET):
                out.setdefault(str(ledger_asset), []).append(asset)
    return out


def _window(partitions: dg.PartitionsDefinition | None, key: str, now: datetime):
    """(open, window start) of a partition; a partition without a window (a list) is open."""
    if not isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return True, None
    window = partitions.time_window_for_partition_key(key)
    return window.start <= now < window.end, window.start


def _pending(instance: dg.DagsterInstance, keys: dict[str, set[dg.AssetKey]]) -> set:
    """(ledger asset, partition) of every unfinished run exporting a family's partition."""
    pending = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        partition = run.tags.get("dagster/partition")
        for ledger_asset, asset_keys in keys.items():
            ours = run.job_name == _job_name(ledger_asset)
            if partition and (ours or asset_keys & (run.asset_selection or set())):
                pending.add((ledger_asset, partition))
    return pending


def _exists(instance: dg.DagsterInstance, partitions, key: str) -> bool:
    """False for a dynamic partition deleted since (a list no longer selected)."""
    if isinstance(partitions, dg.DynamicPartitionsDefinition) and partitions.name:
        return key in instance.get_dynamic_partitions(partitions.name)
    return True


def _job_name(ledger_asset: str) -> str:
    return f"quota_resume_{ledger_asset.replace('/', '_')}"


def quota_resume_sensor(
    settings: ProjectSettings, assets: Sequence[dg.AssetsDefinition]
) -> dg.SensorDefinition:
    families = _families(assets)
    keys = {name: {k for a in defs for k in a.keys} for name, defs in families.items()}
    partitions = {name: defs[0].partitions_def for name, defs in families.items()}
    # One job per family (a job holds one partitions definition).
    jobs = {
        name: asset_job(
            _job_name(name),
            sorted(asset_keys, key=str),
            f"Export and load a partition of {name} stopped by the quota.",
        )
        for name, asset_keys in keys.items()
    }

    @dg.sensor(
        name="quota_resume",
        jobs=list(jobs.values()),
        minimum_interval_seconds=settings.quota_resume_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def quota_resume(context: dg.SensorEvaluationContext, marketo: MarketoResource):
        """Launches the partitions stopped by the daily quota or MARKETO_QUOTA_BUDGET_MB again
        after the reset, as many as the day's budget should hold, in MARKETO_QUOTA_RESUME_ORDER.
        Calls Marketo only while a partition waits."""
        ledger = marketo.ledger()
        stopped = [s for s in quota.stops(ledger) if s.asset in families]
        if not stopped:
            return dg.SkipReason("No partition waits for the quota.")
        pending = _pending(context.instance, keys)
        with marketo.tick_client() as client:
            used = client.exported_bytes_today()
            now = client.server_now()
        launch = quota.resume(
            ledger,
            stopped,
            pending,
            lambda s: _window(partitions[s.asset], s.partition_key, now),
            lambda s: _exists(context.instance, partitions[s.asset], s.partition_key),
            now=now,
            used_today=used,
            order=settings.quota_resume_order,
            budget_bytes=int(marketo.budget_mb * quota.MB),
        )
        if not launch:
            return dg.SkipReason(
                f"{len(stopped)} partition(s) wait for the quota's reset or room in the budget."
            )
        return [
            dg.RunRequest(
                run_key=stop.run_key,
                partition_key=stop.partition_key,
                job_name=jobs[stop.asset].name,
                tags={RESUME_TAG: stop.reason, "dagster/priority": str(len(launch) - i)},
            )
            for i, stop in enumerate(launch)
        ]

    return quota_resume
