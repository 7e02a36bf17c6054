"""wait_for_export, cancel on timeout, job list, reattach, catalog paging."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from marketo_assets.marketo import ExportJob, errors
from marketo_assets_tests.support.client_fakes import (
    EXPORT_ID,
    FakeClock,
    FakeMarketo,
    err,
    job,
    make_client,
    ok,
)

BASE = "/bulk/v1/leads/export"
ENQUEUE = f"{BASE}/{EXPORT_ID}/enqueue.json"
STATUS = f"{BASE}/{EXPORT_ID}/status.json"
CANCEL = f"{BASE}/{EXPORT_ID}/cancel.json"
FILE = f"{BASE}/{EXPORT_ID}/file.json"
DONE = job(
    "Completed",
    queuedAt="2025-01-01T00:00:10Z",
    startedAt="2025-01-01T00:01:10Z",
    finishedAt="2025-01-01T00:03:10Z",
    numberOfRecords=5,
    fileSize=100,
    fileChecksum="sha256:" + "0" * 64,
)


def test_wait_enqueues_created_polls_and_emits_status_events():
    fake = FakeMarketo()
    events: list = []
    clock = FakeClock()
    fake.script(
        STATUS,
        ok([job("Created")]),
        ok([job("Queued")]),
        ok([job("Queued")]),
        ok([job("Processing", startedAt="2025-01-01T00:01:10Z")]),
        ok([DONE]),
    )
    fake.script(ENQUEUE, ok([job("Queued", queuedAt="2025-01-01T00:00:10Z")]))
    with make_client(fake, events, clock, poll_interval=30.0) as client:
        done = client.wait_for_export(EXPORT_ID)
    assert done.status == "Completed" and done.number_of_records == 5
    assert fake.calls(ENQUEUE) == 1
    assert clock.sleeps == [30.0, 30.0, 30.0, 30.0]  # never faster than poll_interval
    statuses = [e for e in events if e.kind == "status"]
    assert [e.data["status"] for e in statuses] == ["Created", "Queued", "Processing", "Completed"]
    assert statuses[-1].data["queue_wait_seconds"] == 60.0
    assert statuses[-1].data["processing_seconds"] == 120.0
    assert statuses[-1].data["elapsed_seconds"] == 120.0
    assert all(e.export_id == EXPORT_ID for e in statuses)


def test_wait_for_a_job_just_created_makes_no_status_call_before_enqueuing():
    """The job create_export returned is known to be Created: one REST call fewer per export."""
    fake = FakeMarketo()
    events: list = []
    fake.script(ENQUEUE, ok([job("Queued", queuedAt="2025-01-01T00:00:10Z")]))
    fake.script(STATUS, ok([DONE]))
    created = ExportJob.from_api(job("Created"), "leads")
    with make_client(fake, events, FakeClock(), poll_interval=30.0) as client:
        done = client.wait_for_export(EXPORT_ID, seen=created)
        assert client.calls_made == 2
    assert done.status == "Completed"
    assert [fake.calls(ENQUEUE), fake.calls(STATUS)] == [1, 1]
    statuses = [e.data["status"] for e in events if e.kind == "status"]
    assert statuses == ["Created", "Queued", "Completed"]


def test_wait_failed_raises_with_error_msg():
    fake = FakeMarketo()
    fake.script(STATUS, ok([job("Failed", errorMsg="Export failed: internal error 42")]))
    with make_client(fake) as client, pytest.raises(errors.ExportJobFailedError) as info:
        client.wait_for_export(EXPORT_ID)
    assert info.value.error_msg == "Export failed: internal error 42"
    assert "internal error 42" in str(info.value) and "create a new" in str(info.value)


def test_wait_cancelled_raises():
    fake = FakeMarketo()
    fake.script(STATUS, ok([job("Cancelled")]))
    with make_client(fake) as client, pytest.raises(errors.ExportJobCancelledError):
        client.wait_for_export(EXPORT_ID)


def test_wait_timeout_cancels_job():
    fake = FakeMarketo()
    clock = FakeClock()
    fake.script(STATUS, ok([job("Queued")]))
    fake.script(CANCEL, ok([job("Cancelled")]))
    with make_client(fake, clock=clock) as client, pytest.raises(errors.ExportTimeoutError) as info:
        client.wait_for_export(EXPORT_ID, poll_interval=60, timeout=250)
    assert fake.calls(CANCEL) == 1 and info.value.cancelled
    assert sum(clock.sleeps) == 250 and max(clock.sleeps) == 60
    assert info.value.last_status == "Queued"


def test_list_exports_pages_with_token_and_status_filter():
    fake = FakeMarketo()
    seen: list[httpx.URL] = []

    def page(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if "nextPageToken" not in request.url.params:
            return httpx.Response(200, json=ok([job("Completed")], nextPageToken="PAGE2"))
        return httpx.Response(200, json=ok([job("Queued")]))

    fake.script(f"{BASE}.json", page)
    with make_client(fake) as client:
        jobs = list(client.list_exports(["Completed", "Queued"]))
    assert [j.status for j in jobs] == ["Completed", "Queued"]
    assert seen[0].params["status"] == "Completed,Queued"
    assert seen[1].params["nextPageToken"] == "PAGE2"


def test_exported_bytes_today_counts_completed_since_chicago_midnight():
    fake = FakeMarketo()
    fake.script(
        f"{BASE}.json",
        ok(
            [
                job("Completed", exportId="a", fileSize=100, finishedAt="2025-03-10T06:30:00Z"),
                job("Completed", exportId="b", fileSize=40, finishedAt="2025-03-10T04:30:00Z"),
                job("Completed", exportId="c", fileSize=7, finishedAt="2025-03-10T12:00:00Z"),
            ]
        ),
    )
    with make_client(fake) as client:
        # Chicago midnight on 2025-03-10 is 06:00 UTC (CST)
        assert client.exported_bytes_today(datetime(2025, 3, 10, 15, 0, tzinfo=UTC)) == 107


def test_export_usable_states():
    fake = FakeMarketo()
    fake.script(STATUS, ok([job("Processing")]))
    with make_client(fake) as client:
        assert client.export_usable(EXPORT_ID).status == "Processing"
    fake.script(STATUS, ok([DONE]))
    fake.script(FILE, httpx.Response(206, content=b"i", headers={"Content-Range": "bytes 0-0/100"}))
    with make_client(fake) as client:
        assert client.export_usable(EXPORT_ID).status == "Completed"
    assert fake.requests[-1].headers["range"] == "bytes=0-0"
    fake.script(FILE, httpx.Response(404, text="File not found"))
    with make_client(fake) as client:
        assert client.export_usable(EXPORT_ID) is None
    fake.script(STATUS, ok([job("Failed", errorMsg="x")]))
    with make_client(fake) as client:
        assert client.export_usable(EXPORT_ID) is None
    fake.script(STATUS, err("1003", "Export job not found"))
    with make_client(fake) as client:
        assert client.export_usable(EXPORT_ID) is None


def test_describe2_and_fallback_to_describe():
    fake = FakeMarketo()
    fake.script(
        "/rest/v1/leads/describe2.json",
        ok(
            [
                {
                    "name": "API Lead",
                    "searchableFields": [],
                    "fields": [
                        {
                            "name": "id",
                            "displayName": "Id",
                            "dataType": "integer",
                            "updateable": False,
                        },
                        {
                            "name": "email",
                            "displayName": "Email",
                            "dataType": "email",
                            "length": 255,
                            "updateable": True,
                        },
                    ],
                }
            ]
        ),
    )
    with make_client(fake) as client:
        fields = client.describe_fields()
    assert [(f.name, f.data_type, f.length) for f in fields] == [
        ("id", "integer", None),
        ("email", "email", 255),
    ]
    fake.script("/rest/v1/leads/describe2.json", httpx.Response(404, text="nope"))
    fake.script(
        "/rest/v1/leads/describe.json",
        ok(
            [
                {
                    "id": 1,
                    "displayName": "Id",
                    "dataType": "integer",
                    "rest": {"name": "id", "readOnly": True},
                },
                {"id": 2, "displayName": "SOAP only", "dataType": "string", "soap": {"name": "x"}},
                {
                    "id": 3,
                    "displayName": "Score",
                    "dataType": "score",
                    "rest": {"name": "leadScore", "readOnly": False},
                },
            ]
        ),
    )
    with make_client(fake) as client:
        fields = client.describe_fields()
    assert [(f.name, f.updateable) for f in fields] == [("id", False), ("leadScore", True)]


def test_static_lists_paging():
    fake = FakeMarketo()

    def page(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("nextPageToken") == "T2":
            return httpx.Response(200, json=ok([{"id": 3, "name": "C"}]))
        return httpx.Response(
            200,
            json=ok(
                [
                    {"id": 1, "name": "A", "programName": "P", "createdAt": "2025-01-01T00:00:00Z"},
                    {"id": 2, "name": "B"},
                ],
                nextPageToken="T2",
            ),
        )

    fake.script("/rest/v1/lists.json", page)
    with make_client(fake) as client:
        lists = list(client.iter_static_lists())
    assert [(x.id, x.name) for x in lists] == [(1, "A"), (2, "B"), (3, "C")]
    assert lists[0].program_name == "P" and lists[0].created_at.year == 2025


def test_smart_lists_offset_paging_stops_on_short_page_and_warning():
    fake = FakeMarketo()
    offsets: list[int] = []

    def page(request: httpx.Request) -> httpx.Response:
        off = int(request.url.params["offset"])
        offsets.append(off)
        assert request.url.params["maxReturn"] == "200"
        if off == 0:
            items = [
                {"id": i, "name": f"S{i}", "folder": {"id": 1, "type": "Folder"}}
                for i in range(200)
            ]
            return httpx.Response(200, json=ok(items))
        if off == 200:
            return httpx.Response(
                200,
                json=ok([{"id": 999, "name": "Last", "updatedAt": "2017-07-27T01:38:33Z+0000"}]),
            )
        raise AssertionError("paged too far")

    fake.script("/rest/asset/v1/smartLists.json", page)
    with make_client(fake) as client:
        lists = list(client.iter_smart_lists())
    assert len(lists) == 201 and offsets == [0, 200]
    assert lists[0].folder == {"id": 1, "type": "Folder"}
    fake.script(
        "/rest/asset/v1/smartLists.json",
        ok(None, warnings=["No assets found for the given search criteria."]),
    )
    with make_client(fake) as client:
        assert list(client.iter_smart_lists()) == []
