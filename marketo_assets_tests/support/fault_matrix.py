"""The backfill every fault scenario runs, and the end state every scenario asserts.

A backfill here is 12 monthly lead partitions (2025-01 … 2025-12) plus two list exports (static
list 1001, smart list 5001), each partition one Dagster run of its export and load steps,
executed in-process on a real Dagster instance (`DagsterInstance.ephemeral()`: the same
executor, retry policies, event log and asset checks as a daemon-launched run, without a
process per run) against the simulator over loopback HTTP, loading a real DuckDB file.

Runs are executed one after the other (as the pools of a real deployment would mostly do with
one DuckDB writer); the steps' own Dagster retry policies stay active.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.marketo import ClientSettings, MarketoClient
from marketo_assets.warehouse import columns_for, load_partition
from marketo_assets_tests.support.assets import (
    lead_export_files,
    leads,
    smart_list_export_files,
    smart_list_members,
    static_list_export_files,
    static_list_members,
)
from marketo_assets_tests.support.dagster import resources_for

MONTHS = [f"2025-{month:02d}-01" for month in range(1, 13)]
LIST_KEYS = ["static-1001", "smart-5001"]
ALL_KEYS = MONTHS + LIST_KEYS

# A year of leads, ~200 per monthly partition; job status refreshed every 0.1 s.
SIM_ARGS = {
    "leads": 2400,
    "seed": 11,
    "created_from": "2025-01-01",
    "created_to": "2026-01-01",
    "status_interval": 0.1,
}
# Resource config seams: fast polls and short retry waits (the defaults are minutes), and the
# client paced at the simulator's full 100 calls per window (+1 s guard). Marketo's window is
# 20 s: a backfill of 14 short runs needs 130-200 calls, so waiting for that window would
# dominate the wall time of every scenario. The scenarios whose subject is not the rate limit
# shrink the window to RATE_WINDOW, in the simulator and the client alike; the rate-limit
# scenario keeps Marketo's 20 s (and its backfill is paced by it).
RATE_WINDOW = 5.0
FAST = {
    "max_calls_per_window": 100,
    "poll_interval": 0.1,
    "retry_initial_wait": 0.05,
    "retry_max_wait": 0.5,
    "queue_full_backoff": [0.5] * 12,
}

_ASSETS = {
    "lead": [lead_export_files, leads],
    "static": [static_list_export_files, static_list_members],
    "smart": [smart_list_export_files, smart_list_members],
}
_TABLES = {"lead": "leads", "static": "static_list_members", "smart": "smart_list_members"}
_LEDGER = {
    "lead": "marketo/leads",
    "static": "marketo/static_list_members",
    "smart": "marketo/smart_list_members",
}
CHICAGO = ZoneInfo("America/Chicago")


def kind_of(key: str) -> str:
    return key.split("-", 1)[0] if key.startswith(("static-", "smart-")) else "lead"


def truth_filter(key: str) -> dict:
    """The simulator-side filter that defines a partition's true content."""
    kind = kind_of(key)
    if kind != "lead":
        return {f"{kind}ListId": int(key.split("-", 1)[1])}
    start = datetime.fromisoformat(key).replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(seconds=1)
    return {
        "createdAt": {
            "startAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endAt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    }


def partition_of_job(job: dict) -> str:
    """Which partition a simulator job belongs to, from the filter it was created with."""
    flt = job["filter"] or {}
    if "createdAt" in flt:
        return flt["createdAt"]["startAt"][:10]
    if "staticListId" in flt:
        return f"static-{flt['staticListId']}"
    if "smartListId" in flt:
        return f"smart-{flt['smartListId']}"
    raise AssertionError(f"unexpected export filter {flt}")


def next_chicago_midnight(now: datetime) -> datetime:
    local = now.astimezone(CHICAGO)
    nxt = (local + timedelta(days=1)).date()
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=CHICAGO).astimezone(UTC)


class Backfill:
    """Runs partitions against one simulator, one DuckDB file, one ledger, one instance."""

    def __init__(self, sim, tmp_path: Path, rate_window: float = RATE_WINDOW, **overrides):
        self.sim = sim
        self.tmp_path = tmp_path
        sim.configure(rate_limit=100, rate_window=rate_window)
        self.fast = {**FAST, "window_seconds": rate_window, **overrides}
        self.resources = resources_for(sim, tmp_path, **self.fast)
        self.instance = dg.DagsterInstance.ephemeral()
        self.instance.add_dynamic_partitions("static_lists", ["static-1001"])
        self.instance.add_dynamic_partitions("smart_lists", ["smart-5001"])
        self.results: dict[str, list[dg.ExecuteInProcessResult]] = defaultdict(list)

    @property
    def ledger(self) -> ExportLedger:
        return ExportLedger(self.tmp_path / "ledger.sqlite")

    def run(self, key: str, **overrides) -> dg.ExecuteInProcessResult:
        resources = self.resources
        if overrides:
            resources = resources_for(self.sim, self.tmp_path, **{**self.fast, **overrides})
        result = dg.materialize(
            _ASSETS[kind_of(key)],
            partition_key=key,
            resources=resources,
            instance=self.instance,
            raise_on_error=False,
        )
        self.results[key].append(result)
        return result

    def run_all(self, keys=ALL_KEYS, before_each=None) -> dict[str, dg.ExecuteInProcessResult]:
        out = {}
        for i, key in enumerate(keys):
            if before_each is not None:
                before_each(i, key)
            out[key] = self.run(key)
        return out

    # ------------------------------------------------------------------------------ reading
    def failures(self, key: str) -> list[str]:
        """Step failure messages of the partition's last run."""
        result = self.results[key][-1]
        return [e.step_failure_data.error.message for e in result.get_step_failure_events()]

    def messages(self, key: str | None = None) -> list[str]:
        keys = [key] if key else list(self.results)
        return [
            str(event.message)
            for k in keys
            for result in self.results[k]
            for event in self.instance.all_logs(result.run_id)
        ]

    def step_retries(self) -> int:
        return sum(
            1
            for results in self.results.values()
            for result in results
            for event in result.all_events
            if event.event_type_value == "STEP_UP_FOR_RETRY"
        )

    def export_metadata(self, key: str) -> dict:
        """Metadata of the partition's last successful export step."""
        for result in reversed(self.results[key]):
            for event in result.get_asset_materialization_events():
                if event.asset_key.path[-1].endswith("export_files"):
                    return {k: v.value for k, v in event.materialization.metadata.items()}
        raise AssertionError(f"no export materialization for {key}")

    def jobs_by_partition(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for job in self.sim.state()["jobs"]:
            if not job["foreign"]:
                out[partition_of_job(job)].append(job)
        return dict(out)

    def loaded(self, key: str) -> tuple[list[int], set[str]]:
        """Lead ids loaded for the partition (with repeats), and the export ids they came from."""
        table = _TABLES[kind_of(key)]
        with duckdb.connect(str(self.tmp_path / "marketo.duckdb"), read_only=True) as conn:
            rows = conn.execute(
                f"SELECT id, _export_id FROM marketo.marketo.{table} WHERE _partition_key = ?",
                [key],
            ).fetchall()
        return sorted(r[0] for r in rows), {r[1] for r in rows}

    # ---------------------------------------------------------------------------- asserting
    def assert_complete(self, keys=ALL_KEYS, jobs_per_partition: int | dict = 1) -> dict:
        """The end state of a completed backfill (see the module docstring of the tests)."""
        jobs = self.jobs_by_partition()
        ledger = self.ledger
        truths = {}
        for key in keys:
            last = self.results[key][-1]
            assert last.success, f"{key} failed: {self.failures(key)}"
            checks = {e.check_name: e.passed for e in last.get_asset_check_evaluations()}
            assert checks and all(checks.values()), f"{key}: asset checks {checks}"

            truth = sorted(self.sim.truth(truth_filter(key), ids=True)["ids"])
            truths[key] = truth
            assert truth, f"{key}: no lead in the test data here (the check would be vacuous)"
            ids, export_ids = self.loaded(key)
            assert len(ids) == len(set(ids)), f"{key}: a lead loaded twice"
            assert ids == truth, f"{key}: loaded {len(ids)} leads, the simulator has {len(truth)}"

            entries = ledger.entries(_LEDGER[kind_of(key)], key)
            (entry,) = [e for e in entries if e.status == "loaded"]
            assert entry.records == len(truth), f"{key}: ledger numberOfRecords {entry.records}"
            assert export_ids <= {entry.export_id}, f"{key}: rows from {export_ids}"

            expected = (
                jobs_per_partition
                if isinstance(jobs_per_partition, int)
                else jobs_per_partition[key]
            )
            created = jobs.get(key, [])
            assert len(created) == expected, (
                f"{key}: {len(created)} export jobs created, expected {expected}: "
                f"{[(j['exportId'], j['status']) for j in created]}"
            )
            (used,) = [j for j in created if j["exportId"] == entry.export_id]
            assert used["status"] == "Completed" and used["numberOfRecords"] == len(truth)
        return truths

    def assert_loaded_bytes_are_the_verified_files(self, keys=ALL_KEYS) -> None:
        """Every loaded row, every column, equals a load of the job's file fetched again now
        (checksum verified) into a separate DuckDB file: nothing else was ever loaded."""
        reference = self.tmp_path / "reference.duckdb"
        ledger = self.ledger
        settings = ClientSettings(
            base_url=self.sim.base_url,
            client_id=self.sim.client_id,
            client_secret=self.sim.client_secret,
        )
        with MarketoClient(settings) as client, duckdb.connect(str(reference)) as conn:
            for key in keys:
                kind = kind_of(key)
                (entry,) = [e for e in ledger.entries(_LEDGER[kind], key) if e.status == "loaded"]
                job = client.get_export(entry.export_id)
                dest = self.tmp_path / "reference" / f"{entry.export_id}.csv"
                dest.parent.mkdir(exist_ok=True)
                download = client.download_export(job, dest)
                lineage: dict[str, object] = {"_export_id": entry.export_id}
                if kind != "lead":
                    lineage["_list_id"] = int(key.split("-", 1)[1])
                load_partition(
                    conn,
                    table=f"marketo.{_TABLES[kind]}",
                    file_path=download.path,
                    file_format="CSV",
                    columns=columns_for([tuple(ft) for ft in entry.request["field_types"]], {}),
                    partition_key=key,
                    lineage=lineage,
                )
            conn.execute(f"ATTACH '{self.tmp_path / 'marketo.duckdb'}' AS loaded (READ_ONLY)")
            for table in sorted({_TABLES[kind_of(key)] for key in keys}):
                for a, b in (("loaded", "reference"), ("reference", "loaded")):
                    (extra,) = conn.execute(
                        f"SELECT count(*) FROM (SELECT * EXCLUDE (_loaded_at) FROM "
                        f"{a}.marketo.{table} EXCEPT ALL SELECT * EXCLUDE (_loaded_at) FROM "
                        f"{b}.marketo.{table})"
                    ).fetchone()
                    assert extra == 0, f"{table}: {extra} rows in {a} that are not in {b}"

    def assert_no_limit_broken(self) -> dict:
        state = self.sim.state()
        assert state["max_in_flight_seen"] <= 10, state["max_in_flight_seen"]
        assert state["max_window_calls_seen"] <= 100, state["max_window_calls_seen"]
        return state


def chicago_reset_after(iso_now: str) -> datetime:
    return next_chicago_midnight(datetime.fromisoformat(iso_now.replace("Z", "+00:00")))


def seconds_past_reset(state: dict, margin: float = 120.0) -> float:
    now = datetime.fromisoformat(state["now"].replace("Z", "+00:00"))
    return math.ceil((next_chicago_midnight(now) - now).total_seconds() + margin)


def by_status(jobs: list[dict]) -> Counter:
    return Counter(j["status"] for j in jobs)
