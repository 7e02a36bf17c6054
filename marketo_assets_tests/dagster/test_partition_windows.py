"""Partition windows end to end: the first partition is the window that contains
MARKETO_PARTITION_START, and a window longer than Marketo's 31 days is exported as several jobs
and loaded as one partition in one transaction.

Lead partitions are built when the definitions are imported, from the MARKETO_PARTITION_*
variables, so each case runs its Dagster runs in a process started with them
(`window_worker`), against the simulator over loopback HTTP and a real DuckDB file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets_tests.support.dagster import run_env

ROOT = Path(__file__).resolve().parents[2]
ALL_CHECKS = {
    "rows_match_marketo": True,
    "lead_ids_unique_in_partition": True,
    "created_at_inside_window": True,
    "lead_ids_unique_in_table": True,
    "materialized_partitions_in_table": True,
}


def _worker(sim, tmp_path: Path, settings: dict[str, str], *args: str) -> dict:
    env = {**run_env(sim, tmp_path), **settings}
    done = subprocess.run(
        [sys.executable, "-m", "marketo_assets_tests.dagster.window_worker", *args],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MARKETO_")}, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(tmp_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("window", "start", "timezone", "created", "until", "first_key"),
    [
        # 2025-01-01 is a Wednesday: weeks start on Sunday, 2024-12-29.
        ("weekly", "2025-01-01", "UTC", ("2024-12-20", "2025-01-20"), "2025-01-20", "2024-12-29"),
        ("monthly", "2025-01-15", "UTC", ("2025-01-01", "2025-03-01"), "2025-03-01", "2025-01-01"),
        (
            "daily",
            "2025-01-03",
            "America/Chicago",
            ("2025-01-01", "2025-01-06"),
            "2025-01-06",
            "2025-01-03",
        ),
    ],
)
def test_every_lead_from_the_start_is_in_exactly_one_partition(
    simulator_factory, tmp_path, window, start, timezone, created, until, first_key
):
    sim = simulator_factory(leads=600, seed=5, created_from=created[0], created_to=created[1])
    settings = {
        "MARKETO_PARTITION_WINDOW": window,
        "MARKETO_PARTITION_START": start,
        "MARKETO_PARTITION_TIMEZONE": timezone,
    }
    out = _worker(sim, tmp_path, settings, "--until", until)

    assert out["partition_keys"][0] == first_key
    assert out["runs"], "no partition was run"
    for key, run in out["runs"].items():
        assert run["success"], (key, run["error"])
        assert run["checks"] == ALL_CHECKS, key

    # Leads created at or after local midnight of the start date; the data ends before the
    # last partition run ends (created_to), so these runs cover every one of them.
    from zoneinfo import ZoneInfo

    since = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(timezone))
    truth = sim.truth(
        {"createdAt": {"startAt": _iso(since), "endAt": "2030-01-01T00:00:00Z"}}, ids=True
    )
    before = sim.truth(
        {
            "createdAt": {
                "startAt": f"{created[0]}T00:00:00Z",
                "endAt": _iso(since - timedelta(seconds=1)),
            }
        }
    )
    assert before["count"] > 0  # the simulator has leads before the start: none is exported
    loaded = _table(tmp_path, "SELECT id FROM marketo.marketo.leads ORDER BY id")
    assert [i for (i,) in loaded] == sorted(truth["ids"])  # each one exactly once
    rows = sum(
        run["metadata"]["marketo__leads"]["dagster/row_count"] for run in out["runs"].values()
    )
    assert rows == truth["count"]


BERLIN = {
    "MARKETO_PARTITION_WINDOW": "monthly",
    "MARKETO_PARTITION_START": "2025-09-01",
    "MARKETO_PARTITION_TIMEZONE": "Europe/Berlin",
}
OCTOBER = "2025-10-01"
# 2025-10-01 00:00 CEST .. 2025-10-31 23:59:59 CET: 31 days 0 h 59 min 59 s in absolute time.
OCTOBER_WINDOW = {"createdAt": {"startAt": "2025-09-30T22:00:00Z", "endAt": "2025-10-31T22:59:59Z"}}


def _seconds(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def test_berlin_october_is_two_jobs_loaded_as_one_partition(simulator_factory, tmp_path):
    sim = simulator_factory(leads=900, seed=7, created_from="2025-09-25", created_to="2025-11-05")
    truth = sim.truth(OCTOBER_WINDOW, ids=True)
    assert truth["count"] > 0

    out = _worker(sim, tmp_path, BERLIN, OCTOBER)
    run = out["runs"][OCTOBER]
    assert run["success"], run["error"]
    assert run["checks"] == ALL_CHECKS

    # Marketo saw two jobs, contiguous, each within its 31 days in absolute time.
    jobs = [j for j in sim.state()["jobs"] if "createdAt" in (j.get("filter") or {})]
    windows = sorted(
        (_seconds(j["filter"]["createdAt"]["startAt"]), _seconds(j["filter"]["createdAt"]["endAt"]))
        for j in jobs
    )
    assert len(windows) == 2
    assert windows[0][0] == _seconds("2025-09-30T22:00:00Z")
    assert windows[1][1] == _seconds("2025-10-31T22:59:59Z")
    assert windows[1][0] == windows[0][1] + 1
    assert all(end - start <= 31 * 86400 for start, end in windows)

    ids = _table(tmp_path, "SELECT id FROM marketo.marketo.leads ORDER BY id")
    assert [i for (i,) in ids] == sorted(truth["ids"])
    export_ids = run["metadata"]["marketo__lead_export_files"]["export_ids"]
    assert sorted(export_ids) == sorted(j["exportId"] for j in jobs)
    assert run["metadata"]["marketo__lead_export_files"]["records"] == truth["count"]
    assert sorted(run["metadata"]["marketo__leads"]["export_ids"]) == sorted(export_ids)
    lineage = _table(tmp_path, "SELECT DISTINCT _export_id FROM marketo.marketo.leads")
    assert sorted(e for (e,) in lineage) == sorted(export_ids)

    # Export again, then break the second part's file: the load fails as a whole and the
    # partition keeps the rows of the first load (none replaced by the first part's file).
    before = _table(tmp_path, "SELECT id, _export_id FROM marketo.marketo.leads ORDER BY id")
    again = _worker(sim, tmp_path, BERLIN, "--only", "export", OCTOBER)
    assert again["runs"][OCTOBER]["success"], again["runs"][OCTOBER]["error"]
    # Each part is its own ledger entry: a re-run of the export step reuses both staged files.
    jobs_before = len(sim.state()["jobs"])
    reused = _worker(sim, tmp_path, BERLIN, "--only", "export", OCTOBER)["runs"][OCTOBER]
    assert reused["success"], reused["error"]
    assert len(sim.state()["jobs"]) == jobs_before
    parts = reused["metadata"]["marketo__lead_export_files"]["parts"]
    assert [p["reused_staged_file"] for p in parts] == [True, True]
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    staged = [e for e in ledger.entries("marketo/leads", OCTOBER) if e.status == "downloaded"]
    assert sorted(e.request["part"] for e in staged) == [0, 1]
    second = Path(next(e.staged_file for e in staged if e.request["part"] == 1))
    header, first_row, rest = second.read_bytes().split(b"\n", 2)
    assert header.startswith(b"id,") and first_row[:1].isdigit()
    second.write_bytes(b"\n".join([header, b"x" + first_row[1:], rest]))  # same size

    failed = _worker(sim, tmp_path, BERLIN, "--only", "load", OCTOBER)
    assert not failed["runs"][OCTOBER]["success"]
    assert "'id'" in failed["runs"][OCTOBER]["error"]
    assert (
        _table(tmp_path, "SELECT id, _export_id FROM marketo.marketo.leads ORDER BY id") == before
    )
