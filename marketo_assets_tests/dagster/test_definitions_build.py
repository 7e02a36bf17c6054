"""The definitions are a function of the settings: built for given settings in this process,
without environment variables or module reloads."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime

import dagster as dg

from marketo_assets.defs.build import build_definitions
from marketo_assets.defs.leads import LEADS
from marketo_assets.settings import ListConfig, ListSettings, ProjectSettings, SettingsWarning

LISTS = ListConfig(ListSettings(), {})


def test_partitions_and_schedule_follow_the_given_settings():
    settings = ProjectSettings(
        MARKETO_PARTITION_START=date(2025, 3, 12),
        MARKETO_PARTITION_WINDOW="weekly",
        MARKETO_PARTITION_TIMEZONE="Europe/Berlin",
    )
    defs = build_definitions(settings, LISTS)
    windows = defs.get_assets_def(LEADS).partitions_def
    assert windows is not None
    now = datetime(2025, 3, 20, 12, tzinfo=UTC)
    assert windows.get_partition_keys(current_time=now) == ["2025-03-09", "2025-03-16"]

    schedule = defs.resolve_schedule_def("daily_open_window_refresh")
    with dg.build_schedule_context(scheduled_execution_time=now) as context:
        request = schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2025-03-16"  # the open window
    assert request.run_key == "2025-03-16@2025-03-20"


def test_future_start_and_bad_list_setting_warn_when_the_definitions_load():
    settings = ProjectSettings(MARKETO_PARTITION_START=date(2999, 1, 1))
    bad_lists = ListConfig(ListSettings(), {"MARKETO_STATIC_LISTS": "MARKETO_STATIC_LISTS is bad."})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(settings, bad_lists)
    messages = [str(w.message) for w in caught if issubclass(w.category, SettingsWarning)]
    assert any("MARKETO_PARTITION_START is 2999-01-01, in the future" in m for m in messages)
    assert any(
        m.startswith("The static-list sensor is off: MARKETO_STATIC_LISTS") for m in messages
    )
    assert defs.resolve_sensor_def("static_list_sensor").description.startswith("OFF: ")
    assert set(defs.resources) == {"marketo", "export_options", "warehouse"}


EXPORTS = ["lead_export_files", "lead_change_export_files"] + [
    f"{kind}_list_export_files" for kind in ("static", "smart")
]
LOADS = ["leads", "lead_changes", "static_list_members", "smart_list_members"]
EXPORTS.append("program_member_export_files")
LOADS.append("program_members")


def test_a_bad_program_selection_switches_off_the_program_sensor_and_exports():
    bad = ListConfig(ListSettings(), {"MARKETO_PROGRAMS": "MARKETO_PROGRAMS is bad."})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(ProjectSettings(), bad)
    assert "The program sensor is off: MARKETO_PROGRAMS is bad." in [str(w.message) for w in caught]
    assert defs.resolve_sensor_def("program_members_sensor").description.startswith("OFF: ")
    export = defs.get_assets_def(dg.AssetKey(["marketo", "program_member_export_files"]))
    assert "OFF: MARKETO_PROGRAMS is bad." in (export.descriptions_by_key[export.key] or "")


def test_every_export_family_has_its_pools_retries_and_row_check():
    """Exports wait for a `marketo_bulk_export` slot (Marketo runs two jobs at a time), loads
    for the one `duckdb` writer; both retry; every load checks rows = numberOfRecords."""
    defs = build_definitions(ProjectSettings(), LISTS)
    for export, load in zip(EXPORTS, LOADS, strict=True):
        export_def = defs.get_assets_def(dg.AssetKey(["marketo", export]))
        load_def = defs.get_assets_def(dg.AssetKey(["marketo", load]))
        assert export_def.op.pool == "marketo_bulk_export"
        assert load_def.op.pool == "duckdb"
        assert export_def.op.retry_policy.max_retries == 2
        assert load_def.op.retry_policy.max_retries == 2
        assert {"marketo", "warehouse"} <= load_def.required_resource_keys
        assert "rows_match_marketo" in {spec.name for spec in load_def.check_specs}
        spec = load_def.specs_by_key[dg.AssetKey(["marketo", load])]
        assert [dep.asset_key for dep in spec.deps] == [dg.AssetKey(["marketo", export])]


def test_the_deleted_leads_schedule_reloads_yesterday_and_today_from_the_start_date():
    settings = ProjectSettings(MARKETO_PARTITION_START=date(2025, 3, 20))
    schedule = build_definitions(settings, LISTS).resolve_schedule_def(
        "daily_deleted_leads_refresh"
    )
    for now, days in (("2025-03-20", ["2025-03-20"]), ("2025-04-02", ["2025-04-01", "2025-04-02"])):
        when = datetime.fromisoformat(now).replace(hour=6, minute=45, tzinfo=UTC)
        with dg.build_schedule_context(scheduled_execution_time=when) as context:
            requests = schedule(context)
        assert [r.partition_key for r in requests] == days


def test_a_process_builds_the_definitions_once_per_settings(monkeypatch):
    """A run process loads the definitions more than once (its job, then the job's repository):
    the same settings return the same definitions; changed settings build new ones."""
    from marketo_assets.definitions import defs

    monkeypatch.setenv("MARKETO_PARTITION_WINDOW", "monthly")
    first = defs()
    assert defs() is first
    monkeypatch.setenv("MARKETO_PARTITION_WINDOW", "weekly")
    weekly = defs()
    assert weekly is not first
    assert weekly.get_assets_def(LEADS).partitions_def != first.get_assets_def(LEADS).partitions_def
