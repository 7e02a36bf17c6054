"""Helpers of the list tests: sensor ticks applied as the daemon would, their runs executed
in-process, and what DuckDB and the simulator hold."""

from __future__ import annotations

import dagster as dg
import duckdb

from marketo_assets.defs.lists import lists

from .assets import (
    smart_list_export_files,
    smart_list_members,
    static_list_export_files,
    static_list_members,
)

ASSETS = {
    "export_static_lists": [static_list_export_files, static_list_members],
    "export_smart_lists": [smart_list_export_files, smart_list_members],
    "refresh_list_catalog": [lists],
}


def tick(sensor, instance, resources, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        result = sensor(ctx)
    if isinstance(result, dg.SkipReason):
        return dg.SensorResult(skip_reason=result)
    return result


def apply_partitions(instance, result) -> None:
    """What the daemon does with the tick's dynamic partition requests."""
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        elif isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def partition_requests(result) -> tuple[list[str], list[str]]:
    added, deleted = [], []
    for request in result.dynamic_partitions_requests or []:
        target = added if isinstance(request, dg.AddDynamicPartitionsRequest) else deleted
        target.extend(request.partition_keys)
    return sorted(added), sorted(deleted)


def member_runs(result) -> list[dg.RunRequest]:
    return [r for r in result.run_requests or [] if r.partition_key]


def execute(run_request, instance, resources, raise_on_error=True):
    return dg.materialize(
        ASSETS[run_request.job_name],
        partition_key=run_request.partition_key,
        resources=resources,
        instance=instance,
        tags=run_request.tags,
        raise_on_error=raise_on_error,
    )


def execute_all(result, instance, resources) -> None:
    apply_partitions(instance, result)
    for run_request in result.run_requests or []:
        assert execute(run_request, instance, resources).success


def members(tmp_path, kind: str) -> dict[int, list[int]]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            f"SELECT _list_id, id FROM marketo.marketo.{kind}_list_members ORDER BY 1, 2"
        ).fetchall()
    out: dict[int, list[int]] = {}
    for list_id, lead_id in rows:
        out.setdefault(list_id, []).append(lead_id)
    return out


def catalog(tmp_path) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT list_type, list_id, partition_key, name FROM marketo.marketo.lists "
            "ORDER BY 1, 2"
        ).fetchall()


def truth(sim, kind: str, list_id: int) -> list[int]:
    return sorted(sim.truth({f"{kind}ListId": list_id}, ids=True)["ids"])
