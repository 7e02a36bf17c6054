"""ExportRequest / ExportFilter / ClientSettings validation: all before any call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from pydantic import ValidationError

from marketo_assets.marketo import ClientSettings, ExportFilter, ExportJob, ExportRequest, errors
from marketo_assets_tests.support.client_fakes import FakeMarketo, make_client

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_created_at_payload_renders_utc_without_ms():
    cst = timezone(timedelta(hours=-6))
    f = ExportFilter.created_at(
        datetime(2025, 1, 1, 0, 0, tzinfo=cst), datetime(2025, 1, 31, tzinfo=cst)
    )
    assert f.payload() == {
        "createdAt": {"startAt": "2025-01-01T06:00:00Z", "endAt": "2025-01-31T06:00:00Z"}
    }
    req = ExportRequest(
        fields=["id", "email"],
        filter=f,
        format="TSV",
        column_header_names={"email": "Email Address"},
    )
    assert req.payload() == {
        "fields": ["id", "email"],
        "format": "TSV",
        "filter": f.payload(),
        "columnHeaderNames": {"email": "Email Address"},
    }
    assert "columnHeaderNames" not in ExportRequest(fields=["id"], filter=f).payload()


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (
            lambda: ExportFilter.updated_at(T0, T0 + timedelta(days=31)),
            {"updatedAt": {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-02-01T00:00:00Z"}},
        ),
        (lambda: ExportFilter.static_list_id(12), {"staticListId": 12}),
        (lambda: ExportFilter.static_list_name("VIP"), {"staticListName": "VIP"}),
        (lambda: ExportFilter.smart_list_id(3), {"smartListId": 3}),
        (lambda: ExportFilter.smart_list_name("Hot leads"), {"smartListName": "Hot leads"}),
    ],
)
def test_filter_payloads(factory, expected):
    assert factory().payload() == expected


@pytest.mark.parametrize(
    "build",
    [
        lambda: ExportFilter.created_at(datetime(2025, 1, 1), datetime(2025, 1, 2)),  # naive
        lambda: ExportFilter.created_at(T0.replace(microsecond=5), T0 + timedelta(days=1)),
        lambda: ExportFilter.created_at(T0 + timedelta(days=1), T0),  # start > end
        lambda: ExportFilter.created_at(T0, T0 + timedelta(days=31, seconds=1)),
        lambda: ExportFilter.updated_at(T0, T0 + timedelta(days=40)),
        lambda: ExportFilter.static_list_id(0),
        lambda: ExportFilter.smart_list_id(-3),
        lambda: ExportFilter.static_list_id(True),
        lambda: ExportFilter.static_list_name(""),
        lambda: ExportFilter.smart_list_name("   "),
        lambda: ExportFilter(kind="createdAt", start=T0, end=T0, list_id=3),  # two filters
        lambda: ExportFilter(kind="staticListId", list_id=3, list_name="x"),
        lambda: ExportFilter(kind="bogus", list_id=3),
    ],
)
def test_invalid_filters_raise_invalid_request(build):
    with pytest.raises(errors.InvalidRequestError):
        build()


GOOD = ExportFilter.static_list_id(1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fields": []},
        {"fields": ["id", "id"]},
        {"fields": ["id", ""]},
        {"fields": ["id"], "format": "XLS"},
        {"fields": ["id"], "column_header_names": {"email": "E"}},
        {"fields": ["id", "email"], "column_header_names": {"email": ""}},
        {"fields": ["id", "email"], "format": "TSV", "column_header_names": {"email": "a\tb"}},
        {"fields": ["id", "email"], "column_header_names": {"email": " padded"}},
        {"fields": ["id", "email"], "column_header_names": {"email": "a\nb"}},
        {"fields": ["id", "email"], "column_header_names": {"email": "a\x00b"}},
        {"fields": ["id", "email"], "column_header_names": {"email": "id"}},  # header clash
        {"fields": ["id", "email"], "column_header_names": {"id": "X", "email": "X"}},
    ],
)
def test_invalid_requests_raise_before_any_call(kwargs):
    fake = FakeMarketo()
    with pytest.raises(errors.InvalidRequestError):
        ExportRequest(filter=GOOD, **kwargs)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("fmt", "header"),
    [("CSV", "a,b"), ("SSV", "a;b"), ("CSV", 'a"b'), ("CSV", 'x"; DROP TABLE leads; --')],
)
def test_quoted_header_names_are_valid(fmt, header):
    """Delimiters and quotes in a header are quoted in the file (RFC 4180) and in SQL."""
    request = ExportRequest(
        filter=GOOD, fields=["id", "email"], format=fmt, column_header_names={"email": header}
    )
    assert request.headers() == ["id", header]


def test_create_export_refuses_non_request_without_calls():
    fake = FakeMarketo()
    with make_client(fake) as client, pytest.raises(errors.InvalidRequestError):
        client.create_export({"fields": ["id"]})  # type: ignore[arg-type]
    assert fake.requests == []


def test_settings_require_https_except_loopback():
    for url in (
        "http://127.0.0.1:8765",
        "http://localhost:1",
        "http://[::1]:9",
        "https://x.mktorest.com",
    ):
        ClientSettings(base_url=url, client_id="a", client_secret="b")
    for url in ("http://x.mktorest.com", "ftp://x", "x.mktorest.com", "http://10.0.0.1"):
        with pytest.raises(ValidationError):
            ClientSettings(base_url=url, client_id="a", client_secret="b")
    s = ClientSettings(base_url="https://x.mktorest.com/", client_id="a", client_secret="b")
    assert s.base_url == "https://x.mktorest.com"
    for shown in ("https://x.mktorest.com/rest", "https://x.mktorest.com/identity/"):
        same = ClientSettings(base_url=shown, client_id="a", client_secret="b")
        assert same.base_url == "https://x.mktorest.com"
    for url in ("https://x.mktorest.com/rest/v1", "https://x.mktorest.com/x", "https://u:p@x.com"):
        with pytest.raises(ValidationError, match=r"use the instance root|user name"):
            ClientSettings(base_url=url, client_id="a", client_secret="b")
    with pytest.raises(ValidationError):
        s.model_copy(update={}).__setattr__("poll_interval", 1.0)


def test_export_job_parsing_tolerates_missing_fields():
    job = ExportJob.from_api(
        {
            "exportId": "e1",
            "status": "Created",
            "format": "CSV",
            "createdAt": "2020-01-17T20:10:43Z",
        }
    )
    assert job.created_at == datetime(2020, 1, 17, 20, 10, 43, tzinfo=UTC)
    assert job.queued_at is None and job.file_size is None and job.sha256 is None
    done = ExportJob.from_api(
        {
            "exportId": "e2",
            "status": "Canceled",
            "createdAt": "2017-07-27T01:38:33Z+0000",
            "queuedAt": "2020-01-17T12:10:43-08:00",
            "finishedAt": None,
            "numberOfRecords": "12",
            "fileSize": 345,
            "fileChecksum": "sha256:ABCD",
        }
    )
    assert done.status == "Cancelled"
    assert done.created_at == datetime(2017, 7, 27, 1, 38, 33, tzinfo=UTC)
    assert done.queued_at == datetime(2020, 1, 17, 20, 10, 43, tzinfo=UTC)
    assert done.number_of_records == 12 and done.file_size == 345 and done.sha256 == "abcd"
    failed = ExportJob.from_api({"exportId": "e3", "status": "Failed", "errorMsg": "boom"})
    assert failed.error_msg == "boom" and failed.format is None


def test_mock_transport_is_https_friendly():
    fake = FakeMarketo()
    with make_client(fake) as client:
        assert isinstance(client._http._transport, httpx.MockTransport)
