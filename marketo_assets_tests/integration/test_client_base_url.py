"""The base URL as a user pastes it, over real loopback HTTP: Marketo's own forms work; a
server that is not Marketo's identity endpoint and a host that does not exist fail at once
with what to fix; a refused connection keeps its bounded retries."""

from __future__ import annotations

import socket
import time

import pytest

from marketo_assets.marketo import Event, errors
from marketo_assets_tests.support.client import make_client, not_marketo


@pytest.mark.parametrize("shown", ["/rest", "/rest/", "/identity", "/identity/", "/"])
def test_the_endpoint_and_identity_as_marketo_shows_them_work(sim, shown):
    before = sim.state()["requests"]["identity"]
    with make_client(sim, base_url=sim.base_url + shown) as client:
        assert client.settings.base_url == sim.base_url
        fields = client.describe_fields()
    assert "email" in {f.name for f in fields}
    assert sim.state()["requests"]["identity"] == before + 1


LOGIN_PAGE = b"<!DOCTYPE html><html><title>Sign in</title><p>client_secret=%s</p></html>"
ENVELOPE = (
    b'{"requestId":"e1#1","success":false,'
    b'"errors":[{"code":"601","message":"Access token invalid"}]}'
)


@pytest.mark.parametrize(
    ("body", "content_type", "phrases"),
    [
        (LOGIN_PAGE, "text/html", ["(text/html)", "a body starting '<!DOCTYPE html>"]),
        (
            ENVELOPE,
            "application/json",
            [
                "(application/json)",
                "keys ['errors', 'requestId', 'success']",
                "error 601: Access token invalid",
            ],
        ),
    ],
)
def test_http_200_without_access_token_fails_at_once(sim, body, content_type, phrases):
    events: list[Event] = []
    secret = sim.client_secret
    with not_marketo(body.replace(b"%s", secret.encode()), content_type) as (url, seen):
        started = time.monotonic()
        with (
            make_client(sim, events, base_url=url) as client,
            pytest.raises(errors.AuthenticationError) as info,
        ):
            client.describe_fields()
        elapsed = time.monotonic() - started
    message = str(info.value)
    assert f"POST {url}/identity/oauth/token answered HTTP 200" in message
    assert "without an access_token" in message and "MARKETO_BASE_URL" in message
    for phrase in phrases:
        assert phrase in message, message
    assert secret not in message
    assert seen == ["/identity/oauth/token"]  # once: not retried
    assert not [e for e in events if e.kind == "retry"]
    assert elapsed < 10


def test_an_unresolvable_host_fails_at_once_naming_it(sim):
    events: list[Event] = []
    started = time.monotonic()
    # The default retry budget (8 attempts, up to 15 minutes) applies to transient errors.
    budget = {"max_retry_seconds": 900, "retry_initial_wait": 1.0, "retry_max_wait": 60}
    with (
        make_client(sim, events, base_url="https://nonexistent.invalid", **budget) as client,
        pytest.raises(errors.HostNotFoundError) as info,
    ):
        client.describe_fields()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "'nonexistent.invalid' does not resolve" in message
    assert "MARKETO_BASE_URL" in message and "DNS" in message
    assert not [e for e in events if e.kind == "retry"]
    assert elapsed < 10


def test_a_refused_connection_keeps_its_bounded_retries(sim):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events: list[Event] = []
    with (
        make_client(sim, events, base_url=f"http://127.0.0.1:{port}", max_attempts=3) as client,
        pytest.raises(errors.TransientError) as info,
    ):
        list(client.iter_static_lists())
    assert "ConnectError" in str(info.value)
    assert len([e for e in events if e.kind == "retry"]) == 2
