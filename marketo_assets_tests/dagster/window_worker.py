"""A run process for the partition-window tests: lead partitions are built when the definitions
load, from MARKETO_PARTITION_START/WINDOW/TIMEZONE, so a test that changes them runs
its Dagster runs here, in a process started with those variables (as a user's would be).

    python -m marketo_assets_tests.dagster.window_worker [--until DATE] [--only export|load]
                                                         [KEY ...]

Materializes the lead partitions KEY (default: every partition whose window starts before
--until, in order) with the in-process executor, one run each, against $DAGSTER_HOME, using
the project's resources (read from the environment the test builds, `conftest.run_env`).
Prints one JSON line: the partition keys of the definition and, per run, success, the error,
the asset check results and the export/load metadata.
"""

import argparse
import json
from datetime import datetime

import dagster as dg

from marketo_assets.defs.partitions import lead_windows
from marketo_assets.defs.resources import build_resources
from marketo_assets.settings import load_list_settings, load_settings
from marketo_assets_tests.support.assets import lead_export_files, leads


def _value(entry) -> object:
    value = getattr(entry, "value", entry)
    return value if isinstance(value, str | int | float | bool | list | dict) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("keys", nargs="*")
    parser.add_argument("--until", help="YYYY-MM-DD: partitions whose window starts before it")
    parser.add_argument("--only", choices=("export", "load"))
    args = parser.parse_args()

    windows = lead_windows(load_settings())
    all_keys = windows.get_partition_keys()
    keys = args.keys
    if not keys and args.until:
        until = datetime.fromisoformat(args.until)
        keys = [
            k
            for k in all_keys
            if windows.time_window_for_partition_key(k).start.replace(tzinfo=None) < until
        ]
    assets = {"export": [lead_export_files], "load": [leads]}.get(args.only or "", [])
    instance = dg.DagsterInstance.get()
    runs = {}
    for key in keys:
        result = dg.materialize(
            assets or [lead_export_files, leads],
            partition_key=key,
            resources=build_resources(load_settings(), load_list_settings()),
            instance=instance,
            raise_on_error=False,
            selection=assets or None,
        )
        failures = result.get_step_failure_events()
        runs[key] = {
            "success": result.success,
            "error": failures[0].step_failure_data.error.message if failures else None,
            "checks": {e.check_name: e.passed for e in result.get_asset_check_evaluations()},
            "metadata": {
                node: {
                    k: _value(v)
                    for m in result.asset_materializations_for_node(node)
                    for k, v in m.metadata.items()
                }
                for node in ("marketo__lead_export_files", "marketo__leads")
            },
        }
    print(json.dumps({"partition_keys": all_keys[:60], "runs": runs}))


if __name__ == "__main__":
    main()
