"""Simulator: export job lifecycle, limits, quota, downloads, expiry, ownership, validation."""

from __future__ import annotations

import itertools
import time
from datetime import datetime

import pytest

from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.simulator import JAN, Api, error, sha, sim_job, wait_status


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_lifecycle_visible_at_status_interval(simulator):
    api = Api(simulator)
    created = api.create()
    assert created["success"] and "errors" not in created and "warnings" not in created
    job = created["result"][0]
    assert set(job) == {"exportId", "format", "status", "createdAt"}
    assert job["status"] == "Created" and job["format"] == "CSV"
    eid = job["exportId"]
    assert "queuedAt" not in api.job(eid)
    queued = api.enqueue(eid)["result"][0]
    assert queued["status"] == "Queued" and "queuedAt" in queued and "startedAt" not in queued
    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st = sim_job(simulator, eid)["status"]
        if not seen or seen[-1][1] != st:
            seen.append((time.monotonic(), st))
        if st == "Completed":
            break
        time.sleep(0.02)
    statuses = [s for _, s in seen]
    assert statuses[-1] == "Completed"
    assert "Processing" in statuses
    # each change waits for the next status tick (0.2 s)
    for (t1, _), (t2, _) in itertools.pairwise(seen[1:]):
        assert t2 - t1 >= 0.12
    done = api.job(eid)
    truth = simulator.truth(JAN)["count"]
    assert done["numberOfRecords"] == truth > 0
    assert done["fileChecksum"].startswith("sha256:") and len(done["fileChecksum"]) == 71
    for key in ("queuedAt", "startedAt", "finishedAt"):
        assert key in done
    assert "errorMsg" not in done
    body = api.file(eid).content
    assert len(body) == done["fileSize"] and sha(body) == done["fileChecksum"]


def test_status_changes_wait_for_the_next_tick(simulator):
    api = Api(simulator)
    simulator.configure(status_interval=30)
    time.sleep(0.3)  # let the ticker pick up the long interval
    eid = api.create_id()
    api.enqueue(eid)
    time.sleep(0.6)
    assert api.job(eid)["status"] == "Queued"
    simulator.tick()
    assert api.job(eid)["status"] == "Processing"
    time.sleep(0.3)
    assert api.job(eid)["status"] == "Processing"
    simulator.tick()
    assert api.job(eid)["status"] == "Completed"


def test_two_processing_and_ten_in_queue(simulator_factory):
    sim = simulator_factory(rows_per_second=10)  # ~37 s per job: they stay Processing
    api = Api(sim)
    ids = [api.create_id() for _ in range(11)]
    for eid in ids[:10]:
        assert api.enqueue(eid)["success"]
    assert error(api.enqueue(ids[10])) == ("1029", "Too many jobs (10) in queue")
    time.sleep(0.6)
    statuses = [sim_job(sim, e)["status"] for e in ids[:10]]
    assert statuses.count("Processing") == 2 and statuses.count("Queued") == 8
    assert sim.state()["max_processing_seen"] == 2
    assert error(api.enqueue(ids[0])) == ("1029", "Job already queued")
    assert error(api.enqueue(ids[5])) == ("1029", "Job already queued")
    # cancelling frees a slot, and the next queued job starts
    assert api.cancel(ids[0])["result"][0]["status"] == "Cancelled"
    assert api.enqueue(ids[10])["success"]
    time.sleep(0.6)
    statuses = [sim_job(sim, e)["status"] for e in ids]
    assert statuses.count("Processing") == 2
    assert sim.state()["max_processing_seen"] == 2
    assert ids[0] in sim.state()["cancelled"]


def test_daily_quota_on_create_and_enqueue_then_reset(simulator_factory):
    sim = simulator_factory(quota_mb=0.01)  # 10 KB; one January file is bigger
    api = Api(sim)
    spare = api.create_id()
    job, _ = api.export()
    assert job["fileSize"] > 10 * 1024
    st = sim.state()
    assert st["quota_used_bytes"] == job["fileSize"] and st["quota_bytes"] == 10485
    assert error(api.create()) == ("1029", "Export daily quota 0.01MB exceeded.")
    assert error(api.enqueue(spare)) == ("1029", "Export daily quota 0.01MB exceeded.")
    # resets at midnight America/Chicago on the simulated clock
    reset = _epoch(st["quota_resets_at"])
    local = datetime.fromtimestamp(reset, __import__("zoneinfo").ZoneInfo("America/Chicago"))
    assert (local.hour, local.minute) == (0, 0)
    sim.advance(reset - st["now_epoch"] - 5)
    api.token = sim.token()
    assert error(api.create())[0] == "1029"
    sim.advance(10)
    api.token = sim.token()
    assert api.enqueue(spare)["success"]
    assert sim.state()["quota_used_bytes"] == 0


