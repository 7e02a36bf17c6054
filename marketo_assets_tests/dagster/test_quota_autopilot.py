"""The quota autopilot end to end: a backfill that needs ~2.5 days of the daily budget,
launched once through the daemon, finishes by itself on the third (simulated) day.

Nobody re-launches anything: the test only moves the simulator's clock past midnight
America/Chicago when the day's work is settled (no run going, every stopped partition due at
the next reset), as time would. The `quota_resume` sensor does the rest.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from marketo_assets.defs.leads import LEAD_EXPORTS, LEADS
from marketo_assets.defs.quota import UNFINISHED
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.local.instance import (
    backfill_runs,
    ensure_pools,
    launch_backfill,
    running_daemon,
)
from marketo_assets_tests.support.dagster import SIM_ARGS, run_env, wait_for
from marketo_assets_tests.support.dagster import created_at_window as _window

KEYS = ["2025-01-01", "2025-02-01", "2025-03-01"]
CHICAGO = ZoneInfo("America/Chicago")
MB = 1024 * 1024
# Each month's file is ~47 KB (fixed by the seed): one fits into a day's budget, the three
# need ~2.5 days. Few partitions keep the runs (a process each) few.
BUDGET_MB = 0.055
FIELDS = "id,email,firstName,lastName,company,createdAt,updatedAt"


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _settled(instance, sim, ledger: ExportLedger, backfill_id: str) -> bool:
    """No run going, the backfill's runs all made, and nothing due now (every stopped
    partition waits for the next reset)."""
    if len(backfill_runs(instance, backfill_id)) < len(KEYS):
        return False
    unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))
    if any("dagster/partition" in run.tags for run in unfinished):
        return False  # (the dbt runs the automation sensor starts after loads do not matter)
    now = _parse(sim.state()["now"])
    return all(_parse(s["resets_at"]) > now for s in ledger.stops())


def _failure(event) -> str:
    data = event.dagster_event.step_failure_data
    user = data.user_failure_data
    return (user.description if user else None) or (data.error.message if data.error else "")


def _loaded(ledger: ExportLedger) -> set[str]:
    return {e.partition_key for e in ledger.entries("marketo/leads") if e.status == "loaded"}


@pytest.mark.timeout(900)
def test_a_backfill_bigger_than_the_budget_finishes_on_day_3_by_itself(
    simulator_factory, tmp_path, monkeypatch
):
    # 09:00 in Chicago: the day has room, and no real midnight comes during the test.
    sim = simulator_factory(**SIM_ARGS, quota_mb=1, extra_args=["--now", "2025-08-04T14:00:00Z"])
    env = {
        **run_env(sim, tmp_path),
        "MARKETO_DAILY_QUOTA_MB": "1",
        "MARKETO_QUOTA_BUDGET_MB": str(BUDGET_MB),
        "MARKETO_QUOTA_RESUME_INTERVAL": "5",
        "MARKETO_FIELDS": FIELDS,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from marketo_assets.definitions import defs

    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    loaded_by_day: list[set[str]] = []
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        with running_daemon(log_path=tmp_path / "daemon.log"):
            backfill_id = launch_backfill(instance, defs(), [LEAD_EXPORTS, LEADS], KEYS)
            for day in range(1, 4):
                if day > 1:
                    now = _parse(sim.state()["now"])
                    midnight = _parse(sim.state()["quota_resets_at"])
                    sim.advance((midnight - now).total_seconds() + 60)
                wait_for(lambda: _settled(instance, sim, ledger, backfill_id), 240, f"day {day}")
                loaded_by_day.append(_loaded(ledger))
                if len(loaded_by_day[-1]) == len(KEYS):
                    break
            runs = [r for r in instance.get_runs() if "dagster/partition" in r.tags]
            failures = [
                _failure(e)
                for run in runs
                for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            ]

    # Done on day 3, not before, and every day did some of it.
    assert len(loaded_by_day) == 3, loaded_by_day
    assert loaded_by_day[-1] == set(KEYS)
    assert [len(done) for done in loaded_by_day] == [1, 2, 3]
    assert ledger.stops() == []
    # Stopped runs failed for the budget, naming the reset; nothing else failed.
    assert failures and all(
        "Daily budget reached" in m and "America/Chicago" in m for m in failures
    )

    # Each quota day's bytes stay within the budget; no partition exported twice.
    jobs = [j for j in sim.state()["jobs"] if j["status"] == "Completed"]
    by_day: dict[str, int] = defaultdict(int)
    for job in jobs:
        by_day[_parse(job["finishedAt"]).astimezone(CHICAGO).date().isoformat()] += job["fileSize"]
    assert len(by_day) == 3 and all(size <= BUDGET_MB * MB for size in by_day.values()), by_day
    total = sum(by_day.values())
    assert 2 < total / (BUDGET_MB * MB) < 3  # the backfill needed ~2.5 days of budget
    partition_of = {e.export_id: e.partition_key for e in ledger.entries()}
    exported = [partition_of[j["exportId"]] for j in jobs]
    assert sorted(exported) == KEYS  # one job per partition: no byte spent twice

    # Rows = truth, and the usage table shows each day against the budget.
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        rows = dict(
            conn.execute(
                "SELECT _partition_key, count(*) FROM marketo.marketo.leads GROUP BY 1"
            ).fetchall()
        )
        usage = conn.execute(
            "SELECT day::VARCHAR, asset, jobs, bytes, budget_bytes FROM marketo.marketo.quota_usage"
        ).fetchall()
    assert rows == {k: sim.truth(_window(k))["count"] for k in KEYS}
    assert {day: size for day, _, _, size, _ in usage} == dict(by_day)
    assert {(asset, budget) for _, asset, _, _, budget in usage} == {
        ("marketo/leads", math.floor(BUDGET_MB * MB))
    }
