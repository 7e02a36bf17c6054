"""Bulk export types (leads, activities, program members): each type's filters are validated
before any call, each job's calls go to its type's paths, and the shared queue and quota are
counted over the job lists of every type."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from marketo_assets.marketo import (
    ActivityFilter,
    ExportFilter,
    ExportRequest,
    ProgramMemberFilter,
    errors,
)
from marketo_assets_tests.support.client_fakes import (
    EXPORT_ID,
    FakeMarketo,
    err,
    job,
    make_client,
    ok,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = (T0, T0 + timedelta(days=1, seconds=-1))
ACTIVITIES = "/bulk/v1/activities/export"
MEMBERS = "/bulk/v1/program/members/export"
LEADS = "/bulk/v1/leads/export"


def activities(**options: object) -> ExportRequest:
    flt = ActivityFilter(start=DAY[0], end=DAY[1], **options)  # type: ignore[arg-type]
    return ExportRequest(fields=["marketoGUID", "leadId", "attributes"], filter=flt)


def test_activity_filter_payload_and_type():
    request = activities(activity_type_ids=[1, 6], primary_attribute_value_ids=[1001])
    assert request.export_type == "activities"
    assert request.payload()["filter"] == {
        "createdAt": {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-01-01T23:59:59Z"},
        "activityTypeIds": [1, 6],
        "primaryAttributeValueIds": [1001],
    }
    leads = ExportRequest(fields=["id"], filter=ExportFilter.created_at(*DAY))
    assert leads.export_type == "leads"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"end": T0 + timedelta(days=31, seconds=1)}, "longer than 31 days"),
        ({"primary_attribute_values": ["Webinar"]}, "need activityTypeIds"),
        ({"primary_attribute_value_ids": [5]}, "need activityTypeIds"),
        (
            {
                "activity_type_ids": [1],
                "primary_attribute_value_ids": [5],
                "primary_attribute_values": ["x"],
            },
            "cannot be combined",
        ),
        (
            {"activity_type_ids": [1], "primary_attribute_value_ids": list(range(1, 52))},
            "at most 50",
        ),
        ({"activity_type_ids": [True]}, "integers"),
        ({"activity_type_ids": [0]}, "positive"),
    ],
)
def test_bad_activity_filters_are_refused_before_any_call(options, message):
    fake = FakeMarketo()
    client = make_client(fake)
    window = {"start": T0, "end": DAY[1], **options}
    with pytest.raises(errors.InvalidRequestError, match=message):
        client.create_export(
            ExportRequest(fields=["marketoGUID"], filter=ActivityFilter(**window))  # type: ignore[arg-type]
        )
    assert fake.rest_calls == 0


def test_program_member_filter_payloads():
    one = ProgramMemberFilter(program_id=1044, status_names=["Attended"], nurture_cadence="paused")
    assert one.payload() == {
        "programId": 1044,
        "nurtureCadence": "paused",
        "statusNames": ["Attended"],
    }
    several = ProgramMemberFilter(
        program_ids=[1, 2], is_exhausted=False, updated_start=DAY[0], updated_end=DAY[1]
    )
    assert several.payload() == {
        "programIds": [1, 2],
        "isExhausted": False,
        "updatedAt": {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-01-01T23:59:59Z"},
    }
    assert ExportRequest(fields=["leadId"], filter=several).export_type == "program_members"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "programId or programIds"),
        ({"program_id": 1, "program_ids": [2]}, "programId or programIds"),
        ({"program_ids": list(range(1, 12))}, "at most 10 programs"),
        ({"program_ids": [3, 3]}, "duplicates"),
        ({"program_id": 1, "nurture_cadence": "sometimes"}, "nurture_cadence"),
        ({"program_id": 1, "updated_start": T0}, "needs both"),
        (
            {"program_id": 1, "updated_start": T0, "updated_end": T0 + timedelta(days=32)},
            "longer than 31 days",
        ),
        ({"program_id": 1, "status_names": [" "]}, "must not be empty"),
    ],
)
def test_bad_program_member_filters_are_refused(options, message):
    with pytest.raises(errors.InvalidRequestError, match=message):
        ProgramMemberFilter(**options)  # type: ignore[arg-type]


def test_an_activity_job_lives_under_the_activity_paths(tmp_path):
    fake = FakeMarketo()
    body = b"marketoGUID,leadId,attributes\n1,2,{}\n"
    done = job(
        "Completed",
        numberOfRecords=1,
        fileSize=len(body),
        fileChecksum="sha256:" + hashlib.sha256(body).hexdigest(),
    )
    fake.script(f"{ACTIVITIES}/create.json", ok([job()]))
    fake.script(f"{ACTIVITIES}/{EXPORT_ID}/status.json", ok([job()]), ok([done]))
    fake.script(f"{ACTIVITIES}/{EXPORT_ID}/enqueue.json", ok([job("Queued")]))
    fake.script(
        f"{ACTIVITIES}/{EXPORT_ID}/file.json",
        httpx.Response(200, content=body, headers={"content-type": "text/csv"}),
    )
    fake.script(f"{ACTIVITIES}/{EXPORT_ID}/cancel.json", ok([job("Cancelled")]))
    client = make_client(fake)
    created = client.create_export(activities())
    assert created.export_type == "activities"
    finished = client.wait_for_export(created.export_id, export_type="activities")
    assert finished.export_type == "activities" and finished.status == "Completed"
    result = client.download_export(finished, tmp_path / "a.csv")
    assert result.path.read_bytes() == body
    assert client.export_usable(EXPORT_ID, "activities") is not None
    client.cancel_export(EXPORT_ID, "activities")
    assert not [r for r in fake.requests if r.url.path.startswith(LEADS)]


def _listing(*jobs: dict) -> dict:
    return ok(list(jobs))


def test_the_quota_counts_the_completed_jobs_of_every_type():
    fake = FakeMarketo()
    today = "2025-01-01T12:00:00Z"
    fake.script(f"{LEADS}.json", _listing(job("Completed", finishedAt=today, fileSize=100)))
    fake.script(
        f"{ACTIVITIES}.json",
        _listing(job("Completed", finishedAt=today, fileSize=2000)),
    )
    fake.script(f"{MEMBERS}.json", _listing(job("Completed", finishedAt=today, fileSize=30)))
    client = make_client(fake)
    assert client.exported_bytes_today(now=datetime(2025, 1, 1, 18, tzinfo=UTC)) == 2130
    for base in (LEADS, ACTIVITIES, MEMBERS):
        assert fake.calls(f"{base}.json") == 1


def test_a_job_list_this_user_may_not_read_has_none_of_its_jobs():
    fake = FakeMarketo()
    fake.script(
        f"{LEADS}.json", _listing(job("Completed", finishedAt="2025-01-01T12:00:00Z", fileSize=7))
    )
    fake.script(f"{ACTIVITIES}.json", err("603", "Access denied"))
    fake.script(f"{MEMBERS}.json", err("610", "Requested resource not found"))
    client = make_client(fake)
    assert client.exported_bytes_today(now=datetime(2025, 1, 1, 18, tzinfo=UTC)) == 7
    # ... but the lead list must answer: without it nothing is known.
    fake.script(f"{LEADS}.json", err("603", "Access denied"))
    with pytest.raises(errors.MarketoAPIError):
        client.exported_bytes_today()


def test_queue_full_says_how_many_of_our_jobs_of_every_type_are_active():
    fake = FakeMarketo()
    fake.script(
        f"{ACTIVITIES}/{EXPORT_ID}/enqueue.json", err("1029", "Too many jobs (10) in queue")
    )
    fake.script(f"{LEADS}.json", _listing(job("Processing")))
    fake.script(f"{ACTIVITIES}.json", _listing(job("Processing"), job("Queued")))
    fake.script(f"{MEMBERS}.json", _listing(job("Queued")))
    client = make_client(fake)
    with pytest.raises(errors.QueueFullError, match="2 processing, 2 queued"):
        client.enqueue_export(EXPORT_ID, "activities")
    statuses = {r.url.params.get("status") for r in fake.requests if r.url.path.endswith("t.json")}
    assert statuses == {"Queued,Processing"}
