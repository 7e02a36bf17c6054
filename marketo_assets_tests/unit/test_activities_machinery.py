"""Activity exports without Marketo: type names resolved through the catalog (unknown ones
refused naming the setting), windows split at 31 days, the setting's syntax, and the
`attributes` JSON column loaded, queryable and checked."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from marketo_assets.extract import ExportFailed
from marketo_assets.extract.activities import (
    ACTIVITY_FIELDS,
    activity_filters,
    activity_type_rows,
    resolve_activity_types,
)
from marketo_assets.marketo import ActivityType
from marketo_assets.settings import ProjectSettings, SettingsError, load_settings
from marketo_assets.warehouse import CastError, columns_for, load_partition

CATALOG = [
    ActivityType(
        1, "Visit Webpage", primary_attribute={"name": "Webpage ID", "dataType": "integer"}
    ),
    ActivityType(2, "Fill Out Form"),
    ActivityType(11, "Click Email", attributes=({"name": "Link", "dataType": "string"},)),
]
UTC = dt.UTC


def test_types_are_chosen_by_id_or_name_in_any_case():
    assert resolve_activity_types(["click email", "1", " Fill Out Form "], CATALOG, "X") == (
        1,
        2,
        11,
    )


@pytest.mark.parametrize("wanted", [["Opened The Fridge"], ["999"], ["1", "Visit Web"]])
def test_unknown_types_fail_naming_the_setting_and_the_known_types(wanted):
    with pytest.raises(ExportFailed) as info:
        resolve_activity_types(wanted, CATALOG, "MARKETO_ACTIVITY_TYPES")
    message = info.value.message
    assert "MARKETO_ACTIVITY_TYPES" in message and wanted[-1] in message
    assert "2 Fill Out Form" in message and info.value.retryable is False


def test_a_window_over_31_days_is_split_into_contiguous_filters():
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    end = dt.datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC)
    parts = activity_filters(start, end, (6, 7))
    assert len(parts) == 2 and parts[0].start == start and parts[-1].end == end
    assert parts[1].start - parts[0].end == dt.timedelta(seconds=1)
    assert all(p.activity_type_ids == (6, 7) for p in parts)


def test_the_setting_takes_ids_and_names_and_refuses_empty_items(monkeypatch):
    monkeypatch.setenv("MARKETO_ACTIVITY_TYPES", "1, Fill Out Form ,Click Email")
    assert load_settings().activity_type_selection == ("1", "Fill Out Form", "Click Email")
    assert ProjectSettings().activity_partition_window == "daily"  # type: ignore[call-arg]
    monkeypatch.setenv("MARKETO_ACTIVITY_TYPES", "1,,2")
    with pytest.raises(SettingsError, match="MARKETO_ACTIVITY_TYPES"):
        load_settings()


def _load(conn, path):
    return load_partition(
        conn,
        table="marketo.activities",
        file_path=path,
        file_format="CSV",
        columns=columns_for(list(ACTIVITY_FIELDS), {}),
        partition_key="2025-01-01",
    )


HEADER = ",".join(name for name, _ in ACTIVITY_FIELDS)


def test_attributes_load_as_json_and_typed_columns(tmp_path):
    path = tmp_path / "a.csv"
    attrs = json.dumps({"Link": "https://x.example/?a=1,b", "Is Mobile Device": False})
    quoted = '"' + attrs.replace('"', '""') + '"'
    path.write_text(
        f"{HEADER}\n"
        f"g-1,7,2025-01-01T10:00:00Z,11,null,5001,Mail 1,{quoted}\n"
        "g-2,8,2025-01-01T11:00:00Z,1,42,null,null,null\n"
    )
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert _load(conn, path).rows == 2
    rows = conn.execute(
        "SELECT marketoGUID, activityTypeId, campaignId, attributes->>'$.Link', "
        "typeof(attributes) FROM marketo.activities ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("g-1", 11, None, "https://x.example/?a=1,b", "JSON"),
        ("g-2", 1, 42, None, "JSON"),
    ]


def test_attributes_that_are_not_json_fail_the_load_naming_the_column(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(f'{HEADER}\ng-1,7,2025-01-01T10:00:00Z,11,null,1,x,"{{not json"\n')
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(CastError, match="attributes"):
        _load(conn, path)


def test_the_catalog_rows_keep_attributes_as_json_values():
    (visit, *_rest) = activity_type_rows(CATALOG)
    assert visit["primaryAttribute"] == {"name": "Webpage ID", "dataType": "integer"}
    assert activity_type_rows(CATALOG)[2]["attributes"] == [{"name": "Link", "dataType": "string"}]
