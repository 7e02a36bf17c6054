"""`make demo`: simulator → backfill of six monthly partitions through the Dagster daemon → summary.

A second backfill, in the same daemon and pools, exports a week of activities and deleted leads
(`activity_demo.py`). The list sensors and the program sensor tick in the same daemon and export
the selected lists and program (simulator: static list 1001, smart list 5001, program 3002, see
`environment.py`); the summary prints rows per list, of the week and of the program.

Then the dbt models are brought up to date through the same daemon (`models.py`; the dbt
automation sensor ticks there too) and the summary counts `dim_leads` and `fct_list_membership`.

Runs against a real Marketo instead when MARKETO_BASE_URL/CLIENT_ID/CLIENT_SECRET are set.

Stopped with Ctrl-C, SIGTERM or SIGHUP, it stops the daemon with its code server and runs, and
the simulator, cancels its backfills and unfinished runs, and exits with 128 + the signal.
MARKETO_DEMO_LEADS sets the simulator's lead count (default 200,000; tests use fewer).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
from marketo_assets.defs.programs import PROGRAM_PARTITIONS
from marketo_assets.extract.windows import future_start
from marketo_assets.settings import PROJECT_ROOT, SettingsError, load_settings

from . import activity_demo as week
from .environment import DEMO_SIMULATOR, marketo_target
from .instance import (
    Stopped,
    abandon_runs,
    backfill_runs,
    ensure_pools,
    launch_backfill,
    running_daemon,
    stop_on_signals,
    wait_for_backfill,
)
from .list_demo import forget_list_sensor_state, wait_for_list_sensors
from .models import build_models, model_summary

MB = 1024 * 1024
DONE = ("COMPLETED_SUCCESS", "COMPLETED")


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def demo_partitions(defs: dg.Definitions, simulated: bool) -> list[str]:
    if reason := future_start(load_settings()):
        raise SettingsError(reason)
    windows = defs.get_assets_def(LEADS).partitions_def
    assert windows is not None
    keys = windows.get_partition_keys()
    if simulated:
        return [k for k in keys if "2025-01-01" <= k < "2025-07-01"]
    return list(keys[-7:-1])  # the six most recent complete windows


def main() -> int:
    with stop_on_signals():
        try:
            return _run()
        except Stopped as stop:
            _say(f"Stopped ({stop}): the daemon, its runs and the simulator were stopped.")
            return 128 + stop.signum


def _run() -> int:
    started = time.monotonic()
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    if reason := future_start(settings):  # before starting anything
        _say(reason)
        return 2
    log_dir = Path(os.environ["DAGSTER_HOME"]) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    simulator_args = {}
    if os.environ.get("MARKETO_DEMO_LEADS"):
        simulator_args["leads"] = int(os.environ["MARKETO_DEMO_LEADS"])

    with marketo_target(**simulator_args) as target:
        os.environ.update(target.env)
        where = "the Marketo simulator" if target.is_simulator else os.environ["MARKETO_BASE_URL"]
        _say(f"Marketo: {where}")
        _say(f"DuckDB:  {settings.duckdb_path}")
        _say(f"Dagster: {os.environ['DAGSTER_HOME']}")

        from marketo_assets.definitions import defs as load_defs

        defs = load_defs()
        keys = demo_partitions(defs, target.is_simulator)
        week_end = _week_end(target.is_simulator)
        week_parts = week.week_backfills(defs, week_end)
        with dg.DagsterInstance.get() as instance:
            ensure_pools(instance)
            if target.is_simulator:  # a new simulator: the list sensors tick at once
                forget_list_sensor_state(instance)
            sensors_since = time.time()
            try:
                with running_daemon(log_path=log_dir / "dagster-daemon.log"):
                    backfill_id = launch_backfill(
                        instance, defs, [LEAD_EXPORTS, LEADS], keys, title="make demo"
                    )
                    _say(f"Backfill {backfill_id}: {len(keys)} partitions {keys[0]} … {keys[-1]}")
                    week_ids = _launch_week(instance, defs, week_parts)
                    progress = _progress(instance, week_ids)
                    waits = [(backfill_id, keys)]
                    waits += [
                        (b, part.partitions) for b, part in zip(week_ids, week_parts, strict=True)
                    ]
                    statuses = [
                        wait_for_backfill(
                            instance, b, timeout=900, on_tick=progress, partition_keys=k
                        )
                        for b, k in waits
                    ]
                    lists = wait_for_list_sensors(instance, sensors_since, say=_say)
                    # dbt: the other code location, over the raw assets of this one
                    from marketo_assets.dbt_definitions import defs as load_dbt_defs

                    both = dg.Definitions.merge(defs, load_dbt_defs())
                    models = build_models(instance, both, sensors_since, say=_say)
                    programs = instance.get_dynamic_partitions(str(PROGRAM_PARTITIONS.name))
                    loaded = week.reported(instance, week_parts, programs)
            finally:
                # The daemon and its runs are stopped (also a run a sensor started at the end):
                # leave nothing unfinished for a later daemon to pick up.
                abandon_runs(instance, sensors_since)
        status = next((s for s in statuses if s.value not in DONE), statuses[0])
        _say(f"Backfills finished: {status.value}")
        quota = target.simulator.state()["quota_used_bytes"] if target.simulator else None
        expected = week.Expected()
        if target.simulator:
            start = week_end - timedelta(days=week.DAYS)
            ids = [int(p) for p in programs if p.isdigit()]
            expected = week.simulator_truth(target.simulator, start, week_end, ids)

    lists_ok = _list_summary(settings.duckdb_path, lists)
    week_ok = week.week_summary(settings.duckdb_path, week_parts, loaded, expected, say=_say)
    model_lines, models_ok = model_summary(settings.duckdb_path)
    _say("\n".join(model_lines))
    ok = _summary(settings.duckdb_path, keys, quota, time.monotonic() - started)
    ok = ok and week_ok and models_ok and models.ok
    return 0 if ok and lists_ok and status.value in DONE else 1


def _week_end(simulated: bool) -> datetime:
    """The end of the demo's week: the end of the simulator's leads, else today (UTC)."""
    if simulated:
        return datetime.fromisoformat(str(DEMO_SIMULATOR["created_to"])).replace(tzinfo=UTC)
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _names(keys) -> str:
    return ", ".join(k.to_user_string() for k in keys)


def _launch_week(instance, defs, parts: list[week.WeekBackfill]) -> list[str]:
    ids = []
    for part in parts:
        ids.append(
            launch_backfill(instance, defs, part.assets, part.partitions, title="make demo: week")
        )
        span = f"{part.partitions[0]} … {part.partitions[-1]}"
        _say(f"Backfill {ids[-1]}: {_names(part.assets)} {span}")
    return ids


def _progress(instance: dg.DagsterInstance, also: list[str]):
    """Print each run's status changes, of the backfill waited for and of the `also` ones."""
    seen: dict[str, str] = {}

    def tick(backfill, runs) -> None:
        others = [r for b in also if b != backfill.backfill_id for r in backfill_runs(instance, b)]
        for run in [*runs, *others]:
            key = run.tags.get("dagster/partition") or _names(run.asset_selection or ())
            status = run.status.value
            if seen.get(run.run_id) != status:
                seen[run.run_id] = status
                _say(f"  {key}: {status.lower()}")

    return tick


