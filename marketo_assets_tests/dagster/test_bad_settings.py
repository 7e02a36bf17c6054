"""Bad or odd settings, through the real definitions loaded in a fresh process with the
variables set (settings are read at import), against the simulator.

- A bad list setting switches off only the list sensors it concerns, saying why in the tick and
  the sensor's description; the definitions load and lead partitions still materialize.
- MARKETO_FORMAT is case-insensitive, in the environment and in the run config alike.
- A partition start in the future says so, at load and wherever the project picks partitions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from marketo_assets.local.instance import ensure_pools, running_daemon
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets_tests.support.dagster import (
    created_at_window,
    materialize_cli,
    run_env,
    wait_for,
)

KEY = "2025-01-01"
LISTS = {"MARKETO_STATIC_LISTS": "1001", "MARKETO_SMART_LISTS": "5001"}


def worker(env: dict[str, str], **options) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "marketo_assets_tests.dagster.settings_worker", json.dumps(options)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("WORKER ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("WORKER "))


def lead_rows(tmp_path: Path) -> dict[str, int]:
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        return dict(
            conn.execute(
                "SELECT _partition_key, count(*) FROM marketo.marketo.leads GROUP BY 1"
            ).fetchall()
        )


# variable, bad value, sensors it switches off, phrases of the reason (besides variable, value)
BAD_LIST_SETTINGS = {
    "static_selection": ("MARKETO_STATIC_LISTS", "1001, id:abc", {"static"}, ["positive list id"]),
    "smart_selection": ("MARKETO_SMART_LISTS", '["High Score Leads", 5001', {"smart"}, ["JSON"]),
    "interval": ("MARKETO_LIST_SENSOR_INTERVAL", "10", {"static", "smart"}, ["30"]),
    "interval_not_a_number": ("MARKETO_LIST_SENSOR_INTERVAL", "5m", {"static", "smart"}, []),
    "static_refresh": ("MARKETO_STATIC_LIST_REFRESH_HOURS", "-1", {"static"}, ["0"]),
    "smart_refresh": ("MARKETO_SMART_LIST_REFRESH_HOURS", "daily", {"smart"}, ["number"]),
    "list_fields": ("MARKETO_LIST_FIELDS", " , ", {"static", "smart"}, ["names no field"]),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", list(BAD_LIST_SETTINGS))
def test_a_bad_list_setting_switches_off_only_the_list_sensors(lead_sim, tmp_path, case):
    variable, value, off, phrases = BAD_LIST_SETTINGS[case]
    env = {**run_env(lead_sim, tmp_path), **LISTS, variable: value}

    report = worker(env, materialize=KEY, sensors=True)

    assert "load_error" not in report, report.get("load_error")
    assert report["materialized"], report
    assert lead_rows(tmp_path) == {KEY: lead_sim.truth(created_at_window(KEY))["count"]}
    assert any(variable in w and value.strip() in w for w in report["warnings"]), report
    for kind in ("static", "smart"):
        tick = report["sensors"][f"{kind}_list_sensor"]
        if kind in off:
            reason = tick["error"] or ""
            for phrase in [variable, repr(value), *phrases]:
                assert phrase in reason, f"{phrase!r} not in the tick's error:\n{reason}"
            assert "Fix" in reason or "set " in reason.lower(), reason
            assert tick["description"].startswith("OFF"), tick["description"]
            assert variable in tick["description"]
        else:
            assert tick["error"] is None, tick["error"]
            assert f"{kind}-{LISTS[f'MARKETO_{kind.upper()}_LISTS']}" in tick["runs"], tick
    jobs = [j for j in lead_sim.state()["jobs"] if j.get("status") != "Cancelled"]
    assert len(jobs) == 1  # the lead partition's export; no list export was started


def test_bad_list_fields_fail_a_list_export_run_before_any_export(lead_sim, tmp_path):
    env = {**run_env(lead_sim, tmp_path), **LISTS, "MARKETO_LIST_FIELDS": ","}
    report = worker(env, list_export="static-1001")
    assert report["list_export"] is False
    assert "MARKETO_LIST_FIELDS" in report["list_export_error"], report
    assert lead_sim.state()["jobs"] == []


@pytest.mark.timeout(600)
def test_the_daemon_shows_the_reason_and_lead_partitions_still_run(lead_sim, tmp_path, monkeypatch):
    """What the UI shows: the static-list sensor's ticks fail naming the setting; the smart one
    and a lead partition materialized from the command line work."""
    env = {**run_env(lead_sim, tmp_path), **LISTS, "MARKETO_STATIC_LISTS": "id:0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        ensure_pools(instance)
        done = materialize_cli(env, KEY)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "MARKETO_STATIC_LISTS" in done.stderr  # the warning at load
        with running_daemon(log_path=tmp_path / "daemon.log"):
            ticks = wait_for(lambda: _first_ticks(instance), 240, "both list sensors to tick")
    static, smart = ticks["static_list_sensor"], ticks["smart_list_sensor"]
    assert static.status == TickStatus.FAILURE
    text = _error_chain(static.error)
    assert "MARKETO_STATIC_LISTS" in text and "'id:0'" in text, text
    assert smart.status == TickStatus.SUCCESS, _error_chain(smart.error)
    assert lead_rows(tmp_path) == {KEY: lead_sim.truth(created_at_window(KEY))["count"]}


def _first_ticks(instance) -> dict | None:
    found = {}
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name in ("static_list_sensor", "smart_list_sensor"):
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
            done = [t for t in ticks if t.status != TickStatus.STARTED]
            if done:
                found[state.instigator_name] = done[-1]
    return found if len(found) == 2 else None


def _error_chain(error) -> str:
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


# ------------------------------------------------------------------ MARKETO_FORMAT
@pytest.mark.timeout(600)
def test_format_is_case_insensitive_in_env_and_run_config(lead_sim, tmp_path):
    env = {**run_env(lead_sim, tmp_path), "MARKETO_FORMAT": "tsv"}
    report = worker(env, materialize=KEY)
    assert "load_error" not in report, report.get("load_error")
    assert report["export_format"] == "TSV"
    assert report["materialized"], report

    env["MARKETO_FORMAT"] = " Csv"
    config = {"resources": {"export_options": {"config": {"format": "Ssv"}}}}
    report = worker(env, materialize="2025-02-01", run_config=config)
    assert "load_error" not in report, report.get("load_error")
    assert report["export_format"] == "CSV"
    assert report["materialized"], report
    assert [j["format"] for j in lead_sim.state()["jobs"]] == ["TSV", "SSV"]
    rows = lead_rows(tmp_path)
    assert rows == {k: lead_sim.truth(created_at_window(k))["count"] for k in (KEY, "2025-02-01")}


# ------------------------------------------------------------------ partition start
def _future_month() -> date:
    return (date.today() + timedelta(days=100)).replace(day=1)


@pytest.mark.timeout(600)
def test_a_partition_start_in_the_future_says_so(lead_sim, tmp_path):
    start = _future_month().isoformat()
    env = {**run_env(lead_sim, tmp_path), "MARKETO_PARTITION_START": start}
    expected = f"MARKETO_PARTITION_START is {start}, in the future"

    report = worker(env, schedules=True, demo=True)

    assert "load_error" not in report, report.get("load_error")
    assert report["lead_partitions"] == 0
    assert any(expected in w and "past date" in w for w in report["warnings"]), report
    for name in ("daily_open_window_refresh", "daily_lead_changes_refresh"):
        assert expected in (report["schedules"][name]["error"] or ""), report["schedules"][name]
    assert expected in report["demo_error"], report
    assert lead_sim.state()["jobs"] == []  # nothing probed or exported

    done = materialize_cli(env, start)
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr[-3000:]
