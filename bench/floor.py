"""Dagster's floor under row 3: an empty run of the same shape as row 3's run, timed in the same
worker process, on a fresh instance of the same kind (the project's dagster.yaml, SQLite) and on
Dagster's in-memory instance.

Same shape: the two asset keys, partitions and pools of row 3's assets, the load asset depending
on the export asset, as many asset checks and log lines (per step) as row 3's run stored; no
resources and no work inside. What is left of row 3's fixed cost above it is ours.
"""

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import dagster as dg

from bench.transfer import dagster_home
from marketo_assets.local.instance import instance_at


def shape_of(logs, export_step: str) -> dict[str, int]:
    """From a run's stored events: asset checks evaluated, log lines of the export step and of
    the rest (the load step; lines outside any step counted with it), events in all."""
    evaluation = dg.DagsterEventType.ASSET_CHECK_EVALUATION
    checks = sum(1 for e in logs if e.dagster_event and e.dagster_event.event_type == evaluation)
    lines = [e for e in logs if e.dagster_event is None]
    export_logs = sum(1 for e in lines if e.step_key == export_step)
    return {
        "checks": checks,
        "export_logs": export_logs,
        "load_logs": len(lines) - export_logs,
        "events": len(logs),
    }


def empty_assets(export: dg.AssetsDefinition, load: dg.AssetsDefinition, shape: dict[str, int]):
    """Two assets with the keys, partitions and pools of `export` and `load`, doing nothing but
    logging shape's lines and reporting shape's checks as passed."""
    checks = [dg.AssetCheckSpec(f"check_{i}", asset=load.key) for i in range(shape["checks"])]

    @dg.asset(key=export.key, partitions_def=export.partitions_def, pool=export.op.pool)
    def empty_export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        for i in range(shape["export_logs"]):
            context.log.info(f"line {i}")
        return dg.MaterializeResult()

    @dg.asset(
        key=load.key,
        deps=[export.key],
        partitions_def=load.partitions_def,
        pool=load.op.pool,
        check_specs=checks,
    )
    def empty_load(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        for i in range(shape["load_logs"]):
            context.log.info(f"line {i}")
        results = [dg.AssetCheckResult(check_name=c.name, passed=True) for c in checks]
        return dg.MaterializeResult(check_results=results)

    return [empty_export, empty_load]


def measure(
    export: dg.AssetsDefinition,
    load: dg.AssetsDefinition,
    shape: dict[str, int],
    *,
    partition: str,
    repeats: int,
    work: Path,
    phases: Callable[..., dict[str, float]],
) -> dict[str, Any]:
    """The floor on a fresh instance like row 3's (`sqlite`) and on an in-memory one
    (`in_memory`): one warm-up run, then `repeats` runs, each of the next partition."""
    assets = empty_assets(export, load, shape)
    keys = _partitions_from(export.partitions_def, partition, repeats + 1)

    def sqlite() -> AbstractContextManager[dg.DagsterInstance]:
        return instance_at(dagster_home(work / "floor_home"))

    return {
        "shape": shape,
        "pools": [p for p in (export.op.pool, load.op.pool) if p],
        "sqlite": _timed_runs(sqlite, assets, keys, phases),
        "in_memory": _timed_runs(dg.DagsterInstance.ephemeral, assets, keys, phases),
    }


def _partitions_from(partitions_def, first: str, n: int) -> list[str]:
    keys = partitions_def.get_partition_keys()
    start = keys.index(first) if first in keys else 0
    return [keys[(start + i) % len(keys)] for i in range(n)]


def _timed_runs(new_instance, assets, keys: list[str], phases) -> dict[str, Any]:
    """Run 0 warms up (not counted); of the others, the median run by wall time (the upper one
    of an even count), split as row 3's fixed cost is: creating the run, in the run, after
    RUN_SUCCESS."""
    runs, warm_up = [], 0.0
    with new_instance() as instance:
        for i, key in enumerate(keys):
            wall0, t0 = time.time(), time.perf_counter()
            result = dg.materialize(assets, partition_key=key, instance=instance)
            seconds = time.perf_counter() - t0
            logs = instance.all_logs(result.run_id)
            if not result.success:
                raise RuntimeError("the empty run of the floor failed")
            if not i:
                warm_up = round(seconds, 4)
            else:
                ph = phases(logs, wall0, wall0 + seconds)
                create, finish = ph.get("create", 0.0), ph.get("finish", 0.0)
                runs.append(
                    {
                        "seconds": round(seconds, 4),
                        "create": create,
                        "in_run": round(seconds - create - finish, 4),
                        "finish": finish,
                        "events": len(logs),
                    }
                )
    median = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**median, "runs": [r["seconds"] for r in runs], "warm_up": warm_up}
