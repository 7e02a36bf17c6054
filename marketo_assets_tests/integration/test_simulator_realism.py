"""Simulator behaviours other Marketo clients rely on: random export ids, 612 on a non-JSON
POST, `stats/usage.json`, `activities/types.json`, updatedAt never past the clock."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from marketo_assets_tests.support.simulator import JAN, Api, error, parse

CREATE = "/bulk/v1/leads/export/create.json"
CHICAGO = ZoneInfo("America/Chicago")
BODY = {"fields": ["id", "email"], "format": "CSV", "filter": JAN}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_export_ids_are_random_per_start_and_the_data_stays_seeded(simulator_factory):
    """A restarted simulator (same seed) must not hand out ids a persistent ledger holds."""
    runs = []
    for _ in range(2):
        sim = simulator_factory(seed=11)
        api = Api(sim)
        ids = [api.create_id() for _ in range(3)]
        job, body = api.export(fields=["id", "email", "createdAt", "updatedAt"])
        runs.append(([*ids, job["exportId"]], body))
    assert not set(runs[0][0]) & set(runs[1][0])
    assert len(set(runs[0][0])) == 4
    assert runs[0][1] == runs[1][1]  # same leads, same values


def test_post_without_json_content_type_answers_612(simulator):
    api = Api(simulator)
    raw = json.dumps(BODY).encode()
    for headers in (
        {},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ):
        r = api.post(CREATE, content=raw, headers=headers)
        assert error(r) == ("612", "Invalid Content Type"), headers
    assert simulator.state()["jobs"] == []  # nothing was created
    ok = api.post(CREATE, content=raw, headers={"Content-Type": "application/json; charset=UTF-8"})
    assert ok["success"], ok
    eid = ok["result"][0]["exportId"]
    # enqueue and cancel take no body: no Content-Type is fine, a non-JSON one is not
    path = f"/bulk/v1/leads/export/{eid}"
    assert error(api.post(f"{path}/enqueue.json", headers={"Content-Type": "text/plain"}))[0] == (
        "612"
    )
    assert api.enqueue(eid)["success"]
    assert error(api.post(f"{path}/cancel.json", headers={"Content-Type": "text/xml"}))[0] == "612"
    assert api.cancel(eid)["result"][0]["status"] == "Cancelled"


def test_daily_usage_counts_the_calls_made_today(simulator):
    simulator.add_client("other-client", "other-secret")
    api, other = Api(simulator), Api(simulator, "other-client", "other-secret")
    for _ in range(3):
        assert api.get("/rest/v1/leads/describe2.json")["success"]
    assert other.get("/rest/v1/lists.json")["success"]
    body = api.get("/rest/v1/stats/usage.json")
    assert body["success"], body
    (day,) = body["result"]
    marketo_calls = simulator.state()["requests"]["marketo"]
    assert day["total"] == marketo_calls == 5  # this call counts too; identity calls do not
    counts = {u["userId"].split("@")[0]: u["count"] for u in day["users"]}
    assert counts == {"demo-client": 4, "other-client": 1}
    today = datetime.fromtimestamp(simulator.state()["now_epoch"], CHICAGO).date()
    assert day["date"] == f"{today.isoformat()}T00:00:00Z"  # Marketo's day (America/Chicago)


def test_activity_types_catalog(simulator):
    api = Api(simulator)
    body = api.get("/rest/v1/activities/types.json")
    assert body["success"], body
    types = {t["id"]: t for t in body["result"]}
    assert types[1]["name"] == "Visit Webpage"
    assert types[1]["primaryAttribute"] == {
        "name": "Webpage ID",
        "apiName": "webpageId",
        "dataType": "integer",
    }
    assert types[32]["name"] == "Merge Leads" and types[37]["name"] == "Delete Lead"
    assert types[13]["name"] == "Change Data Value"
    for t in body["result"]:
        assert t["attributes"], t["name"]
        for attr in [t["primaryAttribute"], *t["attributes"]]:
            assert attr["name"] and attr["dataType"] in {
                "integer",
                "string",
                "text",
                "boolean",
                "date",
                "datetime",
                "email",
            }
    # unknown paths still answer 610
    assert error(api.get("/rest/v1/activities/nope.json"))[0] == "610"


def test_updated_at_is_never_after_the_simulated_clock(simulator_factory):
    """The clock inside the data set: leads created in the last 60 days must not get a future
    updatedAt (an updatedAt-filter client would miss them)."""
    now = "2025-06-20T12:00:00Z"
    sim = simulator_factory(leads=3000, extra_args=["--now", now])
    clock = _epoch(now)
    api = Api(sim)
    rows = []
    for start, end in (("2025-05-01", "2025-05-31"), ("2025-06-01", "2025-06-30")):
        window = {"createdAt": {"startAt": f"{start}T00:00:00Z", "endAt": f"{end}T23:59:59Z"}}
        _, body = api.export(window, ["id", "createdAt", "updatedAt"])
        rows += parse(body)[1:]
    assert len(rows) > 800
    recent = 0
    for lead_id, created, updated in rows:
        c, u = _epoch(created), _epoch(updated)
        if c <= clock:
            assert c <= u <= clock, (lead_id, created, updated)
            recent += u > clock - 86400
        else:  # created after the clock (the data set runs on): not updated since
            assert u == c, (lead_id, created, updated)
    assert recent > 0
    sample = sim.lead(int(rows[len(rows) // 2][0]))
    assert _epoch(sample["updatedAt"]) <= max(clock, _epoch(sample["createdAt"]))
    # the leads updated in the last day are found by an updatedAt filter
    last_day = {"updatedAt": {"startAt": "2025-06-19T12:00:00Z", "endAt": now}}
    _, body = api.export(last_day, ["id"])
    assert len(parse(body)[1:]) == sim.truth(last_day)["count"] >= recent
    for lst in api.get("/rest/v1/lists.json")["result"]:
        assert _epoch(lst["updatedAt"]) <= clock
