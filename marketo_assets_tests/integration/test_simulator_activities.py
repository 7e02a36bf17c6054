"""Simulator: bulk activity export (lifecycle, errors, truth, merges), one queue and one quota
shared with the other job types, lazy and deterministic activity generation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from marketo_assets.simulator.process import SimulatorHandle, run_simulator
from marketo_assets_tests.support.simulator import (
    ACTIVITIES,
    LEADS,
    PROGRAM_MEMBERS,
    Api,
    error,
    parse,
    sha,
    sim_job,
)

START, END = "2025-03-01T00:00:00Z", "2025-03-07T23:59:59Z"
WEEK = {"createdAt": {"startAt": START, "endAt": END}}
DEFAULT = [
    "marketoGUID",
    "leadId",
    "activityDate",
    "activityTypeId",
    "campaignId",
    "primaryAttributeValueId",
    "primaryAttributeValue",
    "attributes",
]


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorHandle]:
    with run_simulator(leads=2000, status_interval=0.1) as sim:
        sim.configure(rate_limit=100_000)
        yield sim


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _rows(body: bytes) -> list[dict[str, str]]:
    header, *rows = parse(body)
    return [dict(zip(header, r, strict=True)) for r in rows]


def test_export_lifecycle_default_columns_match_truth(shared_sim):
    api = Api(shared_sim, base=ACTIVITIES)
    created = api.create_body({"filter": WEEK})  # fields are optional for activities
    assert created["success"] and created["result"][0]["status"] == "Created"
    eid = created["result"][0]["exportId"]
    job, body = api.run(eid)
    assert len(body) == job["fileSize"] and sha(body) == job["fileChecksum"]
    header = parse(body)[0]
    assert header == DEFAULT
    rows = _rows(body)
    truth = shared_sim.truth_activities(START, END, ids=True)
    assert job["numberOfRecords"] == len(rows) == truth["count"] > 100
    assert sorted(r["marketoGUID"] for r in rows) == sorted(truth["guids"])
    assert len({r["marketoGUID"] for r in rows}) == len(rows)
    types = {t["id"]: t for t in api.get("/rest/v1/activities/types.json")["result"]}
    for r in rows:
        assert _epoch(START) <= _epoch(r["activityDate"]) <= _epoch(END)
        type_id = int(r["activityTypeId"])
        assert type_id in types and type_id != 37  # Delete Lead is never exported
        attrs = json.loads(r["attributes"])
        assert isinstance(attrs, dict)
        assert set(attrs) <= {a["name"] for a in types[type_id]["attributes"]}
    # a realistic mix, many per lead
    assert len({r["activityTypeId"] for r in rows}) >= 10
    # the job is an activity job: listed there, unknown to the lead endpoints
    listed = api.get(f"{ACTIVITIES}.json")["result"]
    assert eid in [j["exportId"] for j in listed]
    assert eid not in [j["exportId"] for j in Api(shared_sim).get(f"{LEADS}.json")["result"]]
    assert error(Api(shared_sim).status(eid))[0] == "1003"
    assert Api(shared_sim).file(eid).status_code == 404
    assert sim_job(shared_sim, eid)["type"] == "activities"


def test_fields_action_result_and_type_filter(shared_sim):
    api = Api(shared_sim, base=ACTIVITIES)
    flt = WEEK | {"activityTypeIds": [6, 7]}
    body = {"fields": ["marketoGUID", "activityTypeId", "actionResult"], "filter": flt}
    _job, data = api.run(api.create_body_id(body | {"format": "TSV"}))
    header, *rows = parse(data, "TSV")
    assert header == ["marketoGUID", "activityTypeId", "actionResult"]
    assert {r[1] for r in rows} == {"6", "7"}
    assert {r[2] for r in rows} <= {"succeeded", "skipped"}
    assert len(rows) == shared_sim.truth_activities(START, END, [6, 7])["count"]


def test_merges_are_type_32_on_the_survivor(shared_sim):
    merges = shared_sim.truth_merges()["merges"]
    assert merges
    m = merges[0]
    day = m["mergedAt"][:10]
    flt = {
        "createdAt": {"startAt": day + "T00:00:00Z", "endAt": day + "T23:59:59Z"},
        "activityTypeIds": [32],
    }
    api = Api(shared_sim, base=ACTIVITIES)
    _, data = api.run(api.create_body_id({"filter": flt}))
    rows = _rows(data)
    hit = [r for r in rows if r["activityDate"] == m["mergedAt"]]
    assert hit and hit[0]["leadId"] == str(m["winner"])
    assert json.loads(hit[0]["attributes"])["Merge IDs"] == m["merged"]
    # a merged-away lead does nothing after the merge
    whole = {"createdAt": {"startAt": m["mergedAt"], "endAt": _plus_days(m["mergedAt"], 30)}}
    _, data = api.run(api.create_body_id({"fields": ["leadId", "activityDate"], "filter": whole}))
    gone = str(m["merged"][0])
    assert all(r[0] != gone for r in parse(data)[1:])


def _plus_days(text: str, days: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_epoch(text) + days * 86400))


def test_primary_attribute_value_filters(shared_sim):
    api = Api(shared_sim, base=ACTIVITIES)
    by_id = WEEK | {"activityTypeIds": [24, 25], "primaryAttributeValueIds": [1001, 1002]}
    _, data = api.run(api.create_body_id({"filter": by_id}))
    rows = _rows(data)
    assert rows and {r["primaryAttributeValueId"] for r in rows} <= {"1001", "1002"}
    month = {"createdAt": {"startAt": "2025-03-01T00:00:00Z", "endAt": "2025-03-31T23:59:59Z"}}
    by_name = month | {"activityTypeIds": [2], "primaryAttributeValues": ["Contact Us"]}
    _, data = api.run(api.create_body_id({"filter": by_name}))
    rows = _rows(data)
    assert rows and {r["primaryAttributeValue"] for r in rows} == {"Contact Us"}


def _range(start: str, end: str) -> dict:
    return {"startAt": start, "endAt": end}


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({}, "1003", "createdAt is required"),
        ({"filter": {"activityTypeIds": [1]}}, "1003", "createdAt is required"),
        (
            {"filter": {"createdAt": _range("2025-01-01T00:00:00Z", "2025-02-01T00:00:01Z")}},
            "1003",
            "31 days",
        ),
        (
            {"filter": {"createdAt": _range("2025-01-01T00:00:00.000Z", "2025-01-02T00:00:00Z")}},
            "1003",
            "milliseconds",
        ),
        ({"filter": WEEK | {"activityTypeIds": [37]}}, "1003", "Delete Lead"),
        ({"filter": WEEK | {"activityTypeIds": [999]}}, "1003", "999"),
        ({"filter": WEEK | {"activityTypeIds": "1"}}, "1003", "activityTypeIds"),
        ({"filter": WEEK | {"primaryAttributeValueIds": [1001]}}, "1003", "requires activityType"),
        (
            {
                "filter": WEEK
                | {"activityTypeIds": [24], "primaryAttributeValues": ["x"]}
                | {"primaryAttributeValueIds": [1001]}
            },
            "1003",
            "together",
        ),
        (
            {
                "filter": WEEK
                | {"activityTypeIds": [24], "primaryAttributeValueIds": list(range(51))}
            },
            "1003",
            "at most 50",
        ),
        (
            {"filter": WEEK | {"activityTypeIds": [2, 24], "primaryAttributeValueIds": [1]}},
            "1003",
            "asset group",
        ),
        (
            {"filter": WEEK | {"activityTypeIds": [1], "primaryAttributeValueIds": [1]}},
            "1003",
            "asset group",
        ),
        ({"filter": WEEK | {"staticListId": 1001}}, "1003", "staticListId"),
        ({"fields": ["marketoGUID", "email"], "filter": WEEK}, "1003", "email"),
        ({"fields": [], "filter": WEEK}, "1003", "fields"),
        ({"filter": WEEK, "format": "XLS"}, "1003", "format"),
        ({"filter": WEEK, "columnHeaderNames": {"actionResult": "R"}}, "1003", "actionResult"),
    ],
)
def test_create_errors(shared_sim, body, code, needle):
    api = Api(shared_sim, base=ACTIVITIES)
    got, message = error(api.create_body(body))
    assert got == code
    assert needle.lower() in message.lower(), message


def test_content_type_and_bad_json(shared_sim):
    api = Api(shared_sim, base=ACTIVITIES)
    r = api.post(f"{ACTIVITIES}/create.json", content=b"{}", headers={"Content-Type": "text/plain"})
    assert error(r) == ("612", "Invalid Content Type")
    r = api.post(
        f"{ACTIVITIES}/create.json", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert error(r) == ("609", "Invalid JSON")


def test_one_queue_across_job_types(simulator_factory):
    sim = simulator_factory(rows_per_second=1)  # jobs stay Processing
    leads = Api(sim)
    acts = Api(sim, base=ACTIVITIES)
    members = Api(sim, base=PROGRAM_MEMBERS)
    pm_body = {"fields": ["leadId", "statusName"], "filter": {"programId": 3001}}
    ids = [
        (leads, leads.create_id()),
        (acts, acts.create_body_id({"filter": WEEK})),
        (members, members.create_body_id(pm_body)),
        (acts, acts.create_body_id({"filter": WEEK})),
    ]
    sim.add_foreign_jobs(6, "Queued", 300, type="activities")
    for api, eid in ids:
        assert api.enqueue(eid)["success"]
    extra = acts.create_body_id({"filter": WEEK})
    assert error(acts.enqueue(extra)) == ("1029", "Too many jobs (10) in queue")
    extra_pm = members.create_body_id(pm_body)
    assert error(members.enqueue(extra_pm)) == ("1029", "Too many jobs (10) in queue")
    for _ in range(3):
        sim.tick()
    statuses = [sim_job(sim, eid)["status"] for _, eid in ids]
    assert statuses.count("Processing") == 2
    # the record: every job of every type, with its status changes
    record = sim.job_record()
    assert {j["type"] for j in record["jobs"]} == {"leads", "activities", "program_members"}
    assert _max_processing(record["jobs"]) == 2
    # the foreign jobs finish; ours get their turn, never more than 2 at once
    sim.clear_foreign_jobs()
    sim.configure(rows_per_second=0)
    deadline = time.monotonic() + 20
    while any(sim_job(sim, e)["status"] != "Completed" for _, e in ids):
        assert time.monotonic() < deadline
        sim.tick()
        time.sleep(0.05)
    assert _max_processing(sim.job_record()["jobs"]) <= 2


def _max_processing(jobs: list[dict]) -> int:
    """Most jobs Processing at once, replaying every transition in order."""
    events = sorted((t["seq"], t["status"], j["exportId"]) for j in jobs for t in j["transitions"])
    now: set[str] = set()
    most = 0
    for _, status, eid in events:
        if status == "Processing":
            now.add(eid)
        else:
            now.discard(eid)
        most = max(most, len(now))
    return most


def test_one_daily_quota_across_job_types(simulator_factory):
    sim = simulator_factory(quota_mb=0.05)  # 52 KB; a week of activities is more
    acts = Api(sim, base=ACTIVITIES)
    leads = Api(sim)
    members = Api(sim, base=PROGRAM_MEMBERS)
    spare = leads.create_id()
    job, _ = acts.run(acts.create_body_id({"filter": WEEK}))
    assert job["fileSize"] > 0.05 * 1024 * 1024
    st = sim.state()
    assert st["quota_used_bytes"] == job["fileSize"]
    msg = ("1029", "Export daily quota 0.05MB exceeded.")
    assert error(leads.create()) == msg
    assert error(leads.enqueue(spare)) == msg
    pm = {"fields": ["leadId"], "filter": {"programId": 3001}}
    assert error(members.create_body(pm)) == msg
    assert error(acts.create_body({"filter": WEEK})) == msg
    sim.advance(_epoch(st["quota_resets_at"]) - st["now_epoch"] + 5)  # midnight Chicago
    # another tool's program member export spends the same quota
    sim.add_foreign_jobs(1, "Processing", 1, type="program_members", spend_bytes=60_000)
    sim.advance(2)
    assert sim.state()["quota_used_bytes"] == 60_000
    for api in (leads, acts, members):
        api.token = sim.token()
    assert error(leads.enqueue(spare)) == msg
    sim.advance(86400)
    for api in (leads, acts, members):
        api.token = sim.token()
    assert leads.enqueue(spare)["success"]
    assert members.create_body(pm)["success"]


def test_generation_is_deterministic(shared_sim, simulator_factory):
    a = shared_sim
    b = simulator_factory(status_interval=0.1)  # a second start, same seed
    sums = []
    for sim in (a, b):
        api = Api(sim, base=ACTIVITIES)
        job, _ = api.run(api.create_body_id({"filter": WEEK, "fields": [*DEFAULT, "actionResult"]}))
        sums.append(job["fileChecksum"])
        assert sim.truth_activities(START, END, ids=True)["guids"]
    assert sums[0] == sums[1]
    assert (
        a.truth_activities(START, END, ids=True)["guids"]
        == b.truth_activities(START, END, ids=True)["guids"]
    )
    c = simulator_factory(status_interval=0.1, seed=8)
    assert c.truth_activities(START, END)["count"] != a.truth_activities(START, END)["count"]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_activities_are_generated_lazily(simulator_factory):
    """1M leads x 8 activities: a day's export costs that day, not the whole history."""
    sim = simulator_factory(leads=1_000_000, status_interval=0.1, activities_per_lead=8)
    day = {"createdAt": {"startAt": "2025-04-01T00:00:00Z", "endAt": "2025-04-01T23:59:59Z"}}
    api = Api(sim, base=ACTIVITIES)
    t0 = time.monotonic()
    job, _body = api.run(api.create_body_id({"filter": day}), timeout=120)
    assert time.monotonic() - t0 < 90
    # ~8M activities over ~6 months: a day holds tens of thousands
    assert 20_000 < job["numberOfRecords"] < 200_000
    truth = sim.truth_activities("2025-04-01T00:00:00Z", "2025-04-01T23:59:59Z")
    assert truth["count"] == job["numberOfRecords"]
    assert _rss_mb(sim.pid) < 300  # measured ~85 MB; all 8M activities would be GBs
