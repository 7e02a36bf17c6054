"""Simulator: identity endpoint, token handling, rate/concurrency/daily limits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from marketo_assets_tests.support.simulator import Api, error

DESCRIBE = "/rest/v1/leads/describe2.json"


def _identity(sim, method="GET", **params):
    p = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
    } | params
    if method == "GET":
        return httpx.get(sim.base_url + "/identity/oauth/token", params=p)
    return httpx.post(sim.base_url + "/identity/oauth/token", data=p)


def test_token_reused_with_remaining_life_and_bad_credentials(simulator):
    first = _identity(simulator).json()
    assert first["access_token"].endswith(":sim")
    assert first["token_type"] == "bearer" and first["expires_in"] == 3600
    simulator.advance(100)
    again = _identity(simulator, "POST").json()  # POST with form body
    assert again["access_token"] == first["access_token"]
    assert 3499 <= again["expires_in"] <= 3500
    bad = _identity(simulator, client_secret="wrong")
    assert bad.status_code == 401
    assert bad.json() == {"error": "invalid_client", "error_description": "Bad client credentials"}
    assert _identity(simulator, client_id="nobody").status_code == 401
    # query-string credentials on POST are accepted too
    r = httpx.post(
        simulator.base_url + "/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": simulator.client_id,
            "client_secret": simulator.client_secret,
        },
    )
    assert r.json()["access_token"] == first["access_token"]


def test_600_601_602_and_new_token_after_expiry(simulator):
    api = Api(simulator)
    assert api.get(DESCRIBE)["success"] is True
    assert error(httpx.get(simulator.base_url + DESCRIBE).json()) == ("600", "Empty access token")
    r = httpx.get(simulator.base_url + DESCRIBE, headers={"Authorization": "Bearer nope:sim"})
    assert r.status_code == 200
    assert error(r.json()) == ("601", "Access token invalid")
    simulator.advance(3601)
    assert error(api.get(DESCRIBE)) == ("602", "Access token expired")
    fresh = simulator.token()
    assert fresh != api.token
    api.token = fresh
    assert api.get(DESCRIBE)["success"] is True
    simulator.revoke_tokens()
    assert error(api.get(DESCRIBE))[0] == "601"
    api.token = simulator.token()
    simulator.revoke_tokens(mode="expired")
    assert error(api.get(DESCRIBE))[0] == "602"


def test_query_token_only_behind_switch(simulator_factory):
    plain = simulator_factory()
    tok = plain.token()
    r = httpx.get(plain.base_url + DESCRIBE, params={"access_token": tok}).json()
    assert error(r)[0] == "600"
    allowing = simulator_factory(extra_args=["--allow-query-token"])
    tok = allowing.token()
    r = httpx.get(allowing.base_url + DESCRIBE, params={"access_token": tok}).json()
    assert r["success"] is True


def test_606_after_100_calls_in_20_seconds(simulator):
    api = Api(simulator)
    for _ in range(100):
        assert api.get(DESCRIBE)["success"] is True
    assert error(api.get(DESCRIBE)) == ("606", "Max rate limit '100' exceeded with in '20' secs")
    # identity and control calls are exempt
    assert simulator.token() == api.token
    simulator.advance(21)
    assert api.get(DESCRIBE)["success"] is True
    st = simulator.state()["requests"]
    assert st["by_code"]["606"] == 1
    assert st["by_path"][DESCRIBE] == 102


def test_615_when_more_than_10_in_flight(simulator):
    api = Api(simulator)
    simulator.configure(latency=0.5)

    def call(_):
        return httpx.get(simulator.base_url + DESCRIBE, headers=api.headers, timeout=30).json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(16)))
    codes = [r["errors"][0]["code"] for r in results if not r["success"]]
    assert "615" in codes
    assert all(c == "615" for c in codes)
    assert sum(r["success"] for r in results) <= 10
    msg = next(r["errors"][0]["message"] for r in results if not r["success"])
    assert msg == "Concurrent access limit '10' reached"
    assert simulator.state()["max_in_flight_seen"] > 10


def test_607_daily_call_cap_resets_at_chicago_midnight(simulator_factory):
    sim = simulator_factory(extra_args=["--daily-call-limit", "3"])
    api = Api(sim)
    for _ in range(3):
        assert api.get(DESCRIBE)["success"]
    assert error(api.get(DESCRIBE)) == ("607", "Daily quota reached")
    st = sim.state()
    from datetime import datetime

    reset = datetime.fromisoformat(st["quota_resets_at"].replace("Z", "+00:00")).timestamp()
    sim.advance(reset - st["now_epoch"] + 1)
    api.token = sim.token()
    assert api.get(DESCRIBE)["success"]


@pytest.mark.parametrize("path", ["/rest/v1/nothing.json", "/bulk/v1/leads/export/x/y.json"])
def test_unknown_paths_need_auth_first(simulator, path):
    assert error(httpx.get(simulator.base_url + path).json())[0] == "600"


def test_wrong_path_610_and_wrong_method_605(simulator):
    api = Api(simulator)
    assert error(api.get("/rest/v1/nothing.json")) == ("610", "Requested resource not found")
    assert error(api.get("/bulk/v1/leads/export/create.json")) == (
        "605",
        "HTTP Method not supported",
    )
