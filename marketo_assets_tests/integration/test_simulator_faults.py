"""Simulator: each fault profile does what it says."""

from __future__ import annotations

import itertools

import httpx

from marketo_assets_tests.support.simulator import Api, error, sha, sim_job, wait_status

DESCRIBE = "/rest/v1/leads/describe2.json"


def _completed(api: Api) -> dict:
    eid = api.create_id()
    api.enqueue(eid)
    wait_status(api.sim, eid, {"Completed", "Failed"})
    return api.job(eid)


def test_flaky_gives_5xx_and_dropped_connections(simulator):
    api = Api(simulator)
    simulator.configure(rate_limit=10_000)
    simulator.set_faults({"profiles": ["flaky"], "flaky_rate": 0.3})
    outcomes = {"ok": 0, "5xx": 0, "dropped": 0}
    for _ in range(80):
        try:
            r = api.http.get(DESCRIBE, headers=api.headers)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            outcomes["dropped"] += 1
            continue
        if r.status_code >= 500:
            outcomes["5xx"] += 1
        else:
            assert r.json()["success"]
            outcomes["ok"] += 1
    assert outcomes["ok"] > 30 and outcomes["5xx"] > 3 and outcomes["dropped"] > 1, outcomes
    simulator.clear_faults()
    for _ in range(20):
        assert api.get(DESCRIBE)["success"]


def test_download_resets_mid_body_then_succeeds(simulator):
    api = Api(simulator)
    job = _completed(api)
    simulator.set_faults("download-resets")
    eid, size = job["exportId"], job["fileSize"]
    got = b""
    resets = 0
    for _ in range(10):
        h = dict(api.headers)
        if got:
            h["Range"] = f"bytes={len(got)}-{size - 1}"
        try:
            with api.http.stream("GET", f"/bulk/v1/leads/export/{eid}/file.json", headers=h) as r:
                assert r.status_code == (206 if "Range" in h else 200)
                for chunk in r.iter_bytes():
                    got += chunk
            break
        except (httpx.RemoteProtocolError, httpx.ReadError):
            resets += 1
    assert resets == 3
    assert len(got) == size and sha(got) == job["fileChecksum"]
    assert simulator.state()["faults"]["injected"]["download_reset"] == 3
    # a tiny probe is never cut
    assert api.file(eid, "bytes=0-0").status_code == 206


def test_rate_bursts_answer_606_and_615(simulator):
    api = Api(simulator)
    simulator.configure(rate_limit=10_000)
    simulator.set_faults({"profiles": ["rate-bursts"], "burst_rate": 0.2})
    codes = []
    for _ in range(80):
        r = api.get(DESCRIBE)
        codes.append("ok" if r["success"] else r["errors"][0]["code"])
    assert "606" in codes and "615" in codes and "ok" in codes
    # bursts: failures come in runs
    runs = sum(1 for a, b in itertools.pairwise(codes) if a == b != "ok")
    assert runs >= 3


def test_token_revoke_forces_reauthentication(simulator):
    api = Api(simulator)
    simulator.set_faults({"profiles": ["token-revoke"], "revoke_rate": 0.2})
    seen = set()
    for _ in range(60):
        r = api.get(DESCRIBE)
        if not r["success"]:
            code = r["errors"][0]["code"]
            assert code in ("601", "602")
            seen.add(code)
            old = api.token
            api.token = simulator.token()
            assert api.token != old
    assert seen == {"601", "602"}


def test_job_fail_configurable_times(simulator):
    api = Api(simulator)
    simulator.set_faults({"profiles": ["job-fail"], "job_fail_times": 2})
    for _ in range(2):
        job = _completed(api)
        assert job["status"] == "Failed" and job["errorMsg"] and "finishedAt" in job
        assert "fileSize" not in job and api.file(job["exportId"]).status_code == 404
    job = _completed(api)
    assert job["status"] == "Completed"
    # another distinct request fails on its own count
    eid = api.create_id(fields=["id"])
    api.enqueue(eid)
    assert wait_status(simulator, eid, {"Completed", "Failed"})["status"] == "Failed"
    assert simulator.state()["quota_used_bytes"] == job["fileSize"]


