"""The error table (error_map.RULES) is what the client does: every Marketo code it lists is
raised as its error class and retried by the policy it names, or not retried at all."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from marketo_assets.marketo import ExportJob, errors
from marketo_assets.marketo.error_map import RULES, Failure, Rule
from marketo_assets_tests.support.client_fakes import (
    EXPORT_ID,
    FakeClock,
    FakeMarketo,
    err,
    job,
    make_client,
    ok,
)

STATUS = f"/bulk/v1/leads/export/{EXPORT_ID}/status.json"
ENQUEUE = f"/bulk/v1/leads/export/{EXPORT_ID}/enqueue.json"
FILE = f"/bulk/v1/leads/export/{EXPORT_ID}/file.json"
CANDIDATES = (
    "Too many jobs (10) in queue",
    "Export daily quota 500MB exceeded.",
    "Job already queued",
    "Invalid fields: bogus",
    "some error",
)
RETRIED = {
    errors.TokenRefusedError: "TOKEN_EXPIRED",
    errors.QueueFullError: "QUEUE_FULL",
    errors.TransientError: "TRANSIENT",
}


def _message(rule: Rule) -> str:
    """A message for which `rule` is the first rule of its code that applies."""
    for text in CANDIDATES:
        failure = Failure(rule.code, text, "POST", ENQUEUE, reset_at=datetime.now(UTC))
        first = next((r for r in RULES if r.code == rule.code and r.applies(failure)), None)
        if first is rule:
            return text
    raise AssertionError(rule)


def _error(rule: Rule) -> errors.MarketoError | None:
    failure = Failure(rule.code, _message(rule), "POST", ENQUEUE, reset_at=datetime.now(UTC))
    return rule.build(failure) if rule.build is not None else None


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.code}-{r.retry}")
def test_each_rule_is_what_the_client_does(rule: Rule):
    fake = FakeMarketo()
    clock = FakeClock()
    message = _message(rule)

    def refuse(request: httpx.Request) -> httpx.Response:
        if rule.retry == "TOKEN_EXPIRED":
            fake.valid_tokens.clear()
        return httpx.Response(200, json=err(rule.code, message))

    fake.script(ENQUEUE, refuse, ok([job("Queued")]))
    fake.script(STATUS, ok([job("Queued")]))
    error = _error(rule)
    with make_client(fake, clock=clock) as client:
        if error is not None and rule.retry is None:
            with pytest.raises(type(error)):
                client.enqueue_export(EXPORT_ID)
        else:
            assert client.enqueue_export(EXPORT_ID).status == "Queued"
    if error is None or rule.retry is None:  # success: 1029 "Job already queued"
        assert fake.calls(ENQUEUE) == 1 and clock.sleeps == []
    else:
        assert fake.calls(ENQUEUE) == 2
    if rule.retry == "TOKEN_EXPIRED":
        assert fake.calls("/identity/oauth/token") == 2 and clock.sleeps == []
    if rule.retry == "QUEUE_FULL":
        assert clock.sleeps == [1.0]  # queue_full_backoff's first wait
    if rule.retry == "TRANSIENT":
        assert len(clock.sleeps) == 1


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.code}-{r.retry}")
def test_retry_flags_match_the_error_classes(rule: Rule):
    error = _error(rule)
    assert rule.retry == (RETRIED.get(type(error)) if error is not None else None)


def test_the_file_download_refreshes_a_refused_token_too(tmp_path):
    fake = FakeMarketo()
    body = b"id\n1\n"
    calls = {"n": 0}

    def refuse_twice(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            fake.valid_tokens.clear()
            return httpx.Response(200, json=err("601", "Access token invalid"))
        return httpx.Response(200, content=body)

    fake.script(FILE, refuse_twice)
    done = ExportJob.from_api(job("Completed", fileSize=len(body)))
    with make_client(fake) as client:
        result = client.download_export(done, tmp_path / "f.csv")
        assert client.auth_calls == 3
    assert result.bytes == len(body)
    assert not result.direct  # a test transport has no socket: reported, not hidden