def test_ranges_and_checksum(simulator):
    api = Api(simulator)
    job, body = api.export()
    eid, size = job["exportId"], job["fileSize"]
    assert sha(body) == job["fileChecksum"]
    r = api.file(eid, "bytes=0-99")
    assert r.status_code == 206 and r.content == body[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{size}"
    assert r.headers["content-length"] == "100" and r.headers["accept-ranges"] == "bytes"
    r = api.file(eid, f"bytes={size - 10}-")
    assert r.status_code == 206 and r.content == body[-10:]
    assert r.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    r = api.file(eid, "bytes=0-0")
    assert r.status_code == 206 and r.content == body[:1]
    r = api.file(eid, f"bytes=100-{size * 2}")  # end past the file: clamped
    assert r.status_code == 206 and r.content == body[100:]
    r = api.file(eid, "bytes=-5")
    assert r.status_code == 206 and r.content == body[-5:]
    r = api.file(eid, f"bytes={size}-")
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    # resume: concatenated ranges give the file
    parts = [
        api.file(eid, f"bytes={a}-{min(a + 999, size - 1)}").content for a in range(0, size, 1000)
    ]
    assert sha(b"".join(parts)) == job["fileChecksum"]


def test_file_404_until_completed_and_after_7_days(simulator):
    api = Api(simulator)
    eid = api.create_id()
    r = api.file(eid)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
    assert api.file("00000000-0000-4000-8000-000000000000").status_code == 404
    api.enqueue(eid)
    wait_status(simulator, eid, {"Completed"})
    assert api.file(eid).status_code == 200
    simulator.advance(7 * 86400 - 60)
    api.token = simulator.token()
    assert api.file(eid, "bytes=0-0").status_code == 206
    simulator.advance(120)
    api.token = simulator.token()
    assert api.job(eid)["status"] == "Completed"  # status kept, file gone
    r = api.file(eid)
    assert r.status_code == 404 and "expired" in r.text
    # and the job has left the 7-day job list
    assert api.get("/bulk/v1/leads/export.json")["result"] == []


def test_jobs_visible_only_to_their_owner(simulator):
    simulator.add_client("other-client-2", "other-secret")
    mine, other = Api(simulator), Api(simulator, "other-client-2", "other-secret")
    assert mine.token != other.token
    job, _ = mine.export()
    eid = job["exportId"]
    assert error(other.status(eid))[0] == "1003"
    assert error(other.enqueue(eid))[0] == "1003"
    assert error(other.cancel(eid))[0] == "1003"
    assert other.file(eid).status_code == 404
    assert other.get("/bulk/v1/leads/export.json")["result"] == []
    assert [j["exportId"] for j in mine.get("/bulk/v1/leads/export.json")["result"]] == [eid]
    assert sim_job(simulator, eid)["owner"] == simulator.client_id


def test_cancel_from_created_queued_processing(simulator_factory):
    sim = simulator_factory(rows_per_second=10)
    api = Api(sim)
    a, b, c = api.create_id(), api.create_id(), api.create_id()
    api.enqueue(b)
    api.enqueue(c)
    wait_status(sim, c, {"Processing"})
    for eid in (a, b, c):
        r = api.cancel(eid)["result"][0]
        assert r["status"] == "Cancelled"
    assert sim.state()["cancelled"] == [a, b, c]
    assert error(api.enqueue(a))[0] == "1003"
    assert api.file(c).status_code == 404


def test_job_list_filters_and_paging(simulator):
    api = Api(simulator)
    done, _ = api.export()
    created = [api.create_id() for _ in range(4)]
    api.cancel(created[0])
    lst = api.get("/bulk/v1/leads/export.json")
    assert [j["exportId"] for j in lst["result"]] == [done["exportId"], *created]
    assert "nextPageToken" not in lst

    def ids(params):
        r = api.get("/bulk/v1/leads/export.json", params=params)
        assert r["success"], r
        return {j["exportId"] for j in r["result"]}

    assert ids({"status": "Completed"}) == {done["exportId"]}
    assert ids({"status": "completed,cancelled"}) == {done["exportId"], created[0]}
    assert ids([("status", "Created"), ("status", "CANCELED")]) == set(created)
    assert error(api.get("/bulk/v1/leads/export.json", params={"status": "bogus"}))[0] == "1003"
    seen, token = [], None
    while True:
        params = {"batchSize": 2} | ({"nextPageToken": token} if token else {})
        r = api.get("/bulk/v1/leads/export.json", params=params)
        seen += [j["exportId"] for j in r["result"]]
        token = r.get("nextPageToken")
        if not token:
            break
    assert seen == [done["exportId"], *created]


@pytest.fixture(scope="module")
def shared_sim():
    """One simulator for the read-only validation cases (keeps the suite fast)."""
    with run_simulator() as sim:
        yield sim


def _w(start: str, end: str, key: str = "createdAt") -> dict:
    return {key: {"startAt": start, "endAt": end}}


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"filter": JAN}, "1003", "fields"),
        ({"fields": [], "filter": JAN}, "1003", "fields"),
        ({"fields": ["id", "nope", "bad2"], "filter": JAN}, "1003", "nope, bad2"),
        ({"fields": ["id", "fullNameFormula"], "filter": JAN}, "1003", "formula"),
        ({"fields": ["id"]}, "1003", "filter"),
        ({"fields": ["id"], "filter": {}}, "1003", "filter"),
        ({"fields": ["id"], "filter": JAN | {"staticListId": 1001}}, "1003", "one filter"),
        ({"fields": ["id"], "filter": {"bogus": 1}}, "1003", "bogus"),
        (
            {"fields": ["id"], "filter": _w("2025-01-01T00:00:00Z", "2025-02-01T00:00:01Z")},
            "1003",
            "31 days",
        ),
        (  # Europe/Berlin's October: 31 days on the wall clock, 31 d 0 h 59 min 59 s in fact
            {
                "fields": ["id"],
                "filter": _w("2025-10-01T00:00:00+02:00", "2025-10-31T23:59:59+01:00"),
            },
            "1003",
            "31 days",
        ),
        (
            {"fields": ["id"], "filter": _w("2025-01-01T00:00:00.000Z", "2025-01-02T00:00:00Z")},
            "1003",
            "milliseconds",
        ),
        ({"fields": ["id"], "filter": _w("2025-01-01", "2025-01-02T00:00:00Z")}, "1003", "date"),
        (
            {"fields": ["id"], "filter": _w("2025-01-05T00:00:00Z", "2025-01-02T00:00:00Z")},
            "1003",
            "before",
        ),
        (
            {"fields": ["id"], "filter": {"createdAt": {"startAt": "2025-01-01T00:00:00Z"}}},
            "1003",
            "endAt",
        ),
        ({"fields": ["id"], "filter": {"staticListId": 999}}, "1003", "999"),
        ({"fields": ["id"], "filter": {"staticListName": "No Such List"}}, "1003", "No Such"),
        ({"fields": ["id"], "filter": {"smartListId": 1}}, "1003", "not found"),
        ({"fields": ["id"], "filter": JAN, "format": "XLS"}, "1003", "format"),
        ({"fields": ["id"], "filter": JAN, "columnHeaderNames": {"email": "E"}}, "1003", "email"),
    ],
)
def test_create_validation(shared_sim, body, code, needle):
    api = Api(shared_sim)
    got_code, message = error(api.post("/bulk/v1/leads/export/create.json", json=body))
    assert got_code == code
    assert needle.lower() in message.lower(), message


