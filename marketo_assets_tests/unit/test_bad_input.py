"""Bad input fails early with a message naming the problem and the fix (no Marketo server).

Settings (environment variables), export windows, the resources' config, and export ids
from Marketo's answers are checked before anything is sent; the Dagster runs with the
simulator are in `dagster/test_bad_input_runs.py`.
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pydantic
import pytest

from marketo_assets.defs.resources import ExportOptions, MarketoResource
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.extract.staging import MARKER, OWNED, clean_staging, private_dir, staging_root
from marketo_assets.marketo import ExportFilter, ExportJob, ExportRequest, errors
from marketo_assets.settings import (
    ListSettings,
    ProjectSettings,
    SecretConfigError,
    SettingsError,
    load_list_settings,
    load_settings,
)
from marketo_assets_tests.support.client_fakes import (
    EXPORT_ID,
    SECRET,
    FakeMarketo,
    job,
    make_client,
    ok,
)

BASE = "/bulk/v1/leads/export"
JAN = datetime(2025, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------ settings (environment)
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MARKETO_PARTITION_START", "2025-01-01T00:00:00.250Z", "YYYY-MM-DD"),
        ("MARKETO_PARTITION_START", "2025-02-30", "not a valid calendar date"),
        ("MARKETO_PARTITION_START", "1735689600", "YYYY-MM-DD"),  # an epoch is not a date
        ("MARKETO_PARTITION_START", "01/02/2025", "YYYY-MM-DD"),
        ("MARKETO_LEAD_CHANGES_START", "2025-01-01 12:00", "YYYY-MM-DD"),
        ("MARKETO_PARTITION_TIMEZONE", "Mars/Olympus_Mons", "IANA timezone"),
        ("MARKETO_PARTITION_WINDOW", "yearly", "'monthly', 'weekly' or 'daily'"),
        ("MARKETO_FIELDS", " , ,", "names no field"),
        ("MARKETO_FORMAT", "XLSX", "'CSV', 'TSV' or 'SSV'"),
        ("MARKETO_MAX_CALLS_PER_20S", "500", "100"),
        ("MARKETO_STAGING_MAX_AGE_HOURS", "0", "greater than 0"),
    ],
)
def test_bad_settings_name_the_variable_and_the_fix(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert expected in message
    assert "Fix" in message or "use" in message or "write" in message


@pytest.mark.parametrize(
    ("variable", "value", "off", "expected"),
    [
        ("MARKETO_STATIC_LISTS", "id:abc", {"static"}, "not a positive list id"),
        ("MARKETO_SMART_LISTS", "[1, 2", {"smart"}, "not a JSON array"),
        ("MARKETO_LIST_FIELDS", ",", {"static", "smart"}, "names no field"),
        ("MARKETO_LIST_SENSOR_INTERVAL", "10", {"static", "smart"}, "greater than or equal"),
        ("MARKETO_STATIC_LIST_REFRESH_HOURS", "-1", {"static"}, "greater than or equal"),
        ("MARKETO_SMART_LIST_REFRESH_HOURS", "1d", {"smart"}, "valid number"),
    ],
)
def test_bad_list_settings_are_reported_not_raised(monkeypatch, variable, value, off, expected):
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv(
        "MARKETO_STATIC_LISTS" if "SMART" in variable else "MARKETO_SMART_LISTS", "7"
    )
    load_settings()  # the project settings do not hold list settings
    config = load_list_settings()
    assert list(config.problems) == [variable]
    problem = config.problems[variable]
    assert f"{variable} is {value!r}" in problem and expected in problem and "Fix" in problem
    for kind in ("static", "smart"):
        assert (config.sensor_problem(kind) == problem) == (kind in off)
    default = ListSettings.model_fields[_field(variable)].default
    assert getattr(config.settings, _field(variable)) == default  # the bad value is not used
    other = "smart" if "STATIC" in variable else "static"
    if other not in off:
        assert getattr(config.settings, f"{other}_list_selection").ids == {7}  # others kept


def _field(variable: str) -> str:
    return next(n for n, f in ListSettings.model_fields.items() if f.validation_alias == variable)


@pytest.mark.parametrize("value", ["csv", "Tsv", " ssv "])
def test_format_setting_is_case_insensitive(monkeypatch, value):
    monkeypatch.setenv("MARKETO_FORMAT", value)
    assert load_settings().export_format == value.strip().upper()


def test_good_settings_still_load(monkeypatch):
    monkeypatch.setenv("MARKETO_PARTITION_START", "2024-07-01")
    monkeypatch.setenv("MARKETO_PARTITION_TIMEZONE", "America/Chicago")
    monkeypatch.setenv("MARKETO_STAGING_MAX_AGE_HOURS", "12")
    settings = load_settings()
    assert settings.partition_start.isoformat() == "2024-07-01"
    assert settings.staging_max_age_hours == 12
    assert ProjectSettings().staging_max_age_hours == 12
    monkeypatch.delenv("MARKETO_STAGING_MAX_AGE_HOURS")
    assert load_settings().staging_max_age_hours == 7 * 24  # Marketo keeps files 7 days


# ------------------------------------------------------------------ export windows and requests
@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (JAN, JAN + timedelta(days=31, seconds=1), "longer than 31 days"),
        (JAN + timedelta(days=2), JAN, "start must be <= end"),
        (JAN.replace(microsecond=500_000), JAN + timedelta(days=1), "no ms"),
        (JAN, (JAN + timedelta(days=1)).replace(microsecond=1), "no ms"),
        (JAN.replace(tzinfo=None), JAN.replace(tzinfo=None), "timezone-aware"),
    ],
)
def test_bad_windows_are_refused_before_any_call(start, end, expected):
    fake = FakeMarketo()
    with make_client(fake), pytest.raises(errors.InvalidRequestError, match=expected):
        ExportFilter.created_at(start, end)
    assert fake.requests == []


def test_a_window_of_exactly_31_days_is_fine():
    flt = ExportFilter.created_at(JAN, JAN + timedelta(days=31))
    assert flt.payload()["createdAt"]["endAt"] == "2025-02-01T00:00:00Z"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"fields": []}, "fields must not be empty"),
        (
            {"fields": ["id"], "column_header_names": {"email": "E"}},
            "not in fields: email. Add those fields",
        ),
        (
            {"fields": ["id", "email"], "column_header_names": {"id": "X", "email": "X"}},
            "duplicated: X",
        ),
    ],
)
def test_bad_requests_name_the_problem(kwargs, expected):
    with pytest.raises(errors.InvalidRequestError, match=expected):
        ExportRequest(filter=ExportFilter.static_list_id(1), **kwargs)


# ------------------------------------------------------------------ resource config
def _marketo(**overrides) -> MarketoResource:
    config = {
        "base_url": "https://123-ABC-456.mktorest.com",
        "client_id": "client-id",
        "client_secret": SECRET,
        "staging_dir": "/tmp/x",
        "ledger_path": "/tmp/x.sqlite",
        **overrides,
    }
    return MarketoResource(**config)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"base_url": "http://123-ABC-456.mktorest.com"}, "plain http for host"),
        ({"base_url": "http://10.1.2.3:8080"}, "Use https://"),
        ({"base_url": "123-ABC-456.mktorest.com"}, "not an absolute http(s) URL"),
        (
            {"base_url": "https://123-ABC-456.mktorest.com/rest/v1"},
            "has the path '/rest/v1': use the instance root https://123-abc-456.mktorest.com",
        ),
        (
            {"base_url": "https://123-ABC-456.mktorest.com/identity/oauth/token"},
            "(the REST Endpoint https://123-abc-456.mktorest.com/rest or the Identity",
        ),
        ({"base_url": "https://123-ABC-456.mktorest.com/soap"}, "MARKETO_BASE_URL (base_url)"),
        ({"client_id": ""}, "MARKETO_CLIENT_ID"),
        ({"client_secret": ""}, "MARKETO_CLIENT_SECRET (client_secret) is empty"),
        ({"client_secret": SECRET + "\n"}, "trailing whitespace"),
        ({"staging_max_age_hours": 0}, "must be > 0"),
    ],
)
def test_marketo_resource_config_errors_never_echo_the_secret(overrides, expected):
    with pytest.raises((pydantic.ValidationError, SecretConfigError)) as info:
        _marketo(**overrides)
    assert expected in str(info.value)
    assert SECRET not in str(info.value)
    if isinstance(info.value, pydantic.ValidationError):
        assert SECRET not in repr(info.value.errors())


def test_loopback_http_is_accepted_for_the_simulator():
    assert _marketo(base_url="http://127.0.0.1:8765").base_url == "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    "shown",
    [
        "https://123-ABC-456.mktorest.com",
        "https://123-ABC-456.mktorest.com/",
        "https://123-ABC-456.mktorest.com/rest",  # Admin > Web Services: REST Endpoint
        "https://123-ABC-456.mktorest.com/rest/",
        "https://123-ABC-456.mktorest.com/identity",  # Admin > Web Services: Identity
        " https://123-ABC-456.mktorest.com/identity/ ",
    ],
)
def test_base_url_as_marketo_shows_it_is_the_instance_root(shown):
    resource = _marketo(base_url=shown)
    assert resource.base_url == "https://123-abc-456.mktorest.com"
    assert resource.client_settings().base_url == "https://123-abc-456.mktorest.com"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"fields": ["id", ""]}, "field names must not be empty"),
        ({"list_fields": ["email", "  "]}, "field names must not be empty"),
        ({"column_header_names": {"email": "Mail", "company": "MAIL"}}, "ignore case"),
        ({"column_header_names": {"email": ""}}, "non-empty header"),
        ({"column_header_names": {"email": "_loaded_at"}}, "lineage column"),
        ({"format": "XLS"}, "use CSV, TSV or SSV"),
    ],
)
def test_export_options_config_errors(config, expected):
    with pytest.raises(pydantic.ValidationError, match=expected):
        ExportOptions(**config)


@pytest.mark.parametrize("raw", ['{"email": null}', '{"id": "Lead ID", "email": 5}'])
def test_header_names_that_are_not_strings_are_refused(monkeypatch, raw):
    """`{"email": null}` once gave a column named "None"; the Launchpad refuses it too."""
    monkeypatch.setenv("MARKETO_COLUMN_HEADER_NAMES", raw)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "MARKETO_COLUMN_HEADER_NAMES" in message
    assert "the header of email is not a string" in message and "JSON string" in message
    with pytest.raises(pydantic.ValidationError, match="valid string"):
        ExportOptions(column_header_names=json.loads(raw))


def test_fields_that_would_be_one_column_are_refused_before_the_export():
    """Table columns are the REST names: two that differ only in case would be one column."""
    import dagster as dg

    from marketo_assets.defs.resources import as_failure
    from marketo_assets.extract import check_columns

    window = ExportFilter.created_at(JAN, JAN + timedelta(days=1))
    check_columns(ExportRequest(fields=["id", "email"], filter=window,
                                column_header_names={"id": "Lead ID"}))  # fmt: skip
    refused = pytest.raises(dg.Failure, match="'email' and 'Email' would be one table column")
    with refused, as_failure():  # as the export step reports it
        check_columns(ExportRequest(fields=["id", "email", "Email"], filter=window))


def test_export_options_accept_odd_but_valid_headers_and_lowercase_format():
    headers = {"email": 'E-mail "x"; DROP TABLE t; --', "company": "Société 名前 🚀"}
    options = ExportOptions(column_header_names=headers, format="tsv")
    assert options.format == "TSV"
    assert options.column_header_names == headers


# ------------------------------------------------------------------ export ids from the server
BAD_IDS = ["../../../etc/passwd", "abc", "11111111-2222-3333-4444-555555555555/../x", ""]


@pytest.mark.parametrize("bad_id", [b for b in BAD_IDS if b])
def test_non_uuid_export_id_from_create_never_reaches_a_url(bad_id):
    fake = FakeMarketo()
    fake.script(f"{BASE}/create.json", ok([job("Created", exportId=bad_id)]))
    request = ExportRequest(fields=["id"], filter=ExportFilter.static_list_id(1))
    with make_client(fake) as client, pytest.raises(errors.InvalidExportIdError) as info:
        client.create_export(request)
    assert "not a UUID" in str(info.value)
    paths = [r.url.path for r in fake.requests]
    assert paths == ["/identity/oauth/token", f"{BASE}/create.json"]


def test_status_answer_with_a_non_uuid_id_is_refused():
    fake = FakeMarketo()
    fake.script(f"{BASE}/{EXPORT_ID}/status.json", ok([job("Completed", exportId="../x")]))
    with make_client(fake) as client, pytest.raises(errors.InvalidExportIdError):
        client.get_export(EXPORT_ID)


def test_status_answer_about_another_export_is_refused():
    other = "99999999-8888-7777-6666-555555555555"
    fake = FakeMarketo()
    fake.script(f"{BASE}/{EXPORT_ID}/status.json", ok([job("Completed", exportId=other)]))
    with make_client(fake) as client, pytest.raises(errors.MarketoAPIError, match="when asked"):
        client.get_export(EXPORT_ID)


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_non_uuid_ids_are_refused_before_any_call_or_file(bad_id, tmp_path):
    fake = FakeMarketo()
    with make_client(fake) as client:
        for call in (client.get_export, client.enqueue_export, client.cancel_export):
            with pytest.raises(errors.InvalidExportIdError):
                call(bad_id)
        with pytest.raises(errors.InvalidExportIdError):
            client.export_usable(bad_id)
        completed = ExportJob(export_id=bad_id, status="Completed", file_size=1)
        with pytest.raises(errors.InvalidExportIdError):
            client.download_export(completed, tmp_path / "out.csv")
    assert [r for r in fake.requests if r.url.path != "/identity/oauth/token"] == []
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ staging folder
def test_staging_root_is_private_and_the_users_folder_keeps_its_mode(tmp_path):
    (tmp_path / "exports").mkdir(mode=0o755)
    old = os.umask(0)
    try:
        root = staging_root(tmp_path / "exports")
        (root / "marketo_leads").mkdir(mode=0o755)  # e.g. left by a different umask
        leaf = private_dir(root, "marketo_leads", "2025-01-01")
        made = staging_root(tmp_path / "new" / "exports")  # missing: created, so private
    finally:
        os.umask(old)
    assert root == tmp_path / "exports" / OWNED and (root / MARKER).is_file()
    assert stat.S_IMODE((tmp_path / "exports").stat().st_mode) == 0o755  # the user's: as it was
    for path in (root, leaf.parent, leaf, made, made.parent, made.parent.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def _staged(root: Path, name: str, age_hours: float) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"id,email\n1,a@example.com\n")
    then = time.time() - age_hours * 3600
    os.utime(path, (then, then))
    return path


def test_clean_staging_deletes_old_finished_files_of_ours_only(tmp_path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    root = tmp_path / "exports" / OWNED
    ids = {status: str(uuid.uuid4()) for status in ("loaded", "downloaded", "failed", "created")}
    for status, export_id in ids.items():
        ledger.record_created(
            export_id=export_id,
            asset="marketo/leads",
            partition_key=f"p-{status}",
            request_hash="h",
            request={},
            status=status,
        )
    loaded_old = _staged(root, f"a/{ids['loaded']}.csv", 200)
    loaded_new = _staged(root, f"a/{ids['loaded']}.tsv.part", 1)
    # The copy of an export another machine loaded (its load downloaded the file again).
    loaded_elsewhere = _staged(root, f"f/{ids['loaded']}.csv", 0)
    failed_old = _staged(root, f"b/{ids['failed']}.csv.part", 200)
    failed_copy = _staged(root, f"b/.{ids['failed']}.csv.k2j_x9.nonul", 200)  # a killed load's
    downloaded_old = _staged(root, f"c/{ids['downloaded']}.csv", 500)  # not loaded yet
    part_active = _staged(root, f"d/{ids['created']}.csv.part", 500)
    # Not provably ours: another ledger's export, other names, files outside our folder.
    unknown = _staged(root, f"e/{uuid.uuid4()}.csv.part", 200)
    other_names = [
        _staged(root, f"e/{ids['loaded']}.csv.copy", 200),
        _staged(root, f"e/notes-{ids['failed']}.csv", 200),
        _staged(root, "e/.leftover.nonul", 200),
    ]
    outside = _staged(tmp_path / "exports", f"{ids['loaded']}.csv", 200)
    # A staged file an earlier version recorded outside our folder is ours: cleaned too.
    legacy_id = str(uuid.uuid4())
    legacy = _staged(tmp_path / "exports", f"marketo_leads/p/{legacy_id}.csv", 200)
    ledger.record_created(
        export_id=legacy_id,
        asset="marketo/leads",
        partition_key="p-legacy",
        request_hash="h",
        request={},
        status="superseded",
    )
    ledger.update(legacy_id, staged_file=str(legacy))

    result = clean_staging(root, ledger, max_age_seconds=168 * 3600)

    assert sorted(result.deleted) == sorted(
        [loaded_old, loaded_elsewhere, failed_old, failed_copy, legacy]
    )
    assert sorted(result.kept_active) == sorted([downloaded_old, part_active])
    assert result.bytes_freed > 0
    for kept in (loaded_new, downloaded_old, part_active, unknown, *other_names, outside):
        assert kept.exists()
    assert (root / "a").is_dir()  # folders stay: another step may be writing into one


def test_clean_staging_of_a_missing_folder_is_a_no_op(tmp_path):
    result = clean_staging(tmp_path / "nope", ExportLedger(tmp_path / "l.sqlite"), 1.0)
    assert result.deleted == [] and result.kept_active == []


def test_mock_transport_is_what_the_client_uses():
    """Guard for the tests above: FakeMarketo really sits behind the client."""
    fake = FakeMarketo()
    fake.script(f"{BASE}/{EXPORT_ID}/status.json", ok([job("Queued")]))
    with make_client(fake) as client:
        assert client.get_export(EXPORT_ID).status == "Queued"
    assert isinstance(fake.requests[-1], httpx.Request)
