"""Deleted-lead paging, the program catalog and the program member describe (fake Marketo)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from marketo_assets.extract.list_plan import DiscoveredList, load_cursor, plan_tick
from marketo_assets.marketo import ExportRequest, ProgramMemberFilter, errors
from marketo_assets.settings import ListSelection, load_list_settings
from marketo_assets_tests.support.client_fakes import FakeMarketo, make_client, ok

TOKEN = "/rest/v1/activities/pagingtoken.json"
PAGE = "/rest/v1/activities/deletedleads.json"
DAY = datetime(2025, 3, 1, tzinfo=UTC)
NEXT_DAY = datetime(2025, 3, 2, tzinfo=UTC)


def deletion(activity_id: int, lead_id: int, when: str) -> dict:
    return {"id": activity_id, "leadId": lead_id, "activityDate": when, "activityTypeId": 37}


def test_deleted_leads_page_from_one_token_and_stop_at_the_window_end():
    fake = FakeMarketo()
    pages = {
        "t0": ok([deletion(1, 11, "2025-03-01T00:00:00Z")], nextPageToken="t1", moreResult=True),
        "t1": ok([], nextPageToken="t2", moreResult=True),  # Marketo: empty page, more to come
        "t2": ok(
            [deletion(2, 12, "2025-03-01T23:59:59Z"), deletion(3, 13, "2025-03-02T00:00:00Z")],
            nextPageToken="t3",
            moreResult=True,
        ),
        "t3": ok([deletion(4, 14, "2025-03-02T05:00:00Z")], nextPageToken="t4", moreResult=False),
    }
    fake.script(TOKEN, ok(nextPageToken="t0"))
    fake.script(PAGE, lambda req: httpx.Response(200, json=pages[req.url.params["nextPageToken"]]))
    with make_client(fake) as client:
        found = list(client.iter_deleted_leads(DAY, NEXT_DAY))
    assert [(d.id, d.lead_id) for d in found] == [(1, 11), (2, 12)]
    assert found[1].deleted_at == datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC)
    token_calls = [r for r in fake.requests if r.url.path == TOKEN]
    assert [r.url.params["sinceDatetime"] for r in token_calls] == ["2025-03-01T00:00:00Z"]
    page_calls = [r for r in fake.requests if r.url.path == PAGE]
    assert [r.url.params["nextPageToken"] for r in page_calls] == ["t0", "t1", "t2"]  # not t3
    assert {r.url.params["batchSize"] for r in page_calls} == {"300"}


def test_deleted_leads_end_when_marketo_has_no_more():
    fake = FakeMarketo()
    fake.script(TOKEN, ok(nextPageToken="t0"))
    fake.script(PAGE, ok(nextPageToken="t0", moreResult=False))  # no `result` at all
    with make_client(fake) as client:
        assert list(client.iter_deleted_leads(DAY, NEXT_DAY)) == []
    assert fake.calls(PAGE) == 1


@pytest.mark.parametrize(
    ("start", "end"),
    [(DAY.replace(tzinfo=None), NEXT_DAY), (NEXT_DAY, DAY), (DAY, DAY)],
)
def test_bad_deleted_lead_windows_fail_before_any_call(start, end):
    fake = FakeMarketo()
    with make_client(fake) as client, pytest.raises(errors.InvalidRequestError):
        list(client.iter_deleted_leads(start, end))
    assert fake.rest_calls == 0


def program(pid: int, name: str) -> dict:
    return {"id": pid, "name": name, "type": "program", "channel": "Webinar", "folder": {}}


def test_programs_are_paged_by_offset_200_at_a_time():
    fake = FakeMarketo()
    first = [program(i, f"P{i}") for i in range(1, 201)]
    offsets: list[str] = []

    def answer(req: httpx.Request) -> httpx.Response:
        offsets.append(req.url.params["offset"])
        assert req.url.params["maxReturn"] == "200"
        if req.url.params["offset"] == "0":
            return httpx.Response(200, json=ok(first))
        if req.url.params["offset"] == "200":
            return httpx.Response(200, json=ok([program(201, "Last")]))
        return httpx.Response(200, json=ok(warnings=["No assets found"]))

    fake.script("/rest/asset/v1/programs.json", answer)
    with make_client(fake) as client:
        found = list(client.iter_programs())
    assert len(found) == 201 and found[-1].name == "Last" and found[0].channel == "Webinar"
    assert offsets == ["0", "200"]


def test_program_member_describe_lists_typed_fields():
    fake = FakeMarketo()
    fields = [
        {"name": "programId", "dataType": "integer"},
        {"name": "leadId", "dataType": "integer"},
        {"name": "statusName", "dataType": "string"},
        {"displayName": "no name"},
    ]
    fake.script("/rest/v1/programs/members/describe.json", ok([{"name": "PM", "fields": fields}]))
    with make_client(fake) as client:
        described = client.describe_program_members()
    assert [(f.name, f.data_type) for f in described] == [
        ("programId", "integer"),
        ("leadId", "integer"),
        ("statusName", "string"),
    ]


def test_program_partitions_are_keyed_by_program_id():
    found = [DiscoveredList(3001, "Newsletter", DAY), DiscoveredList(3002, "Webinar: A", DAY)]
    plan = plan_tick(
        "program",
        found,
        ListSelection.parse("Webinar*"),
        {"3001"},
        load_cursor(None),
        DAY,
        partition_key=str,
    )
    assert (plan.add, plan.delete) == (["3002"], ["3001"])
    assert [run[:2] for run in plan.runs] == [("3002", "3002@2025-03-01T00:00:00Z")]


def test_a_bad_program_selection_switches_off_the_program_sensor_only(monkeypatch):
    monkeypatch.setenv("MARKETO_PROGRAMS", "id:0")
    lists = load_list_settings()
    assert (lists.sensor_problem("program") or "").startswith("MARKETO_PROGRAMS is 'id:0'")
    assert lists.sensor_problem("static") is None
    monkeypatch.setenv("MARKETO_PROGRAMS", "3001, Spring Promo, Web*")
    selection = load_list_settings().settings.program_selection
    assert (selection.ids, selection.names, selection.patterns) == (
        {3001},
        {"Spring Promo"},
        ("Web*",),
    )


def test_more_than_ten_programs_per_job_fail_before_any_call():
    fake = FakeMarketo()
    with make_client(fake) as client, pytest.raises(errors.InvalidRequestError, match="at most 10"):
        many = ProgramMemberFilter(program_ids=tuple(range(3001, 3012)))
        client.create_export(ExportRequest(fields=["leadId"], filter=many))
    assert fake.rest_calls == 0
