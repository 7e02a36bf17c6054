"""Load the real definitions in a fresh process (settings are read at import) and report, as
JSON on stdout, what a user would meet: load errors and warnings, the list sensors' ticks, the
schedules' evaluations and, optionally, one materialized lead partition.

Usage: python -m marketo_assets_tests.dagster.settings_worker '{"materialize": "2025-01-01"}'
Options: materialize (a lead partition key), run_config (for that run), sensors, schedules,
list_export (a static list partition key, e.g. static-1001), demo (the demo's partitions).
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import UTC, datetime


def _error_text(exc: BaseException) -> str:
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _outcome(result) -> dict:
    if result is None:
        return {"skip": None, "runs": []}
    if hasattr(result, "skip_message"):  # a SkipReason
        return {"skip": result.skip_message, "runs": []}
    if isinstance(result, list):
        return {"skip": None, "runs": [r.partition_key for r in result]}
    if hasattr(result, "run_requests"):  # a SensorResult
        skip = result.skip_reason.skip_message if result.skip_reason else None
        return {"skip": skip, "runs": [r.partition_key for r in result.run_requests or []]}
    return {"skip": None, "runs": [getattr(result, "partition_key", None)]}


def main(options: dict) -> dict:
    import dagster as dg

    out: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from marketo_assets.definitions import defs

            d = defs()
        except Exception as exc:
            out["load_error"] = _error_text(exc)
            return out
    out["warnings"] = [str(w.message) for w in caught if "marketo" in str(w.message).lower()]
    out["export_format"] = d.resources["export_options"].format
    out["lead_partitions"] = len(
        d.get_assets_def(dg.AssetKey(["marketo", "leads"])).partitions_def.get_partition_keys()
    )
    with dg.DagsterInstance.ephemeral() as instance:
        if options.get("sensors"):
            out["sensors"] = {}
            for name in ("static_list_sensor", "smart_list_sensor"):
                sensor = d.resolve_sensor_def(name)
                entry = {"description": sensor.description, "error": None}
                try:
                    with dg.build_sensor_context(
                        instance=instance, resources=d.resources
                    ) as context:
                        entry.update(_outcome(sensor(context)))
                except Exception as exc:
                    entry["error"] = _error_text(exc)
                out["sensors"][name] = entry
        if options.get("schedules"):
            out["schedules"] = {}
            for name in ("daily_open_window_refresh", "daily_lead_changes_refresh"):
                schedule = d.resolve_schedule_def(name)
                entry = {"description": schedule.description, "error": None}
                try:
                    with dg.build_schedule_context(
                        instance=instance,
                        scheduled_execution_time=datetime.now(UTC),
                        resources=d.resources,
                    ) as context:
                        entry.update(_outcome(schedule(context)))
                except Exception as exc:
                    entry["error"] = _error_text(exc)
                out["schedules"][name] = entry
        if options.get("materialize"):
            assets = [
                d.get_assets_def(dg.AssetKey(["marketo", name]))
                for name in ("lead_export_files", "leads")
            ]
            try:
                result = dg.materialize(
                    assets,
                    partition_key=options["materialize"],
                    resources=d.resources,
                    instance=instance,
                    run_config=options.get("run_config"),
                    raise_on_error=False,
                )
                out["materialized"] = result.success
            except Exception as exc:
                out["materialized"] = False
                out["materialize_error"] = _error_text(exc)
        if options.get("list_export"):
            key = options["list_export"]
            instance.add_dynamic_partitions("static_lists", [key])
            assets = [
                d.get_assets_def(dg.AssetKey(["marketo", name]))
                for name in ("static_list_export_files", "static_list_members")
            ]
            result = dg.materialize(
                assets,
                partition_key=key,
                resources=d.resources,
                instance=instance,
                raise_on_error=False,
            )
            out["list_export"] = result.success
            out["list_export_error"] = "\n".join(
                e.step_failure_data.error.message for e in result.all_events if e.is_step_failure
            )
    if options.get("demo"):
        from marketo_assets.local.demo import demo_partitions

        try:
            out["demo_partitions"] = demo_partitions(d, simulated=True)
        except Exception as exc:
            out["demo_error"] = _error_text(exc)
    return out


if __name__ == "__main__":
    report = main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
    print("WORKER " + json.dumps(report), flush=True)
