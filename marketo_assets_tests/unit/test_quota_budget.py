"""The quota budget in the export engine: predictions from the ledger's history, no job that
would pass the budget, stops recorded for the quota_resume sensor, and what it launches."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from marketo_assets.defs.build import build_definitions
from marketo_assets.extract import ExportFailed, ExportLimits, quota
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.settings import ListConfig, ListSettings, ProjectSettings, SettingsError
from marketo_assets_tests.support.extract_fakes import MB, T0, Engine, Script, lead_spec


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def _budget(engine: Engine, budget_bytes: int) -> None:
    engine.limits = ExportLimits(daily_quota_mb=1, budget_mb=budget_bytes / MB)


def test_prediction_and_actual_size_are_in_the_metadata(engine: Engine):
    _budget(engine, MB // 2)
    engine.marketo.scripts = [Script(records=100), Script(records=100)]
    first = engine.export(lead_spec("2026-02-01"))
    assert first.metadata["predicted_bytes"] is None  # no history for leads yet
    second = engine.export(lead_spec("2026-02-02"))
    actual = second.metadata["file_size_bytes"]
    # Bytes per row from the first job, rows from the average job, 10% headroom.
    assert second.metadata["prediction_basis"] == "average export of this type"
    assert actual < second.metadata["predicted_bytes"] <= actual * quota.HEADROOM + 1
    assert second.metadata["quota_budget_bytes"] == MB // 2
    assert second.metadata["pending_partitions"] == 0
    # A new export type is predicted as the average job of the others.
    other = quota.History.of(engine.ledger.entries()).predict(
        "marketo/activities", "2026-02-01", "h", ["x"]
    )
    assert other.basis == "average export of any type"
    assert other.bytes == math.ceil(actual * quota.HEADROOM)


def test_a_job_that_would_pass_the_budget_is_not_created_and_waits_for_the_reset(
    engine: Engine,
):
    engine.marketo.scripts = [Script(records=100)]
    size = engine.export(lead_spec("2026-02-01")).bytes
    _budget(engine, int(size * 1.8))  # room for one more job of ~size, not 1.1 x size
    with pytest.raises(ExportFailed, match="Daily budget reached") as info:
        engine.export(lead_spec("2026-02-02"), run_id="run-2")
    assert engine.marketo.methods().count("create") == 1  # no job for the second
    assert info.value.retryable is False
    reset = "2026-03-03T06:00:00+00:00"  # midnight America/Chicago after T0
    assert info.value.metadata["stopped_by"] == "budget"
    assert info.value.metadata["quota_resets_at"] == reset
    assert f"resets at {reset}" in str(info.value)
    assert info.value.metadata["pending_partitions"] == 1
    assert info.value.metadata["pending_days"] == 1
    (stop,) = quota.stops(engine.ledger)
    assert (stop.partition_key, stop.reason, stop.resets_at.isoformat()) == (
        "2026-02-02",
        "budget",
        reset,
    )
    assert stop.predicted_bytes == info.value.metadata["predicted_bytes"]

    # After the reset Marketo's count starts again: the partition is exported, the stop cleared.
    engine.marketo.used_today = -size
    engine.export(lead_spec("2026-02-02"), run_id="run-3")
    assert quota.stops(engine.ledger) == []


def test_a_job_bigger_than_the_whole_budget_fails_saying_so(engine: Engine):
    engine.marketo.scripts = [Script(records=1000)]
    size = engine.export(lead_spec("2026-02-01")).bytes
    engine.load(key="2026-02-01")
    _budget(engine, size // 2)
    with pytest.raises(ExportFailed, match="more than the whole daily budget") as info:
        engine.export(lead_spec("2026-02-01"), run_id="run-2")
    assert info.value.retryable is False
    assert quota.stops(engine.ledger) == []  # never resumed: it would never fit


def test_a_job_of_unknown_size_waits_for_the_jobs_in_flight(engine: Engine):
    # Another step's job is in flight, and there is no history to size either job by.
    engine.ledger.record_created(
        export_id="00000000-0000-4000-8000-000000000099",
        asset="marketo/leads",
        partition_key="2026-02-09",
        request_hash="h",
        request={"payload": {"fields": ["id", "email"]}},
    )
    engine.limits = ExportLimits(daily_quota_mb=1, budget_mb=0.5, budget_wait_seconds=0)
    with pytest.raises(ExportFailed, match="Still waiting") as info:
        engine.export()
    assert info.value.retryable is True
    assert "create" not in engine.marketo.methods()


def _stop(key: str, size: int | None, resets_at: datetime = T0) -> quota.Stop:
    return quota.Stop("marketo/leads", key, "budget", resets_at, size)


def test_resume_order_open_windows_and_lists_first_then_newest_history():
    stops = [_stop("2025-01-01", 1), _stop("2025-03-01", 1), _stop("2025-02-01", 1)]
    lists = quota.Stop("marketo/static_list_members", "Webinar", "quota", T0, 1)
    windows = {
        ("marketo/leads", k): (k == "2025-03-01", datetime.fromisoformat(k).replace(tzinfo=UTC))
        for k in ("2025-01-01", "2025-02-01", "2025-03-01")
    }
    ordered = quota.order_stops([*stops, lists], windows, "open-first")
    assert [s.partition_key for s in ordered] == [
        "2025-03-01",  # open window
        "Webinar",  # a list (no window)
        "2025-02-01",
        "2025-01-01",
    ]
    oldest = quota.order_stops([*stops, lists], windows, "oldest-first")
    assert [s.partition_key for s in oldest] == [
        "2025-01-01",
        "2025-02-01",
        "2025-03-01",
        "Webinar",
    ]


def test_resume_launches_what_fits_today_and_defers_the_rest():
    later = T0 + timedelta(days=1)
    ordered = [_stop("a", 40), _stop("b", 40), _stop("c", 20), _stop("d", 10, later)]
    launch, defer = quota.plan_resume(
        ordered, now=T0, used_today=10, in_flight_bytes=0, in_flight_unknown=0, budget_bytes=100
    )
    assert [s.partition_key for s in launch] == ["a", "b"]
    assert [s.partition_key for s in defer] == ["c"]  # the order holds; d is not due yet
    busy, none = quota.plan_resume(
        [_stop("x", None)], now=T0, used_today=0, in_flight_bytes=5, in_flight_unknown=0,
        budget_bytes=100,
    )  # fmt: skip
    assert busy == [] and none == []  # a job of unknown size goes alone


def test_quota_usage_table_per_day_and_asset(engine: Engine):
    engine.marketo.scripts = [Script(records=10), Script(records=20)]
    first = engine.export(lead_spec("2026-02-01"))
    engine.load(key="2026-02-01", quota_budget_bytes=1000)
    engine.clock.sleep(16 * 3600)  # past midnight America/Chicago
    second = engine.export(lead_spec("2026-02-02"))
    engine.load(key="2026-02-02", quota_budget_bytes=1000)
    with duckdb.connect(str(engine.root / "warehouse.duckdb")) as conn:
        rows = conn.execute(
            "SELECT day::VARCHAR, export_type, asset, jobs, bytes, budget_bytes"
            " FROM marketo.quota_usage ORDER BY day"
        ).fetchall()
    assert rows == [
        ("2026-03-02", "leads", "marketo/leads", 1, first.bytes, 1000),
        ("2026-03-03", "leads", "marketo/leads", 1, second.bytes, 1000),
    ]


# ------------------------------------------------------------------ bad input at load time
def test_a_budget_above_the_allocation_is_refused_when_the_settings_load(monkeypatch):
    from marketo_assets.settings import load_settings

    monkeypatch.setenv("MARKETO_DAILY_QUOTA_MB", "500")
    monkeypatch.setenv("MARKETO_QUOTA_BUDGET_MB", "600")
    with pytest.raises(SettingsError, match="MARKETO_QUOTA_BUDGET_MB") as info:
        load_settings()
    assert "MARKETO_DAILY_QUOTA_MB" in str(info.value)
    monkeypatch.delenv("MARKETO_QUOTA_BUDGET_MB")
    assert load_settings().quota_budget == 400  # default: 80% of the allocation


def test_a_budget_below_the_smallest_job_is_refused_when_the_definitions_load(
    engine: Engine, tmp_path: Path
):
    engine.marketo.scripts = [Script(records=2000)]
    size = engine.export(lead_spec("2026-02-01")).bytes
    settings = ProjectSettings(
        MARKETO_LEDGER_PATH=str(engine.ledger.path), MARKETO_QUOTA_BUDGET_MB=size / 2 / MB
    )
    lists = ListConfig(ListSettings(), {})
    with pytest.raises(SettingsError, match="below the smallest export job"):
        build_definitions(settings, lists)
    roomy = ProjectSettings(
        MARKETO_LEDGER_PATH=str(engine.ledger.path), MARKETO_QUOTA_BUDGET_MB=size * 2 / MB
    )
    build_definitions(roomy, lists)


def test_the_smallest_job_is_predict_entrys_smallest_in_one_pass(tmp_path: Path):
    """smallest_job (run when the definitions load) predicts each partition's last job exactly
    as predict_entry does, reading the ledger once instead of once per partition."""
    rng = random.Random(5)
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    for i in range(300):
        export_id = f"00000000-0000-0000-0000-{i:012d}"
        fields = rng.choice([["id"], ["id", "email"], ["email", "id"], ["id", "x", "y"]])
        ledger.record_created(
            export_id=export_id,
            asset=rng.choice(["marketo/leads", "marketo/activities", "marketo/program_members"]),
            partition_key=f"2026-01-{rng.randrange(1, 29):02d}",
            request_hash=rng.choice("abc"),
            request={"payload": {"fields": fields}},
        )
        if rng.random() < 0.8:  # sized; some files are empty (a header only)
            records = rng.choice([0, rng.randrange(1, 5000)])
            ledger.update(export_id, records=records, bytes=40 + records * rng.randrange(9, 99))
    entries = ledger.entries()
    latest = {(e.asset, e.partition_key): e for e in quota._sized(entries)}
    history = quota.History.of(entries)
    expected = min(
        (history.predict_entry(e), f"{e.asset} {e.partition_key}") for e in latest.values()
    )
    assert quota.smallest_job(ledger) == expected
