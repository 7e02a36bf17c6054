"""Envelope parsing, error mapping, retries, re-authentication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from marketo_assets.marketo import ExportFilter, ExportRequest, MarketoClient, errors
from marketo_assets.marketo.client import AUTH_RETRIES
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
CREATE = f"{BASE}/create.json"
ENQUEUE = f"{BASE}/{EXPORT_ID}/enqueue.json"
STATUS = f"{BASE}/{EXPORT_ID}/status.json"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
REQUEST = ExportRequest(
    fields=["id", "email"], filter=ExportFilter.created_at(T0, T0 + timedelta(days=30))
)


def test_create_sends_bearer_header_and_json_body():
    fake = FakeMarketo()
    fake.script(CREATE, ok([job()]))
    with make_client(fake) as client:
        created = client.create_export(REQUEST)
    assert created.export_id == EXPORT_ID and created.status == "Created"
    req = fake.requests[-1]
    assert req.headers["authorization"].startswith("Bearer ")
    assert "access_token" not in str(req.url)
    assert req.read() and b'"createdAt"' in req.content
    ident = fake.requests[0]
    assert ident.method == "POST" and "client_secret" not in str(ident.url)
    assert client.calls_made == 1 and client.auth_calls == 1


def test_1029_job_already_queued_is_success():
    fake = FakeMarketo()
    fake.script(ENQUEUE, err("1029", "Job already queued"))
    fake.script(STATUS, ok([job("Queued", queuedAt="2025-01-01T00:00:01Z")]))
    with make_client(fake) as client:
        got = client.enqueue_export(EXPORT_ID)
    assert got.status == "Queued"
    assert fake.calls(ENQUEUE) == 1


def test_1029_queue_full_retries_on_schedule_then_succeeds():
    fake = FakeMarketo()
    events: list = []
    clock = FakeClock()
    fake.script(
        ENQUEUE,
        err("1029", "Too many jobs (10) in queue"),
        err("1029", "Too many jobs (10) in queue"),
        ok([job("Queued")]),
    )
    with make_client(fake, events, clock) as client:
        assert client.enqueue_export(EXPORT_ID).status == "Queued"
    assert clock.sleeps == [1.0, 2.0]
    waits = [e for e in events if e.kind == "enqueue_wait"]
    assert [e.data["wait"] for e in waits] == [1.0, 2.0] and waits[0].export_id == EXPORT_ID


def test_1029_queue_full_is_bounded():
    fake = FakeMarketo()
    clock = FakeClock()
    fake.script(ENQUEUE, err("1029", "Too many jobs (10) in queue"))
    with make_client(fake, clock=clock) as client, pytest.raises(errors.QueueFullError) as info:
        client.enqueue_export(EXPORT_ID)
    assert fake.calls(ENQUEUE) == 4  # first try + 3 scheduled waits
    assert info.value.waited_seconds == 7.0 and "queue" in str(info.value)


def test_1029_quota_exceeded_no_retry_and_reset_time():
    fake = FakeMarketo()
    fake.script(CREATE, err("1029", "Export daily quota 500MB exceeded."))
    clock = FakeClock()
    with make_client(fake, clock=clock) as client, pytest.raises(errors.QuotaExceededError) as info:
        client.create_export(REQUEST)
    assert fake.rest_calls == 1 and clock.sleeps == []
    exc = info.value
    assert exc.reset_at == MarketoClient.quota_reset_time()
    assert exc.reset_at.tzinfo is not None and exc.reset_at > datetime.now(UTC)
    text = str(exc)
    assert "America/Chicago" in text and "UTC" in text and "500MB" in text


def test_quota_reset_time_is_next_chicago_midnight():
    # 2025-07-01 04:59 UTC = 23:59 CDT on June 30 -> reset at 05:00 UTC
    assert MarketoClient.quota_reset_time(datetime(2025, 7, 1, 4, 59, tzinfo=UTC)) == datetime(
        2025, 7, 1, 5, 0, tzinfo=UTC
    )
    # winter (CST, UTC-6)
    assert MarketoClient.quota_reset_time(datetime(2025, 1, 15, 12, 0, tzinfo=UTC)) == datetime(
        2025, 1, 16, 6, 0, tzinfo=UTC
    )


def test_1003_invalid_fields_names_fields_and_describe():
    fake = FakeMarketo()
    fake.script(CREATE, err("1003", "Invalid fields: email, bogus"))
    req = ExportRequest(fields=["id", "bogus"], filter=REQUEST.filter)
    with make_client(fake) as client, pytest.raises(errors.InvalidFieldsError) as info:
        client.create_export(req)
    assert info.value.fields == ["bogus"]
    assert "describe" in str(info.value) and "bogus" in str(info.value)
    assert fake.rest_calls == 1


def test_1003_other_is_api_error_no_retry():
    fake = FakeMarketo()
    fake.script(CREATE, err("1003", "Invalid data"))
    with make_client(fake) as client, pytest.raises(errors.MarketoAPIError) as info:
        client.create_export(REQUEST)
    assert not isinstance(info.value, errors.InvalidFieldsError)
    assert info.value.code == "1003" and fake.rest_calls == 1


def test_1035_unsupported_filter():
    fake = FakeMarketo()
    fake.script(CREATE, err("1035", "Unsupported filter type for target subscription: updatedAt"))
    req = ExportRequest(fields=["id"], filter=ExportFilter.updated_at(T0, T0 + timedelta(days=1)))
    with make_client(fake) as client, pytest.raises(errors.UnsupportedFilterError) as info:
        client.create_export(req)
    text = str(info.value)
    assert info.value.filter_type == "updatedAt"
    assert "not enabled" in text and "Marketo Support" in text and "createdAt" in text
    assert fake.rest_calls == 1


def test_607_daily_call_limit_no_retry():
    fake = FakeMarketo()
    fake.script(STATUS, err("607", "Daily quota reached"))
    with make_client(fake) as client, pytest.raises(errors.DailyCallLimitError) as info:
        client.get_export(EXPORT_ID)
    assert fake.rest_calls == 1 and info.value.reset_at.tzinfo is not None


@pytest.mark.parametrize("code", ["601", "602"])
def test_601_602_reauth_and_retry_once(code):
    fake = FakeMarketo()
    events: list = []

    def expire_then_ok(request: httpx.Request) -> httpx.Response:
        fake.valid_tokens.clear()  # server drops every token
        return httpx.Response(200, json=err(code, "Access token expired"))

    fake.script(STATUS, expire_then_ok, ok([job("Queued")]))
    with make_client(fake, events) as client:
        assert client.get_export(EXPORT_ID).status == "Queued"
        assert client.auth_calls == 2 and client.calls_made == 2
    assert [e.data["reason"] for e in events if e.kind == "auth"] == ["initial", code]


def test_auth_failure_after_reauth_raises_authentication_error():
    fake = FakeMarketo()
    fake.script(STATUS, err("601", "Access token invalid"))
    with make_client(fake) as client, pytest.raises(errors.AuthenticationError):
        client.get_export(EXPORT_ID)
    # The first token and AUTH_RETRIES fresh ones, each refused: then a clear error, no loop.
    tries = 1 + AUTH_RETRIES
    assert fake.calls(STATUS) == tries and fake.calls("/identity/oauth/token") == tries


def test_identity_401_is_authentication_error_without_retry():
    fake = FakeMarketo()
    fake.identity_status = 401
    with make_client(fake) as client, pytest.raises(errors.AuthenticationError) as info:
        client.get_export(EXPORT_ID)
    assert fake.calls("/identity/oauth/token") == 1 and fake.rest_calls == 0
    assert "Bad client credentials" in str(info.value)


def test_proactive_token_refresh_uses_expires_in_minus_margin():
    fake = FakeMarketo(token_ttl=100)
    clock = FakeClock()
    fake.script(STATUS, ok([job("Queued")]))
    with make_client(fake, clock=clock, token_refresh_margin=30) as client:
        client.get_export(EXPORT_ID)
        clock.now += 60
        client.get_export(EXPORT_ID)
        assert client.auth_calls == 1
        clock.now += 15  # 75 s > 100 - 30
        client.get_export(EXPORT_ID)
        assert client.auth_calls == 2


@pytest.mark.parametrize(
    "failure",
    [
        lambda r: httpx.Response(
            200, json=err("606", "Max rate limit '100' exceeded with in '20' secs")
        ),
        lambda r: httpx.Response(200, json=err("615", "Concurrent access limit '10' reached")),
        lambda r: httpx.Response(200, json=err("604", "Request time-out")),
        lambda r: httpx.Response(200, json=err("608", "API Temporarily Unavailable")),
        lambda r: httpx.Response(200, json=err("611", "System error")),
        lambda r: httpx.Response(200, json=err("713", "Transient Error")),
        lambda r: httpx.Response(502, text="Bad Gateway"),
        lambda r: httpx.Response(500, text="oops"),
        lambda r: httpx.Response(200, json={"requestId": "x", "success": True}),  # no result
        lambda r: httpx.Response(200, text="<html>gateway</html>"),
    ],
)
def test_transient_failures_are_retried(failure):
    fake = FakeMarketo()
    events: list = []
    clock = FakeClock()
    fake.script(STATUS, failure, failure, ok([job("Processing")]))
    with make_client(fake, events, clock) as client:
        assert client.get_export(EXPORT_ID).status == "Processing"
    assert fake.calls(STATUS) == 3 and len(clock.sleeps) == 2
    assert [e.kind for e in events].count("retry") == 2


def test_connection_errors_are_retried():
    fake = FakeMarketo()
    fake.script(
        STATUS, lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")), ok([job("Queued")])
    )
    with make_client(fake) as client:
        assert client.get_export(EXPORT_ID).status == "Queued"


def test_rate_limited_event_emitted_for_606():
    fake = FakeMarketo()
    events: list = []
    fake.script(STATUS, err("606", "Max rate limit '100' exceeded with in '20' secs"), ok([job()]))
    with make_client(fake, events) as client:
        client.get_export(EXPORT_ID)
    assert [e.data["code"] for e in events if e.kind == "rate_limited"] == ["606"]


def test_retries_are_bounded_by_attempts():
    fake = FakeMarketo()
    clock = FakeClock()
    fake.script(STATUS, err("615", "Concurrent access limit '10' reached"))
    with (
        make_client(fake, clock=clock, max_attempts=4) as client,
        pytest.raises(errors.TransientError),
    ):
        client.get_export(EXPORT_ID)
    assert fake.calls(STATUS) == 4


def test_retries_are_bounded_by_time():
    fake = FakeMarketo()
    clock = FakeClock()
    fake.script(STATUS, httpx.Response(503, text="busy"))
    with (
        make_client(
            fake,
            clock=clock,
            max_attempts=100,
            retry_initial_wait=1.0,
            retry_max_wait=10.0,
            max_retry_seconds=30.0,
        ) as client,
        pytest.raises(errors.TransientError),
    ):
        client.get_export(EXPORT_ID)
    assert sum(clock.sleeps) <= 30.0
    assert 3 <= fake.calls(STATUS) < 15


def test_unknown_error_code_is_api_error_without_retry():
    fake = FakeMarketo()
    fake.script(STATUS, err("1013", "Object not found"))
    with make_client(fake) as client, pytest.raises(errors.MarketoAPIError) as info:
        client.get_export(EXPORT_ID)
    assert info.value.code == "1013" and fake.calls(STATUS) == 1


def test_callback_exceptions_do_not_break_the_client():
    fake = FakeMarketo()
    fake.script(STATUS, err("606", "rate"), ok([job("Queued")]))

    def boom(event):
        raise RuntimeError("callback bug")

    with MarketoClient(
        make_client(fake).settings,
        transport=httpx.MockTransport(fake.handler),
        on_event=boom,
        sleep=lambda s: None,
    ) as client:
        assert client.get_export(EXPORT_ID).status == "Queued"
