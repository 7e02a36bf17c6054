"""Local Dagster instance helpers: pools, the daemon, and backfills launched through it.

Used by `make demo`, `make dev` and the end-to-end tests; not part of the Dagster definitions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

from marketo_assets.settings import PROJECT_ROOT

POOLS = {"marketo_bulk_export": 2, "duckdb": 1}
BACKFILL_DONE = {
    BulkActionStatus.COMPLETED,
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
}


def ensure_pools(instance: dg.DagsterInstance) -> None:
    """Marketo processes 2 export jobs at a time; DuckDB allows one writer."""
    for pool, limit in POOLS.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)


@contextmanager
def running_daemon(
    env: dict[str, str] | None = None, log_path: Path | None = None
) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the project's workspace (runs queued runs and backfills)."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop_process_group(proc)
        if log_path:
            log.close()


def stop_process_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def launch_backfill(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    asset_keys: Sequence[dg.AssetKey],
    partition_keys: Sequence[str],
    title: str = "marketo backfill",
    run_config: dict | None = None,
) -> str:
    """Submit an asset backfill to the instance; the daemon turns it into one run per partition.
    `run_config` applies to every run (e.g. resource config)."""
    backfill_id = uuid.uuid4().hex[:8]
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=defs.resolve_asset_graph(),
        partition_names=list(partition_keys),
        asset_selection=list(asset_keys),
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title,
        description=None,
        run_config=run_config,
    )
    instance.add_backfill(backfill)
    return backfill_id


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})))


def wait_for_backfill(
    instance: dg.DagsterInstance,
    backfill_id: str,
    timeout: float = 600,
    on_tick=None,
    poll: float = 1.0,
    partition_keys: Sequence[str] | None = None,
) -> BulkActionStatus:
    """Wait until the backfill is done. The daemon marks a backfill done only on its next
    iteration (every 30 s); with `partition_keys`, return as soon as every key has a
    successful run and no run of the backfill is still going."""
    deadline = time.monotonic() + timeout
    while True:
        backfill = instance.get_backfill(backfill_id)
        runs = backfill_runs(instance, backfill_id)
        if on_tick:
            on_tick(backfill, runs)
        if backfill.status in BACKFILL_DONE and all(r.is_finished for r in runs):
            return backfill.status
        if partition_keys is not None and _all_succeeded(runs, partition_keys):
            return BulkActionStatus.COMPLETED_SUCCESS
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill {backfill_id} still {backfill.status.value}")
        time.sleep(poll)


def _all_succeeded(runs: Sequence[dg.DagsterRun], partition_keys: Sequence[str]) -> bool:
    if not runs or not all(r.is_finished for r in runs):
        return False
    done = {
        r.tags.get("dagster/partition") for r in runs if r.status == dg.DagsterRunStatus.SUCCESS
    }
    return set(partition_keys) <= done
