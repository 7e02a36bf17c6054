"""Measured processes: `python -m bench.worker KIND CONFIG_JSON` prints one BENCH_RESULT line.

Kinds: `ctas` / `load` (DuckDB), `materialize` (both lead assets of one partition through
Dagster, in this process), `slots` (backfills through the Dagster daemon). Times are taken
inside the worker around the measured call; `ready_seconds` is how long the interpreter took
to get there (imports), reported separately.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.common import emit


def _ready_seconds() -> float:
    return round(time.time() - psutil.Process().create_time(), 3)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------- DuckDB
def ctas(cfg: dict[str, Any]) -> dict[str, Any]:
    """DuckDB's own `CREATE TABLE AS SELECT * FROM read_csv(...)` of the file (the reference)."""
    import duckdb

    conn = duckdb.connect(cfg["db"])
    ready = _ready_seconds()
    cpu0, t0 = _cpu(), time.perf_counter()
    conn.execute("CREATE TABLE leads AS SELECT * FROM read_csv($1)", [cfg["file"]])
    seconds = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    rows = conn.execute("SELECT count(*) FROM leads").fetchone()[0]
    conn.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows, "ready_seconds": ready}


def load(cfg: dict[str, Any]) -> dict[str, Any]:
    """Our loader: load_partition into `marketo.leads` (typed, lineage, one transaction)."""
    import duckdb

    from marketo_assets.warehouse import columns_for, load_partition

    conn = duckdb.connect(cfg["db"])
    columns = columns_for([tuple(ft) for ft in cfg["field_types"]], {})
    ready = _ready_seconds()
    cpu0, t0 = _cpu(), time.perf_counter()
    result = load_partition(
        conn,
        table=cfg.get("table", "marketo.leads"),
        file_path=cfg["file"],
        file_format="CSV",
        columns=columns,
        partition_key=cfg.get("partition", "2025-01-01"),
        lineage={"_export_id": cfg.get("export_id", "bench"), "_loaded_at": datetime.now(UTC)},
    )
    seconds = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    conn.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": result.rows, "ready_seconds": ready}


# ---------------------------------------------------------------------------------- Dagster
def _resources(cfg: dict[str, Any]) -> dict[str, Any]:
    from dagster_duckdb import DuckDBResource

    from marketo_assets.defs.resources import ExportOptions, MarketoResource

    work = Path(cfg["dir"])
    work.mkdir(parents=True, exist_ok=True)  # the warehouse check refuses a missing folder
    marketo_cls = MarketoResource
    extra: dict[str, Any] = {}
    if cfg.get("advance_clock"):
        marketo_cls = _clock_resource_class()
        extra["control_url"] = cfg["base_url"]
    marketo = marketo_cls(
        base_url=cfg["base_url"],
        client_id=cfg["client_id"],
        client_secret=cfg["client_secret"],
        poll_interval=cfg.get("poll_interval", 0.2),
        job_timeout=cfg.get("job_timeout", 3600.0),
        max_calls_per_window=cfg.get("max_calls_per_window", 80),
        daily_quota_mb=cfg.get("daily_quota_mb", 1_000_000),
        staging_dir=str(work / "exports"),
        ledger_path=str(work / "ledger.sqlite"),
        **extra,
    )
    return {
        "marketo": marketo,
        "export_options": ExportOptions(fields=cfg.get("fields") or []),
        "warehouse": DuckDBResource(database=str(work / "marketo.duckdb")),
    }


def _clock_resource_class():
    """A MarketoResource whose client sleeps by advancing the simulator's clock: a 10-minute
    Marketo job is polled exactly as in real time, in a second of real time."""
    import httpx

    from marketo_assets.defs.resources import MarketoResource
    from marketo_assets.marketo import MarketoClient

    class ClockAdvancingMarketo(MarketoResource):
        control_url: str

        @contextmanager
        def client(self, on_event=None):  # type: ignore[no-untyped-def]
            control = httpx.Client(base_url=self.control_url, trust_env=False, timeout=60)

            def sleep(seconds: float) -> None:
                control.post("/_sim/clock/advance", json={"seconds": seconds}).raise_for_status()

            client = MarketoClient(self.client_settings(), on_event=on_event, sleep=sleep)
            try:
                yield client
            finally:
                client.close()
                control.close()

    return ClockAdvancingMarketo


