"""The quota day is Marketo's: the client follows the server's clock (HTTP `Date`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketo_assets.marketo import ExportFilter, ExportRequest, errors
from marketo_assets_tests.support.client import make_client

CHICAGO = ZoneInfo("America/Chicago")


def _request(day: int) -> ExportRequest:
    start = datetime(2025, 2, day, tzinfo=UTC)
    return ExportRequest(
        fields=["id", "email"],
        filter=ExportFilter.created_at(start, start + timedelta(hours=23, minutes=59, seconds=59)),
    )


def test_quota_usage_and_reset_follow_marketos_clock(sim_factory, tmp_path):
    sim = sim_factory(quota_mb=1, extra_args=["--now", "2025-03-10T12:00:00Z"])
    with make_client(sim, poll_interval=0.2) as client:
        job = client.create_export(_request(3))
        client.wait_for_export(job.export_id)
        client.download_export(client.get_export(job.export_id), tmp_path / "a.csv")
        used = client.exported_bytes_today()
        assert used == sim.state()["quota_used_bytes"] > 0
        # The server says it is 2025-03-10; our host's clock says otherwise.
        assert (
            abs((client.server_now() - datetime(2025, 3, 10, 12, tzinfo=UTC)).total_seconds()) < 60
        )

        sim.configure(quota_mb=0)
        with pytest.raises(errors.QuotaExceededError) as caught:
            client.create_export(_request(4))
        reset = caught.value.reset_at.astimezone(CHICAGO)
        assert (reset.year, reset.month, reset.day, reset.hour) == (2025, 3, 11, 0)

        sim.advance(24 * 3600)  # past midnight in Chicago: a new quota day
        assert client.exported_bytes_today() == 0