def test_file_gone_once_per_distinct_request(simulator):
    api = Api(simulator)
    simulator.set_faults("file-gone")
    first = _completed(api)
    assert first["status"] == "Completed"
    assert api.file(first["exportId"]).status_code == 404
    assert api.file(first["exportId"], "bytes=0-0").status_code == 404
    again = _completed(api)  # the re-created job works
    r = api.file(again["exportId"])
    assert r.status_code == 200 and sha(r.content) == again["fileChecksum"]


def test_file_gone_from_the_command_line(simulator_factory):
    sim = simulator_factory(faults="file-gone")
    api = Api(sim)
    assert sim.state()["faults"]["active"] == ["file-gone"]
    assert api.file(_completed(api)["exportId"]).status_code == 404


def test_busy_queue_fills_the_queue_for_a_while(simulator):
    api = Api(simulator)
    simulator.set_faults({"profiles": ["busy-queue"], "busy_seconds": 600})
    eid = api.create_id()
    assert error(api.enqueue(eid)) == ("1029", "Too many jobs (10) in queue")
    jobs = [j for j in simulator.state()["jobs"] if j["foreign"]]
    assert len(jobs) == 10 and {j["owner"] for j in jobs} == {"other-client"}
    assert api.get("/bulk/v1/leads/export.json")["result"][0]["exportId"] == eid  # own only
    simulator.advance(601)
    api.token = simulator.token()
    assert api.enqueue(eid)["success"]
    assert wait_status(simulator, eid, {"Completed"})["status"] == "Completed"


def test_foreign_jobs_take_processing_slots(simulator):
    api = Api(simulator)
    simulator.add_foreign_jobs(2, status="Processing", seconds=60)
    eid = api.create_id()
    api.enqueue(eid)
    simulator.tick()
    assert sim_job(simulator, eid)["status"] == "Queued"
    simulator.advance(61)
    assert wait_status(simulator, eid, {"Completed"})["status"] == "Completed"
    assert simulator.state()["max_processing_seen"] == 2


def test_stuck_queue_until_clock_advanced(simulator):
    api = Api(simulator)
    simulator.set_faults({"profiles": ["stuck-queue"], "stuck_seconds": 900})
    eid = api.create_id()
    api.enqueue(eid)
    for _ in range(4):
        simulator.tick()
    assert api.job(eid)["status"] == "Queued"
    simulator.advance(901)
    api.token = simulator.token()
    assert wait_status(simulator, eid, {"Completed"})["status"] == "Completed"


def test_corrupt_first_download_only(simulator):
    api = Api(simulator)
    simulator.set_faults("corrupt")
    job = _completed(api)
    first = api.file(job["exportId"]).content
    second = api.file(job["exportId"]).content
    assert len(first) == len(second) == job["fileSize"]
    assert sha(first) != job["fileChecksum"]
    assert sha(second) == job["fileChecksum"]
    assert sum(a != b for a, b in zip(first, second, strict=True)) == 3


def test_fault_profiles_can_be_combined_and_cleared(simulator):
    r = simulator.set_faults("corrupt,stuck-queue")
    assert r["active"] == ["corrupt", "stuck-queue"]
    assert simulator.clear_faults()["active"] == []
    bad = httpx.post(simulator.base_url + "/_sim/faults", json="nonsense")
    assert bad.status_code == 400


def test_faults_are_deterministic_for_a_seed(simulator_factory):
    runs = []
    for _ in range(2):
        sim = simulator_factory(seed=3)
        api = Api(sim)
        sim.configure(rate_limit=10_000)
        sim.set_faults({"profiles": ["rate-bursts"], "burst_rate": 0.2})
        runs.append(
            [
                "ok" if (r := api.get(DESCRIBE))["success"] else r["errors"][0]["code"]
                for _ in range(40)
            ]
        )
    assert runs[0] == runs[1]
