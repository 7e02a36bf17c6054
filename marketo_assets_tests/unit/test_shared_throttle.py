"""Clients built by the Marketo resource share one throttle per Marketo instance: Marketo counts
100 calls / 20 s per instance, and every run or sensor tick builds its own client."""

from __future__ import annotations

from marketo_assets.defs.resources import MarketoResource


def _resource(base_url: str, tmp_path, **overrides) -> MarketoResource:
    return MarketoResource(
        base_url=base_url,
        client_id="id",
        client_secret="secret",
        staging_dir=str(tmp_path / "exports"),
        ledger_path=str(tmp_path / "ledger.sqlite"),
        **overrides,
    )


def test_clients_of_one_instance_share_the_throttle(tmp_path):
    first = _resource("https://111-AAA-111.mktorest.com", tmp_path)
    again = _resource("https://111-aaa-111.mktorest.com/", tmp_path)  # same instance
    other = _resource("https://222-BBB-222.mktorest.com", tmp_path)
    with first.client() as a, again.client() as b, other.client() as c:
        assert a._throttle is b._throttle
        assert c._throttle is not a._throttle
        assert a._throttle.max_calls == 80 and a._throttle.max_concurrent == 5


def test_resource_retry_and_queue_settings_reach_the_client(tmp_path):
    resource = _resource(
        "https://333-CCC-333.mktorest.com",
        tmp_path,
        retry_initial_wait=0.25,
        retry_max_wait=2.0,
        queue_full_backoff=[1.0, 2.0],
        window_seconds=10.0,
    )
    with resource.client() as client:
        settings = client.settings
    assert settings.retry_initial_wait == 0.25 and settings.retry_max_wait == 2.0
    assert settings.queue_full_backoff == (1.0, 2.0)
    assert settings.window_seconds == 10.0