def test_validation_accepts_boundaries_and_offsets(simulator):
    api = Api(simulator)
    ok = [
        _w("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"),  # exactly 31 days
        _w("2025-01-01T00:00:00+00:00", "2025-01-31T23:59:59+00:00"),
        _w("2025-01-01T00:00:00-06:00", "2025-01-10T00:00:00+0100"),
        _w("2025-03-01T00:00:00Z", "2025-03-01T00:00:00Z", "updatedAt"),
        {"staticListName": 'VIP "Gold" Accounts'},
        {"smartListId": 5001},
    ]
    for flt in ok:
        r = api.create(flt, ["id"], format="TSV", columnHeaderNames={"id": "Lead ID"})
        assert r["success"], (flt, r)
    bad = api.post(
        "/bulk/v1/leads/export/create.json",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert error(bad)[0] == "609"


def test_disabled_filters_answer_1035(simulator_factory):
    sim = simulator_factory(
        extra_args=["--disable-filter", "updatedAt", "--disable-filter", "smartList"]
    )
    api = Api(sim)
    msg = "Unsupported filter type for target subscription"
    code, m = error(api.create(_w("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "updatedAt")))
    assert code == "1035" and m.startswith(msg)
    assert error(api.create({"smartListId": 5001}))[0] == "1035"
    assert error(api.create({"smartListName": "Churn Risk"}))[0] == "1035"
    assert api.create({"staticListId": 1001})["success"]
    sim.configure(disabled_filters=[])
    assert api.create({"smartListId": 5001})["success"]


def test_list_filters_match_truth_and_capture_membership_at_start(simulator):
    api = Api(simulator)
    simulator.configure(status_interval=0.05)  # many exports here: faster ticks
    for flt in (
        {"staticListId": 1001},
        {"staticListName": "Trade Show Leads, Berlin"},
        {"smartListName": "Churn Risk"},
        {"smartListId": 5003},
    ):
        job, body = api.export(flt, ["id"])
        ids = [int(x) for x in body.decode().split("\n")[1:-1]]
        assert ids == simulator.truth(flt, ids=True)["ids"]
        assert job["numberOfRecords"] == len(ids)
    job, _ = api.export({"staticListId": 1006}, ["id"])
    assert job["numberOfRecords"] == 0
    # membership change moves list updatedAt, and is seen by jobs that start afterwards
    before = {x["id"]: x for x in api.get("/rest/v1/lists.json")["result"]}[1006]
    simulator.set_list_members("static", 1006, add=[5, 6, 7])
    after = {x["id"]: x for x in api.get("/rest/v1/lists.json")["result"]}[1006]
    assert after["updatedAt"] > before["updatedAt"]
    simulator.configure(status_interval=30)
    time.sleep(0.3)
    eid = api.create_id({"staticListId": 1006}, ["id"])
    api.enqueue(eid)
    simulator.tick()
    assert sim_job(simulator, eid)["status"] == "Processing"
    simulator.set_list_members("static", 1006, add=[8], remove=[5])  # after the start
    time.sleep(0.3)
    simulator.tick()
    assert api.file(eid).content.decode().split("\n")[1:-1] == ["5", "6", "7"]
    eid2 = api.create_id({"staticListId": 1006}, ["id"])
    api.enqueue(eid2)
    simulator.tick()
    time.sleep(0.3)
    simulator.tick()
    assert api.file(eid2).content.decode().split("\n")[1:-1] == ["6", "7", "8"]


def test_updated_at_filter_follows_control_api_changes(simulator):
    api = Api(simulator)
    window = _w("2025-02-01T00:00:00Z", "2025-02-28T23:59:59Z", "updatedAt")
    job, body = api.export(window, ["id", "updatedAt"])
    truth = simulator.truth(window, ids=True)
    assert job["numberOfRecords"] == truth["count"] > 0
    lead = truth["ids"][0]
    now = simulator.state()["now"]
    simulator.update_lead(lead, {"firstName": "Changed, Name", "npsScore__c": 10})
    assert lead not in simulator.truth(window, ids=True)["ids"]
    recent = _w(now[:10] + "T00:00:00Z", now[:10] + "T23:59:59Z", "updatedAt")
    job, body = api.export(recent, ["id", "firstName", "npsScore__c", "updatedAt"])
    assert body.decode().split("\n")[1].startswith(f'{lead},"Changed, Name",10,{now[:10]}')
    assert simulator.lead(lead)["firstName"] == "Changed, Name"


def test_now_option_sets_the_simulated_clock(simulator_factory):
    sim = simulator_factory(extra_args=["--now", "2025-08-01T12:00:00Z"])
    assert sim.state()["now"].startswith("2025-08-01T12:00")
    api = Api(sim)
    job, _ = api.export()
    assert job["createdAt"].startswith("2025-08-01T12:0")
    sim.advance(31 * 86400)  # status is kept 30 days
    api.token = sim.token()
    assert error(api.status(job["exportId"]))[0] == "1003"


def test_created_and_deleted_lists(simulator):
    api = Api(simulator)
    new = simulator.create_list("static", "Made By Test")
    simulator.set_list_members("static", new["id"], add=[3, 1, 2])
    names = [x["name"] for x in api.get("/rest/v1/lists.json")["result"]]
    assert "Made By Test" in names
    _, body = api.export({"staticListName": "Made By Test"}, ["id"])
    assert body.decode().split("\n")[1:-1] == ["1", "2", "3"]
    smart = simulator.create_list("smart", "Smart By Test")
    assert smart["id"] not in (5001, 5002, 5003, 5004)
    got = api.get("/rest/asset/v1/smartLists.json", params={"maxReturn": 200})["result"]
    assert "Smart By Test" in [x["name"] for x in got]
    # deleted before the job starts: the job fails; afterwards create rejects the name
    simulator.configure(status_interval=30)
    time.sleep(0.3)
    eid = api.create_id({"staticListId": new["id"]}, ["id"])
    api.enqueue(eid)
    simulator.delete_list("static", new["id"])
    simulator.tick()
    time.sleep(0.2)
    simulator.tick()
    failed = api.job(eid)
    assert failed["status"] == "Failed" and "deleted" in failed["errorMsg"]
    assert error(api.create({"staticListName": "Made By Test"}))[0] == "1003"


def test_files_live_in_a_private_dir_removed_on_exit():
    import os
    import stat

    from marketo_assets.simulator.process import run_simulator

    with run_simulator() as sim:
        d = sim.state()["files_dir"]
        Api(sim).export()
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert os.listdir(d)
    assert not os.path.exists(d)
