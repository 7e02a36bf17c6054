"""List selection syntax and the list sensors' tick planning (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marketo_assets.extract.list_plan import DiscoveredList, load_cursor, plan_tick
from marketo_assets.settings import ListSelection, ListSettings

T0 = datetime(2025, 3, 1, tzinfo=UTC)
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def test_selection_ids_names_patterns():
    sel = ListSelection.parse(" 1021, id:7 , Webinar*, name:2024, glob:VIP ?old*, Exact Name ")
    assert sel.ids == {1021, 7}
    assert sel.names == {"2024", "Exact Name"}
    assert sel.patterns == ("Webinar*", "VIP ?old*")
    assert sel.matches(1021, "anything")
    assert sel.matches(1, "Webinar Attendees 2025")
    assert sel.matches(2, "2024") and not sel.matches(2024, "x")
    assert not sel.matches(3, "webinar lower case")  # case-sensitive
    assert sel.matches(4, "Exact Name") and not sel.matches(4, "Exact Name 2")


def test_selection_json_array_for_names_with_commas_and_star_for_all():
    sel = ListSelection.parse('["Trade Show Leads, Berlin", 1002]')
    assert sel.names == {"Trade Show Leads, Berlin"} and sel.ids == {1002}
    assert ListSelection.parse("*").matches(99, "whatever")


@pytest.mark.parametrize("raw", ["", "   ", ",", "[]"])
def test_empty_selection_means_none(raw):
    sel = ListSelection.parse(raw)
    assert sel.empty and not sel.matches(1, "x")


@pytest.mark.parametrize("raw", ["id:abc", "id:0", "[1, 2", '[{"a": 1}]'])
def test_bad_selection_is_rejected(raw):
    with pytest.raises(ValueError):
        ListSelection.parse(raw)


def test_settings_read_selection_and_interval_from_env(monkeypatch):
    monkeypatch.setenv("MARKETO_STATIC_LISTS", "1001")
    monkeypatch.setenv("MARKETO_SMART_LISTS", "High*")
    monkeypatch.setenv("MARKETO_LIST_SENSOR_INTERVAL", "600")
    settings = ListSettings()
    assert settings.static_list_selection.ids == {1001}
    assert settings.smart_list_selection.patterns == ("High*",)
    assert settings.list_sensor_interval == 600
    monkeypatch.delenv("MARKETO_LIST_SENSOR_INTERVAL")
    assert ListSettings().list_sensor_interval == 300


def lst(list_id: int, name: str, hours: int = 0) -> DiscoveredList:
    return DiscoveredList(list_id, name, T0 + timedelta(hours=hours))


def test_plan_new_unchanged_updated_and_deleted():
    sel = ListSelection.parse("1, B*")
    found = [lst(1, "A"), lst(2, "Beta"), lst(3, "C")]
    first = plan_tick("static", found, sel, set(), load_cursor(None), NOW)
    assert first.add == ["static-1", "static-2"] and first.delete == []
    assert [r[1] for r in first.runs] == [
        "static-1@2025-03-01T00:00:00Z",
        "static-2@2025-03-01T00:00:00Z",
    ]
    assert first.catalog_run_key is not None

    existing = {"static-1", "static-2"}
    same = plan_tick("static", found, sel, existing, first.cursor, NOW)
    assert same.add == same.delete == same.runs == [] and same.catalog_run_key is None

    only_updated = [lst(1, "A", hours=5), lst(2, "Beta"), lst(3, "C")]
    plan = plan_tick("static", only_updated, sel, existing, same.cursor, NOW)
    assert [r[2] for r in plan.runs] == ["updated"] and plan.catalog_run_key is None

    moved = [lst(1, "A", hours=5), lst(3, "C")]  # 1 updated, 2 deleted in Marketo
    plan = plan_tick("static", moved, sel, existing, same.cursor, NOW)
    assert [r[:3] for r in plan.runs] == [("static-1", "static-1@2025-03-01T05:00:00Z", "updated")]
    assert plan.delete == ["static-2"] and plan.add == []
    assert "static-2" not in plan.cursor["lists"]
    assert plan.catalog_run_key and plan.catalog_run_key != first.catalog_run_key


def test_plan_refresh_and_disabled_filter_keep_lists_pending():
    sel = ListSelection.parse("*")
    found = [lst(5, "Smart")]
    first = plan_tick("smart", found, sel, set(), load_cursor(None), NOW, runs_enabled=False)
    assert first.add == ["smart-5"] and first.runs == [] and first.waiting == ["smart-5"]
    assert first.cursor["lists"] == {}  # stays pending until the filter is enabled
    second = plan_tick("smart", found, sel, {"smart-5"}, first.cursor, NOW)
    assert [r[2] for r in second.runs] == ["new"]

    day = timedelta(hours=24)
    later = NOW + timedelta(hours=25)
    refresh = plan_tick("smart", found, sel, {"smart-5"}, second.cursor, later, refresh=day)
    assert [r[2] for r in refresh.runs] == ["refresh"]
    assert "@refresh-" in refresh.runs[0][1]
    again = plan_tick("smart", found, sel, {"smart-5"}, second.cursor, later, refresh=day)
    assert again.runs[0][1] == refresh.runs[0][1]  # same tick re-evaluated: same run key
    quiet = plan_tick("smart", found, sel, {"smart-5"}, refresh.cursor, later, refresh=day)
    assert quiet.runs == []


@pytest.mark.parametrize("kind", ["static", "program"])
def test_an_emptied_selection_deletes_the_partitions_saying_so(kind):
    """A user who empties MARKETO_STATIC_LISTS / MARKETO_PROGRAMS sees in the tick why the
    partitions went, for lists and programs alike; Marketo is not asked."""
    from marketo_assets.extract.list_plan import run_program_tick, run_tick

    def discover():
        raise AssertionError("an empty selection lists nothing")

    empty, now = ListSelection.parse("", "X"), datetime(2025, 6, 1, tzinfo=UTC)
    existing = {"static-1", "static-2"} if kind == "static" else {"3001", "3002"}
    if kind == "static":
        tick = run_tick("static", empty, existing, None, now, None, discover)
    else:
        tick = run_program_tick(empty, existing, None, now, None, discover)
    assert tick.delete == sorted(existing)
    assert tick.cursor is not None
    assert tick.skip and "MARKETO_" in tick.skip
    assert any(str(sorted(existing)) in line for _, line in tick.logs)
    assert run_tick("static", empty, set(), None, now, None, discover).delete == []
