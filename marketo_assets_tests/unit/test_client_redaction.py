"""Secrets and tokens never reach logs, reprs, exception messages or events; no dagster import."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from marketo_assets.marketo import ExportFilter, ExportRequest, errors
from marketo_assets_tests.support.client_fakes import (
    EXPORT_ID,
    SECRET,
    TOKEN_PREFIX,
    FakeMarketo,
    err,
    file_body,
    job,
    make_client,
    ok,
    settings,
    sha,
)

BASE = "/bulk/v1/leads/export"


def test_client_package_does_not_import_dagster():
    code = (
        "import sys, marketo_assets.marketo as m; "
        "m.MarketoClient; "
        "bad = sorted(n for n in sys.modules if n == 'dagster' or n.startswith('dagster')); "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_no_secret_or_token_anywhere(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "marketo_assets"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    fake = FakeMarketo()
    events: list = []
    body = file_body(200_000)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    fake.script(f"{BASE}/create.json", ok([job()]))
    fake.script(f"{BASE}/{EXPORT_ID}/enqueue.json", ok([job("Queued")]))

    def expire(request):
        fake.valid_tokens.clear()
        return httpx.Response(200, json=err("602", "Access token expired"))

    done = job("Completed", fileSize=len(body), fileChecksum=sha(body), numberOfRecords=3)
    fake.script(f"{BASE}/{EXPORT_ID}/status.json", ok([job()]), expire, ok([done]))
    fake.script(f"{BASE}/{EXPORT_ID}/file.json", httpx.Response(200, content=body))
    raised: list[BaseException] = []
    with make_client(fake, events) as client:
        req = ExportRequest(
            fields=["id"], filter=ExportFilter.created_at(t0, t0 + timedelta(days=2))
        )
        created = client.create_export(req)
        finished = client.wait_for_export(created.export_id)
        client.download_export(finished, tmp_path / "f.csv")
        # failures
        fake.script(f"{BASE}/create.json", err("1029", "Export daily quota 500MB exceeded."))
        with pytest.raises(errors.QuotaExceededError) as q:
            client.create_export(req)
        raised.append(q.value)
        fake.script(f"{BASE}/{EXPORT_ID}/status.json", err("601", "Access token invalid"))
        with pytest.raises(errors.AuthenticationError) as a:
            client.get_export(EXPORT_ID)
        raised.append(a.value)
        fake.script(f"{BASE}/{EXPORT_ID}/status.json", httpx.Response(500, text="x"))
        with pytest.raises(errors.TransientError) as t:
            client.get_export(EXPORT_ID)
        raised.append(t.value)
        fake.identity_status = 401
        fake.valid_tokens.clear()
        with pytest.raises(errors.AuthenticationError) as b:
            client.get_export(EXPORT_ID)
        raised.append(b.value)
        client_repr = repr(client) + repr(client._auth) + str(client.__dict__.get("settings"))
    assert fake.tokens_issued >= 2
    s = settings()
    haystacks = [
        caplog.text,
        client_repr,
        repr(s),
        str(s),
        s.model_dump_json(),
        *(str(e) + repr(e) for e in raised),
        *(repr(e) for e in events),
    ]
    for text in haystacks:
        assert SECRET not in text
        assert TOKEN_PREFIX not in text


def test_identity_query_fallback_is_redacted_in_logs(caplog):
    """A server that reads identity parameters only from the query string (as the OpenAPI spec
    describes POST) still works, and httpx's request log line never shows the secret."""
    caplog.set_level(logging.DEBUG)
    fake = FakeMarketo()
    fake.identity_query_only = True
    fake.script(f"{BASE}/{EXPORT_ID}/status.json", ok([job("Queued")]))
    with make_client(fake) as client:
        assert client.get_export(EXPORT_ID).status == "Queued"
        assert client.auth_calls == 2  # form body refused once, then the query string
        fake.valid_tokens.clear()
        assert client.get_export(EXPORT_ID).status == "Queued"
        assert client.auth_calls == 3  # remembers the style: no second refused attempt
    assert "client_secret=***" in caplog.text
    assert SECRET not in caplog.text and TOKEN_PREFIX not in caplog.text
