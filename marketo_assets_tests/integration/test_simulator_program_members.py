"""Simulator: programs.json, the program member describe and bulk program member export."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketo_assets.simulator.process import SimulatorHandle, run_simulator
from marketo_assets_tests.support.simulator import PROGRAM_MEMBERS, Api, error, parse, sha, sim_job

FIELDS = ["leadId", "statusName", "isExhausted", "nurtureCadence", "updatedAt", "email"]


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimulatorHandle]:
    with run_simulator(leads=2000, status_interval=0.1, extra_args=["--programs", "12"]) as sim:
        sim.configure(rate_limit=100_000)
        yield sim


def _rows(body: bytes) -> list[dict[str, str]]:
    header, *rows = parse(body)
    return [dict(zip(header, r, strict=True)) for r in rows]


def test_programs_are_paged_like_the_asset_api(shared_sim):
    api = Api(shared_sim)
    first = api.get("/rest/asset/v1/programs.json", params={"maxReturn": 5})
    assert first["success"] and len(first["result"]) == 5
    seen = []
    offset = 0
    while True:
        r = api.get("/rest/asset/v1/programs.json", params={"maxReturn": 5, "offset": offset})
        if "result" not in r:
            assert r["warnings"] == ["No assets found for the given search criteria."]
            break
        seen += r["result"]
        offset += 5
    assert [p["id"] for p in seen] == list(range(3001, 3013))
    p = seen[0]
    assert {"id", "name", "type", "channel", "createdAt", "updatedAt", "folder"} <= set(p)
    assert {x["type"] for x in seen} >= {"default", "webinar", "event", "nurture"}
    big = api.get("/rest/asset/v1/programs.json", params={"maxReturn": 201})
    assert error(big)[0] == "1003"
    one = api.get(
        "/rest/asset/v1/programs.json", params={"filterType": "id", "filterValues": "3004"}
    )
    assert [x["id"] for x in one["result"]] == [3004]


def test_describe_lists_the_member_fields(shared_sim):
    r = Api(shared_sim).get("/rest/v1/programs/members/describe.json")
    assert r["success"]
    desc = r["result"][0]
    assert desc["name"] == "API Program Member"
    names = [f["name"] for f in desc["fields"]]
    assert {"programId", "leadId", "statusName", "membershipDate", "updatedAt"} <= set(names)
    assert all({"name", "displayName", "dataType"} <= set(f) for f in desc["fields"])


def test_export_one_program_matches_truth(shared_sim):
    api = Api(shared_sim, base=PROGRAM_MEMBERS)
    eid = api.create_body_id({"fields": FIELDS, "filter": {"programId": 3004}})
    job, body = api.run(eid)
    assert len(body) == job["fileSize"] and sha(body) == job["fileChecksum"]
    header, *rows = parse(body)
    assert header == FIELDS  # programId (one program): no extra column
    truth = shared_sim.truth_program_members([3004], ids=True)
    assert job["numberOfRecords"] == len(rows) == truth["count"] > 50
    assert [int(r[0]) for r in rows] == [lead for _, lead in truth["rows"]]
    nurture = {r[3] for r in rows}
    assert nurture == {"normal", "paused"}  # 3004 is a nurture program
    assert sim_job(shared_sim, eid)["type"] == "program_members"
    listed = api.get(f"{PROGRAM_MEMBERS}.json")["result"]
    assert eid in [j["exportId"] for j in listed]


def test_program_ids_add_a_program_id_column(shared_sim):
    api = Api(shared_sim, base=PROGRAM_MEMBERS)
    ids = [3001, 3002, 3010]  # 3010 has no members
    _, body = api.run(api.create_body_id({"fields": ["leadId"], "filter": {"programIds": ids}}))
    rows = _rows(body)
    assert list(rows[0]) == ["programId", "leadId"]
    truth = shared_sim.truth_program_members(ids, ids=True)
    assert [[int(r["programId"]), int(r["leadId"])] for r in rows] == truth["rows"]
    assert {r["programId"] for r in rows} == {"3001", "3002"}


def test_filters_are_anded(shared_sim):
    api = Api(shared_sim, base=PROGRAM_MEMBERS)
    flt = {
        "programId": 3004,
        "isExhausted": False,
        "nurtureCadence": "normal",
        "statusNames": ["Engaged"],
    }
    _, body = api.run(api.create_body_id({"fields": FIELDS, "filter": flt}))
    rows = _rows(body)
    assert rows
    for r in rows:
        assert (r["isExhausted"], r["nurtureCadence"], r["statusName"]) == (
            "false",
            "normal",
            "Engaged",
        )
    everyone = shared_sim.truth_program_members([3004])["count"]
    assert len(rows) < everyone
    window = {"startAt": "2025-03-01T00:00:00Z", "endAt": "2025-03-31T23:59:59Z"}
    _, body = api.run(
        api.create_body_id({"fields": FIELDS, "filter": {"programId": 3001, "updatedAt": window}})
    )
    rows = _rows(body)
    assert rows and all(r["updatedAt"][:7] == "2025-03" for r in rows)


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"filter": {"programId": 3001}}, "1003", "fields"),
        ({"fields": ["leadId", "bogus"], "filter": {"programId": 3001}}, "1003", "bogus"),
        ({"fields": ["leadId"]}, "1003", "programId"),
        ({"fields": ["leadId"], "filter": {}}, "1003", "programId"),
        (
            {"fields": ["leadId"], "filter": {"programId": 3001, "programIds": [3002]}},
            "1003",
            "together",
        ),
        ({"fields": ["leadId"], "filter": {"programIds": list(range(3001, 3012))}}, "1003", "10"),
        ({"fields": ["leadId"], "filter": {"programId": 9999}}, "1003", "9999"),
        (
            {"fields": ["leadId"], "filter": {"programId": 3001, "isExhausted": "yes"}},
            "1003",
            "isExhausted",
        ),
        (
            {"fields": ["leadId"], "filter": {"programId": 3001, "nurtureCadence": "fast"}},
            "1003",
            "nurtureCadence",
        ),
        (
            {"fields": ["leadId"], "filter": {"programId": 3001, "statusNames": ["Nope"]}},
            "1003",
            "statusNames",
        ),
        (
            {
                "fields": ["leadId"],
                "filter": {
                    "programId": 3001,
                    "updatedAt": {
                        "startAt": "2025-01-01T00:00:00Z",
                        "endAt": "2025-03-01T00:00:00Z",
                    },
                },
            },
            "1003",
            "31 days",
        ),
        (
            {"fields": ["leadId"], "filter": {"programId": 3001, "staticListId": 1001}},
            "1003",
            "staticListId",
        ),
    ],
)
def test_create_errors(shared_sim, body, code, needle):
    got, message = error(Api(shared_sim, base=PROGRAM_MEMBERS).create_body(body))
    assert got == code
    assert needle.lower() in message.lower(), message


def test_switched_off_filters_answer_1035(simulator_factory):
    sim = simulator_factory(
        extra_args=["--disable-filter", "updatedAt", "--disable-filter", "statusNames"]
    )
    api = Api(sim, base=PROGRAM_MEMBERS)
    window = {"startAt": "2025-03-01T00:00:00Z", "endAt": "2025-03-02T00:00:00Z"}
    for extra, name in (
        ({"updatedAt": window}, "updatedAt"),
        ({"statusNames": ["Member"]}, "statusNames"),
    ):
        r = api.create_body({"fields": ["leadId"], "filter": {"programId": 3001, **extra}})
        assert error(r) == ("1035", f"Unsupported filter type for target subscription: {name}")
    assert api.create_body(
        {"fields": ["leadId"], "filter": {"programId": 3001, "isExhausted": True}}
    )["success"]
