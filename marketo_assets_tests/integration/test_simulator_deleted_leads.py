"""Simulator: deleted leads (paging token, paged deletedleads.json) and their truth."""

from __future__ import annotations

from marketo_assets.simulator.process import SimulatorHandle
from marketo_assets_tests.support.simulator import Api, error


def _all_pages(api: Api, since: str, batch: int) -> tuple[list[dict], int]:
    tok = api.get("/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": since})
    assert tok["success"], tok
    token, out, pages = tok["nextPageToken"], [], 0
    while True:
        page = api.get(
            "/rest/v1/activities/deletedleads.json",
            params={"nextPageToken": token, "batchSize": batch},
        )
        assert page["success"], page
        pages += 1
        out += page.get("result", [])
        assert len(page.get("result", [])) <= batch
        token = page["nextPageToken"]
        if not page["moreResult"]:
            return out, pages


def test_deleted_leads_are_paged_and_match_truth(simulator_factory):
    sim: SimulatorHandle = simulator_factory(extra_args=["--deleted-lead-rate", "0.02"])
    api = Api(sim)
    rows, pages = _all_pages(api, "2025-01-01", 7)
    truth = sim.truth_deleted_leads()
    assert truth["count"] == len(rows) > 20 and pages > 3
    assert [r["leadId"] for r in rows] == truth["leadIds"]
    assert [r["activityDate"] for r in rows] == truth["deletedAt"]
    assert rows == sorted(rows, key=lambda r: (r["activityDate"], r["leadId"]))
    for r in rows:
        assert r["activityTypeId"] == 37 and isinstance(r["id"], int) and r["marketoGUID"]
    assert len({r["id"] for r in rows}) == len(rows)
    # since a later date: only the later deletions; the truth endpoint takes the same window
    mid = truth["deletedAt"][len(rows) // 2]
    later, _ = _all_pages(api, mid, 300)
    window = sim.truth_deleted_leads(start=mid)
    assert [r["leadId"] for r in later] == window["leadIds"]
    assert 0 < len(later) < len(rows)
    # past the last one: an empty page without `result`, the token still given
    last, _ = _all_pages(api, "2030-01-01T00:00:00Z", 300)
    assert last == []
    # deleted leads do nothing after their deletion
    lead, at = truth["leadIds"][0], truth["deletedAt"][0]
    acts = sim.truth_activities(at, "2030-01-01T00:00:00Z", ids=False)
    assert acts["count"] > 0
    assert lead not in _leads_active_after(sim, at)


def _leads_active_after(sim: SimulatorHandle, at: str) -> set[int]:
    api = Api(sim, base="/bulk/v1/activities/export")
    end = at[:8] + "28T23:59:59Z" if at[8:10] < "28" else at
    flt = {"createdAt": {"startAt": at, "endAt": end}}
    _, body = api.run(api.create_body_id({"fields": ["leadId"], "filter": flt}))
    return {int(x) for x in body.decode().split("\n")[1:] if x}


def test_paging_errors(simulator):
    api = Api(simulator)
    bad = api.get("/rest/v1/activities/pagingtoken.json")
    assert error(bad)[0] == "1003"
    bad = api.get("/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": "yesterday"})
    assert error(bad)[0] == "1003"
    assert error(api.get("/rest/v1/activities/deletedleads.json"))[0] == "1003"
    bad = api.get("/rest/v1/activities/deletedleads.json", params={"nextPageToken": "###"})
    assert error(bad)[0] == "1003"
    tok = api.get("/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": "2025-01-01"})
    page = api.get(
        "/rest/v1/activities/deletedleads.json",
        params={"nextPageToken": tok["nextPageToken"], "batchSize": 1000},
    )
    assert page["success"] and len(page.get("result", [])) <= 300


def test_merges_truth_is_consistent(simulator):
    merges = simulator.truth_merges()["merges"]
    assert merges
    deleted = set(simulator.truth_deleted_leads()["leadIds"])
    merged_away = [m for x in merges for m in x["merged"]]
    assert len(set(merged_away)) == len(merged_away)
    for m in merges:
        assert m["winner"] not in merged_away and m["winner"] not in m["merged"]
        assert all(x not in deleted for x in m["merged"])
        assert all(x > m["winner"] for x in m["merged"])  # merged into an older lead
