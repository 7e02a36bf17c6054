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
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import dagster as dg
from dagster._core.execution.backfill import (
    BulkActionsFilter,
    BulkActionStatus,
    PartitionBackfill,
)

from marketo_assets.settings import PROJECT_ROOT

POOLS = {"marketo_bulk_export": 2, "duckdb": 1}
BACKFILL_DONE = {
    BulkActionStatus.COMPLETED,
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
}


@contextmanager
def instance_at(home: str | Path) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance of the folder `home` (its dagster.yaml). The project's dagster.yaml
    keeps the storage in DAGSTER_HOME, so it is loaded with DAGSTER_HOME set to `home`."""
    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}):
        instance = dg.DagsterInstance.from_config(str(home))
    with instance:
        yield instance


def ensure_pools(instance: dg.DagsterInstance) -> None:
    """Marketo processes 2 export jobs at a time; DuckDB allows one writer."""
    for pool, limit in POOLS.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)


@contextmanager
def running_daemon(
    env: dict[str, str] | None = None, log_path: Path | None = None
) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the project's workspace (runs queued runs and backfills)."""
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop_process_group(proc)
        if log:
            log.close()


def stop_process_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group of `proc` (started with start_new_session: the daemon, its
    code server and the run workers it launched), wait until every member is gone, SIGKILL
    what is left after `timeout`."""
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _group_alive(proc) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(proc):
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        while _group_alive(proc) and time.monotonic() < deadline + 5:
            time.sleep(0.1)


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap our child, else it stays in the group as a zombie
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


class Stopped(BaseException):
    """Raised in the main thread by SIGINT, SIGTERM or SIGHUP (see `stop_on_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into `Stopped`, so `finally` blocks stop the daemon and
    the simulator (Python's default for SIGTERM ends the process without running them). Once
    one arrived, later ones are ignored: the clean-up is bounded (see stop_process_group) and a
    second Ctrl-C must not cut it short."""

    def handler(signum, frame) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def abandon_runs(instance: dg.DagsterInstance, since: float) -> list[str]:
    """Once the daemon and its process group are gone: cancel the backfills submitted since
    `since` that are not done, and mark every run created since then that did not finish
    canceled (its process is gone), so a later daemon (`make dev`, the next `make demo`) does
    not pick them up and their pool slots are free. Returns the run ids."""
    after = datetime.fromtimestamp(since, UTC)
    for backfill in instance.get_backfills(filters=BulkActionsFilter(created_after=after)):
        if backfill.status not in BACKFILL_DONE:
            instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))
    stopped = []
    for record in instance.get_run_records(filters=dg.RunsFilter(created_after=after)):
        run = record.dagster_run
        if not run.is_finished:
            instance.report_run_canceled(run, message="the daemon that ran it was stopped")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            stopped.append(run.run_id)
    return stopped


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
        if backfill is None:
            raise LookupError(f"no backfill {backfill_id}")
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
    """Every key, and every partition a run was for (None: an unpartitioned asset of the
    backfill), has a successful run (a failed run may have been retried)."""
    if not runs or not all(r.is_finished for r in runs):
        return False
    done = {
        r.tags.get("dagster/partition") for r in runs if r.status == dg.DagsterRunStatus.SUCCESS
    }
    return {*partition_keys, *(r.tags.get("dagster/partition") for r in runs)} <= done
