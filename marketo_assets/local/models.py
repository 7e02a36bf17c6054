"""`make demo`'s dbt part: once the raw loads are done, bring every dbt model up to date.

The `dbt_models_after_raw_loads` sensor runs in the demo's daemon as in `make dev` and may
already have built some models (those that did not exist yet when the daemon started, or whose
raw tables finished loading early). Right after the raw loads the demo submits one backfill of
the models still older than their raw tables, so it does not wait for the sensor's next tick,
then waits for that build and for any dbt run the sensor started. Every build is an ordinary
run in the `duckdb` pool, visible in the UI.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import PartitionBackfill

from .instance import BACKFILL_DONE, backfill_runs

DIM_LEADS = "marts.dim_leads"
LIST_MEMBERSHIP = "marts.fct_list_membership"
ACTIVITIES = "marts.fct_activities"
PROGRAM_MEMBERSHIP = "marts.fct_program_membership"
LEADS_DAILY = "reporting.rpt_leads_created_daily"
AUTOMATION_TAG = "dagster/from_automation_condition"


@dataclass
class ModelsOutcome:
    ok: bool = False
    runs: dict[str, str] = field(default_factory=dict)  # run id -> final status
    backfill: str | None = None  # the demo's own build, if some model was stale


def dbt_asset_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    from marketo_assets.defs.dbt import MODELS_GROUP

    keys = dg.AssetSelection.groups(MODELS_GROUP).resolve(defs.resolve_asset_graph())
    return sorted(keys, key=lambda k: k.to_user_string())


def build_models(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    since: float,
    say: Callable[[str], None] = print,
    timeout: float = 300,
) -> ModelsOutcome:
    """Build the dbt models older than their raw tables, then wait until none is and no dbt
    run is active. `since`: when the daemon started (earlier dbt runs are not reported)."""
    keys = dbt_asset_keys(defs)
    graph = defs.resolve_asset_graph()
    raw_of = {key: _raw_upstream(graph, key, set(keys)) for key in keys}
    cutoff = time.time()  # raw loads after this (a later sensor tick) are the sensor's business
    outcome = ModelsOutcome()

    building = {
        key
        for run in _dbt_runs(instance, keys, since)
        if not run.is_finished
        for key in run.asset_selection or ()
    }
    stale = [k for k in keys if k not in building and not _fresh(instance, k, raw_of, cutoff)]
    if stale:
        outcome.backfill = _launch_backfill(instance, defs, stale)
        say(f"dbt build {outcome.backfill}: {len(stale)} of {len(keys)} models and their tests")
    else:
        say("dbt models: the automation sensor is already building them")

    deadline = time.monotonic() + timeout
    while True:
        runs = _dbt_runs(instance, keys, since)
        for run in runs:
            if run.is_finished and run.run_id not in outcome.runs:
                outcome.runs[run.run_id] = run.status.value
                who = "sensor" if run.tags.get(AUTOMATION_TAG) else "demo"
                say(
                    f"  dbt run {run.run_id[:8]} ({who}, {len(run.asset_selection or ())} "
                    f"models): {run.status.value.lower()}"
                )
        stale = [k for k in keys if not _fresh(instance, k, raw_of, cutoff)]
        if all(r.is_finished for r in runs) and _backfill_done(instance, outcome.backfill):
            outcome.ok = not stale
            if stale:
                say(f"  dbt models not built: {_names(stale)}")
            return outcome
        if time.monotonic() > deadline:
            say(f"  dbt models still being built after {timeout:.0f} s: {_names(stale)}")
            return outcome
        time.sleep(1.0)


def _raw_upstream(graph, key: dg.AssetKey, models: set[dg.AssetKey]) -> set[dg.AssetKey]:
    """The non-dbt assets a model reads, directly or through other models."""
    found: set[dg.AssetKey] = set()
    todo = [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent in models:
                todo.append(parent)
            else:
                found.add(parent)
    return found


def _fresh(instance: dg.DagsterInstance, key: dg.AssetKey, raw_of: dict, cutoff: float) -> bool:
    """Built after the latest load (up to `cutoff`) of every raw table it reads."""
    model = instance.get_latest_materialization_event(key)
    if model is None:
        return False
    for parent in raw_of[key]:
        loaded = instance.get_latest_materialization_event(parent)
        if loaded is not None and min(loaded.timestamp, cutoff) > model.timestamp:
            return False
    return True


def _dbt_runs(instance: dg.DagsterInstance, keys: list[dg.AssetKey], since: float) -> list:
    wanted = set(keys)
    after = datetime.fromtimestamp(since, UTC)
    records = instance.get_run_records(filters=dg.RunsFilter(created_after=after))
    runs = [r.dagster_run for r in records if wanted & set(r.dagster_run.asset_selection or ())]
    return runs[::-1]  # oldest first


def _backfill_done(instance: dg.DagsterInstance, backfill_id: str | None) -> bool:
    """Done when the daemon says so, or (sooner: it looks every 30 s) when the backfill's
    runs all succeeded."""
    backfill = instance.get_backfill(backfill_id) if backfill_id else None
    if backfill is None or backfill.status in BACKFILL_DONE:
        return True
    runs = backfill_runs(instance, backfill.backfill_id)
    return bool(runs) and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)


def _launch_backfill(
    instance: dg.DagsterInstance, defs: dg.Definitions, keys: list[dg.AssetKey]
) -> str:
    backfill_id = uuid.uuid4().hex[:8]
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=defs.resolve_asset_graph(),
            partition_names=None,
            asset_selection=keys,
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=True,  # the dbt assets are unpartitioned: "all" is the one
            title="make demo: dbt models",
            description=None,
            run_config=None,
        )
    )
    return backfill_id


def _names(keys: list[dg.AssetKey]) -> str:
    return ", ".join(k.to_user_string() for k in keys)


def model_summary(duckdb_path: Path) -> tuple[list[str], bool]:
    """Summary lines for the dbt models, and whether the lead and activity models (and the
    program membership, when MARKETO_PROGRAMS selects programs) are populated."""
    import duckdb

    lines = ["", "dbt model                              Rows"]
    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        counts = {}
        for table in (DIM_LEADS, LIST_MEMBERSHIP, ACTIVITIES, PROGRAM_MEMBERSHIP, LEADS_DAILY):
            try:
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            except duckdb.CatalogException:
                counts[table] = None
        lists = _distinct(conn, counts, LIST_MEMBERSHIP, "list_key")
        types = _distinct(conn, counts, ACTIVITIES, "activity_type_name")
        programs = _distinct(conn, counts, PROGRAM_MEMBERSHIP, "program_id")
    notes = {
        DIM_LEADS: "one row per lead id (merged-away ids: none)",
        LIST_MEMBERSHIP: f"lead x list, {lists} lists" if lists is not None else "",
        ACTIVITIES: f"one row per activity, {types} named types" if types is not None else "",
        PROGRAM_MEMBERSHIP: f"lead x program, {programs} programs" if programs is not None else "",
        LEADS_DAILY: "leads created per day and source",
    }
    for table, count in counts.items():
        shown = f"{count:>8,}" if count is not None else "  (none)"
        lines.append(f"{table:<34} {shown}  {notes[table]}")
    wanted = [DIM_LEADS, ACTIVITIES] + (
        [PROGRAM_MEMBERSHIP] if os.environ.get("MARKETO_PROGRAMS") else []
    )
    return lines, all(counts[table] for table in wanted)


def _distinct(conn, counts: dict, table: str, column: str) -> int | None:
    if counts[table] is None:
        return None
    return conn.execute(f"SELECT count(DISTINCT {column}) FROM {table}").fetchone()[0]