def materialize(cfg: dict[str, Any]) -> dict[str, Any]:
    """Materialize lead_export_files (+ leads unless export_only) for one partition, in process,
    on the persistent instance of DAGSTER_HOME; then, with cfg["floor_repeats"], time Dagster's
    floor (bench/floor.py: empty runs of the same shape) in this same process."""
    import dagster as dg

    from marketo_assets.defs.leads import lead_assets
    from marketo_assets.settings import load_settings

    lead_export_files, leads = lead_assets(load_settings())
    assets = [lead_export_files] if cfg.get("export_only") else [lead_export_files, leads]
    resources = _resources(cfg)
    with dg.DagsterInstance.get() as instance, _timed_marketo_wait() as waited:
        ready = _ready_seconds()
        cpu0, t0, wall0 = _cpu(), time.perf_counter(), time.time()
        with _profiled():
            result = dg.materialize(
                assets,
                partition_key=cfg["partition"],
                resources=resources,
                instance=instance,
                raise_on_error=False,
            )
            seconds = time.perf_counter() - t0  # not the profiler's report
        cpu = _cpu() - cpu0
        steps = _step_seconds(instance, result.run_id)
        logs = instance.all_logs(result.run_id)
        started = [e.timestamp for e in logs if e.dagster_event and e.dagster_event.is_job_event]
        before_start = round(min(started) - wall0, 3) if started else None
        phases = _phases(logs, wall0, wall0 + seconds)
    floor = None
    if cfg.get("floor_repeats") and result.success:
        from bench import floor as dagster_floor

        shape = dagster_floor.shape_of(logs, export_step="marketo__lead_export_files")
        floor = dagster_floor.measure(
            lead_export_files,
            leads,
            shape,
            partition=cfg["partition"],
            repeats=cfg["floor_repeats"],
            work=Path(cfg["dir"]),
            phases=_phases,
        )
    metadata: dict[str, Any] = {}
    for node in ("marketo__lead_export_files", "marketo__leads"):
        if result.success or node == "marketo__lead_export_files":
            for mat in result.asset_materializations_for_node(node):
                for k, v in mat.metadata.items():
                    metadata[f"{node.removeprefix('marketo__')}.{k}"] = getattr(v, "value", v)
    return {
        "success": result.success,
        "seconds": seconds,
        "started_at": wall0,  # epoch seconds: to line traces up with the run
        "cpu_seconds": cpu,
        "ready_seconds": ready,
        "steps": steps,
        "marketo_wait_seconds": round(sum(waited), 3),
        "dagster_events": len(logs),
        "dagster_event_types": _event_types(logs),
        "before_run_start_seconds": before_start,  # creating the run: planned events
        "phases": phases,
        "floor": floor,  # Dagster's own: an empty run of this run's shape, timed after it
        "metadata": {k: v for k, v in metadata.items() if isinstance(v, int | float | str)},
    }


@contextmanager
def _profiled():
    """With BENCH_PYINSTRUMENT=PATH, profile the block with pyinstrument (a dev dependency)
    and write its text report to PATH (PATH.html too): the profile behind row 3's note."""
    path = os.environ.get("BENCH_PYINSTRUMENT")
    if not path:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(path).write_text(profiler.output_text(unicode=True, show_all=False))
        Path(path + ".html").write_text(profiler.output_html())
        if profiler.last_session:
            profiler.last_session.save(path + ".session")