def _list_summary(duckdb_path: Path, outcome) -> bool:
    import duckdb

    from marketo_assets.warehouse import list_member_counts

    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        rows = list_member_counts(conn)
    _say("")
    _say("List         Rows  Name")
    for key, name, count in rows:
        _say(f"{key:<11} {count:>6,}  {name}")
    if not rows:
        _say("(no list loaded: set MARKETO_STATIC_LISTS / MARKETO_SMART_LISTS)")
    for error in outcome.errors:
        _say(f"List sensors: {error}")
    selected = os.environ.get("MARKETO_STATIC_LISTS") or os.environ.get("MARKETO_SMART_LISTS")
    return outcome.ok and (bool(rows) or not selected)


def _summary(duckdb_path: Path, keys: list[str], quota_bytes: int | None, seconds: float) -> bool:
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        rows = dict(
            conn.execute(
                "SELECT _partition_key, count(*) FROM marketo.marketo.leads GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        (distinct,) = conn.execute(
            "SELECT count(DISTINCT id) FROM marketo.marketo.leads"
        ).fetchall()[0]
    _say("")
    _say("Partition    Rows")
    for key in keys:
        _say(f"{key}  {rows.get(key, 0):>8,}")
    total = sum(rows.get(k, 0) for k in keys)
    _say(f"Total        {total:>8,}  ({distinct:,} distinct lead ids in marketo.leads)")
    if quota_bytes is not None:
        _say(f"Export quota used today: {quota_bytes / MB:.1f} MB of 500 MB")
    _say(f"Time taken: {seconds:.0f} s")
    return all(rows.get(k, 0) > 0 for k in keys)


if __name__ == "__main__":
    sys.exit(main())