@contextmanager
def _timed_marketo_wait():
    """Seconds spent in `MarketoClient.wait_for_export` (Marketo's queue and processing, as
    the client polls it), collected while the block runs; less the time its status events
    took (each a log line: an event Dagster stores, part of the fixed cost)."""
    from marketo_assets.marketo import MarketoClient

    original, status_event = MarketoClient.wait_for_export, MarketoClient._status_event
    waited: list[float] = []

    def timed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            waited.append(time.perf_counter() - t0)

    def logged(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return status_event(self, *args, **kwargs)
        finally:
            waited.append(t0 - time.perf_counter())

    MarketoClient.wait_for_export = timed  # type: ignore[method-assign]
    MarketoClient._status_event = logged  # type: ignore[method-assign]
    try:
        yield waited
    finally:
        MarketoClient.wait_for_export = original  # type: ignore[method-assign]
        MarketoClient._status_event = status_event  # type: ignore[method-assign]


def create_run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Create a run of `marketo/lead_export_files` for one partition, as the UI or a backfill
    would, from the code location `marketo_assets.definitions`; return the serialized arguments
    of `dagster api execute_run` (the run process of row 0)."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import serialize_value

    from marketo_assets.defs.leads import LEAD_EXPORTS
    from marketo_assets.settings import PROJECT_ROOT

    repo = ReconstructableRepository.for_module(
        "marketo_assets.definitions", "defs", working_directory=str(PROJECT_ROOT)
    )
    job = repo.get_reconstructable_job("__ASSET_JOB").get_subset(
        asset_selection=frozenset({LEAD_EXPORTS})
    )
    job_def = job.get_definition()
    with dg.DagsterInstance.get() as instance:
        run = instance.create_run_for_job(
            job_def=job_def,
            run_config={},
            tags={"dagster/partition": cfg["partition"]},
            asset_selection=frozenset({LEAD_EXPORTS}),
            job_code_origin=job.get_python_origin(),
        )
        args = ExecuteRunArgs(
            job_origin=job.get_python_origin(),
            run_id=run.run_id,
            instance_ref=instance.get_ref(),
        )
    return {"args": serialize_value(args), "run_id": run.run_id}


def api_calls(cfg: dict[str, Any]) -> dict[str, Any]:
    """Row 5: run the export step once per entry of cfg["runs"] (same process, so Dagster is
    imported once) and read the simulator's request counters around each run."""
    import httpx

    control = httpx.Client(base_url=cfg["base_url"], trust_env=False, timeout=60)

    def state() -> dict[str, Any]:
        r = control.get("/_sim/state")
        r.raise_for_status()
        return r.json()

    out = []
    for run in cfg["runs"]:
        control.post("/_sim/config", json=run["sim_config"]).raise_for_status()
        before = state()
        result = materialize(
            {
                **cfg,
                **run["config"],
                "dir": str(Path(cfg["dir"]) / run["name"]),
                "advance_clock": True,
                "export_only": True,
            }
        )
        after = state()
        known = {j["exportId"] for j in before["jobs"]}
        out.append(
            {
                "name": run["name"],
                "success": result["success"],
                "seconds": result["seconds"],
                "jobs": [j for j in after["jobs"] if j["exportId"] not in known],
                "before": before["requests"],
                "after": after["requests"],
            }
        )
    control.close()
    return {"runs": out}


def _phases(logs, start: float, end: float) -> dict[str, float]:
    """Wall seconds of a run's phases, from its stored events' timestamps: `create` (the
    call until RUN_START: the run and its planned events), `run_start` (RUN_START until the
    first step starts: resources, log capture), each step (STEP_START to STEP_SUCCESS, by
    step key), `between` (after one step's success until the next starts, and after the last
    until RUN_SUCCESS), `finish` (RUN_SUCCESS until the call returned); with `*_events`, how
    many events each of create / run_start / between stored."""
    import dagster as dg

    T = dg.DagsterEventType
    out: dict[str, float] = {}
    counts = {"create": 0, "run_start": 0, "between": 0}
    phase, mark = "create", start
    for entry in logs:
        ev = entry.dagster_event
        kind = ev.event_type if ev else None
        if kind in (T.RUN_START, T.STEP_START, T.STEP_SUCCESS, T.RUN_SUCCESS):
            out[phase] = round(out.get(phase, 0.0) + entry.timestamp - mark, 4)
            mark = entry.timestamp
            phase = {
                T.RUN_START: "run_start",
                T.STEP_START: f"step:{entry.step_key}",
                T.STEP_SUCCESS: "between",
                T.RUN_SUCCESS: "finish",
            }[kind]
        if phase in counts:
            counts[phase] += 1
    out[phase] = round(out.get(phase, 0.0) + end - mark, 4)
    out.update({f"{k}_events": v for k, v in counts.items()})
    return out


def _event_types(logs) -> dict[str, int]:
    """How many stored events of each type the run wrote (log lines as LOG)."""
    counts: dict[str, int] = {}
    for entry in logs:
        name = entry.dagster_event.event_type_value if entry.dagster_event else "LOG"
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    import dagster as dg

    starts: dict[str, float] = {}
    out: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or not entry.step_key:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif ev.event_type == dg.DagsterEventType.STEP_SUCCESS and entry.step_key in starts:
            out[entry.step_key] = round(entry.timestamp - starts[entry.step_key], 3)
    return out


# ---------------------------------------------------------------------------------- daemon
def slots(cfg: dict[str, Any]) -> dict[str, Any]:
    """Backfills through the daemon (env: DAGSTER_HOME, MARKETO_* set by the parent). Phases run
    one after the other; each sets the simulator's rows_per_second first. All must end before
    cfg["deadline"] (epoch seconds): a phase still running then is reported as timed out (with
    the runs that finished) and later phases are skipped; the daemon and its runs are stopped."""
    import dagster as dg
    import httpx

    from marketo_assets.definitions import defs as load_defs
    from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
    from marketo_assets.local.instance import (
        ensure_pools,
        launch_backfill,
        running_daemon,
        wait_for_backfill,
    )

    control = httpx.Client(base_url=os.environ["MARKETO_BASE_URL"], trust_env=False, timeout=60)
    defs = load_defs()
    phases: list[dict[str, Any]] = []
    deadline = float(cfg["deadline"])
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        for pool, limit in cfg.get("pools", {}).items():  # what-if experiments only
            instance.event_log_storage.set_concurrency_slots(pool, limit)
        stopped = _stop_instigators(instance)

        def submit(phase: dict[str, Any]) -> tuple[str, float]:
            control.post(
                "/_sim/config", json={"rows_per_second": phase["rows_per_second"]}
            ).raise_for_status()
            submitted = time.time()
            backfill_id = launch_backfill(
                instance, defs, [LEAD_EXPORTS, LEADS], phase["keys"], title=phase["name"]
            )
            return backfill_id, submitted

        # The first backfill is submitted before the daemon starts: its first backfill tick
        # (right at start) picks it up, instead of up to 30 s later.
        first = submit(cfg["phases"][0])
        with running_daemon(log_path=Path(cfg["dir"]) / "daemon.log"):
            for i, phase in enumerate(cfg["phases"]):
                remaining = deadline - time.time()
                if i and remaining < phase.get("min_seconds", 0):
                    phases.append({"name": phase["name"], "status": "SKIPPED"})
                    continue
                backfill_id, submitted = first if i == 0 else submit(phase)
                try:
                    status = wait_for_backfill(
                        instance, backfill_id, timeout=max(1.0, remaining), poll=0.25
                    ).value
                except TimeoutError:
                    status = "TIMED_OUT"
                phases.append(
                    _phase_result(instance, phase["name"], backfill_id, submitted, status)
                )
                if status == "TIMED_OUT":
                    break
    control.close()
    return {"phases": phases, "stopped": stopped}


def _phase_result(instance, name: str, backfill_id: str, submitted: float, status: str) -> dict:
    import dagster as dg

    now = time.time()
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})
    )
    runs = [
        {
            "partition": r.dagster_run.tags.get("dagster/partition"),
            "status": r.dagster_run.status.value,
            "create": r.create_timestamp.timestamp() - submitted,
            "start": r.start_time - submitted if r.start_time else None,
            "end": r.end_time - submitted if r.end_time else None,
        }
        for r in records
    ]
    first = min(r["create"] for r in runs) if runs else now - submitted
    ends = [r["end"] for r in runs]
    last = max(ends) if runs and None not in ends else now - submitted
    return {
        "name": name,
        "status": status,
        "submitted": submitted,
        "first_run_created": first,
        "makespan": last - first,
        "runs_done": sum(e is not None for e in ends),
        "runs": sorted(runs, key=lambda r: (r["start"] is None, r["start"] or 0)),
    }


def _stop_instigators(instance) -> list[str]:
    """Stop every sensor and schedule of the workspace (as a user would in the UI), so that only
    the backfill runs: list sensors and the dbt automation would add runs and REST calls."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    from marketo_assets.settings import PROJECT_ROOT

    stopped = []
    target = WorkspaceFileTarget(paths=[str(PROJECT_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target) as ctx:
        for location in ctx.create_request_context().code_locations:
            for repo in location.get_repositories().values():
                for sensor in repo.get_sensors():
                    instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
                    stopped.append(sensor.name)
                for schedule in repo.get_schedules():
                    instance.stop_schedule(
                        schedule.get_remote_origin_id(), schedule.selector_id, schedule
                    )
                    stopped.append(schedule.name)
    return stopped


KINDS = {
    "ctas": ctas,
    "load": load,
    "materialize": materialize,
    "api_calls": api_calls,
    "create_run": create_run,
    "slots": slots,
}


def main() -> int:
    # SIGTERM (the runner's time limit) unwinds like an exception: daemons get stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    kind, raw = sys.argv[1], sys.argv[2]
    emit(KINDS[kind](json.loads(raw)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
