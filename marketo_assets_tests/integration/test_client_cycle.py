"""Full export cycles of the client against the real simulator over loopback HTTP."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from marketo_assets.marketo import (
    Event,
    ExportFilter,
    ExportJob,
    ExportRequest,
    MarketoClient,
    errors,
)
from marketo_assets_tests.support.client import FIELDS, control, ids_in, make_client, read_export

JAN = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC))


def run_cycle(client: MarketoClient, request: ExportRequest, dest: Path) -> tuple[ExportJob, Any]:
    created = client.create_export(request)
    assert created.status == "Created" and created.export_id
    done = client.wait_for_export(created.export_id)
    result = client.download_export(done, dest)
    return done, result


def truth(sim: Any, flt: ExportFilter) -> set[int]:
    return set(sim.truth(flt.payload(), ids=True)["ids"])


@pytest.mark.parametrize("fmt", ["CSV", "TSV", "SSV"])
def test_full_cycle_per_format(sim, tmp_path, fmt):
    events: list[Event] = []
    flt = ExportFilter.created_at(*JAN)
    req = ExportRequest(
        fields=FIELDS, filter=flt, format=fmt, column_header_names={"email": "Email Address"}
    )
    with make_client(sim, events) as client:
        done, result = run_cycle(client, req, tmp_path / f"jan.{fmt.lower()}")
        calls = client.calls_made
    expected = truth(sim, flt)
    assert expected, "the data set should have January leads"
    header, rows = read_export(result.path, fmt)
    assert header == ["id", "Email Address", "firstName", "lastName", "createdAt", "updatedAt"]
    got = [int(r[0]) for r in rows]
    assert len(got) == len(set(got)) and set(got) == expected
    assert done.number_of_records == len(expected) == len(rows)
    assert result.bytes == done.file_size and "sha256:" + result.sha256 == done.file_checksum
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    kinds = [e.data["status"] for e in events if e.kind == "status"]
    assert kinds[0] == "Created" and kinds[-1] == "Completed" and "Queued" in kinds
    assert [e.kind for e in events].count("auth") == 1
    assert calls < 60  # polling every 0.2 s; a real run polls every 60 s


def _list_filter(client: MarketoClient, kind: str) -> ExportFilter:
    if kind.startswith("static"):
        lst = next(iter(client.iter_static_lists()))
        return (
            ExportFilter.static_list_id(lst.id)
            if kind == "staticListId"
            else ExportFilter.static_list_name(lst.name)
        )
    lst = next(iter(client.iter_smart_lists()))
    return (
        ExportFilter.smart_list_id(lst.id)
        if kind == "smartListId"
        else ExportFilter.smart_list_name(lst.name)
    )


@pytest.mark.parametrize(
    "kind",
    ["createdAt", "updatedAt", "staticListId", "staticListName", "smartListId", "smartListName"],
)
def test_full_cycle_per_filter(sim, tmp_path, kind):
    with make_client(sim) as client:
        if kind == "createdAt":
            flt = ExportFilter.created_at(*JAN)
        elif kind == "updatedAt":
            flt = ExportFilter.updated_at(
                datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC)
            )
        else:
            flt = _list_filter(client, kind)
        req = ExportRequest(fields=["id", "email", "updatedAt"], filter=flt, format="CSV")
        done, result = run_cycle(client, req, tmp_path / "out.csv")
    expected = truth(sim, flt)
    got = ids_in(result.path, "CSV")
    assert expected and sorted(got) == sorted(expected)
    assert done.number_of_records == len(expected)


def test_catalog_describe_and_lists(sim):
    with make_client(sim) as client:
        fields = client.describe_fields()
        statics = list(client.iter_static_lists())
        smarts = list(client.iter_smart_lists())
    names = {f.name for f in fields}
    assert {"id", "email", "createdAt", "updatedAt"} <= names
    assert all(f.data_type for f in fields)
    sim_lists = control(sim, "GET", "/_sim/lists")
    assert {x.id for x in statics} == {x["id"] for x in sim_lists if x["kind"] == "static"}
    assert {x.id for x in smarts} == {x["id"] for x in sim_lists if x["kind"] == "smart"}
    assert all(x.name and x.created_at for x in statics + smarts)


def test_invalid_fields_rejected_by_marketo(sim):
    req = ExportRequest(fields=["id", "noSuchField"], filter=ExportFilter.created_at(*JAN))
    with make_client(sim) as client, pytest.raises(errors.InvalidFieldsError) as info:
        client.create_export(req)
    assert info.value.fields == ["noSuchField"]
    assert client.calls_made == 1


@pytest.mark.parametrize("disabled", ["updatedAt", "smartList"])
def test_unsupported_filter_1035(sim, disabled):
    sim.configure(disabled_filters=[disabled])
    with make_client(sim) as client:
        if disabled == "updatedAt":
            flt = ExportFilter.updated_at(*JAN)
        else:
            flt = ExportFilter.smart_list_id(next(iter(client.iter_smart_lists())).id)
        before = client.calls_made
        with pytest.raises(errors.UnsupportedFilterError) as info:
            client.create_export(ExportRequest(fields=["id"], filter=flt))
        assert client.calls_made - before == 1
    assert "Marketo Support" in str(info.value) and "createdAt" in str(info.value)


def test_cancel(sim):
    with make_client(sim) as client:
        job = client.create_export(
            ExportRequest(fields=["id"], filter=ExportFilter.created_at(*JAN))
        )
        client.enqueue_export(job.export_id)
        assert client.cancel_export(job.export_id).status == "Cancelled"
        with pytest.raises(errors.ExportJobCancelledError):
            client.wait_for_export(job.export_id)
        assert client.export_usable(job.export_id) is None
    state = {j["exportId"]: j for j in sim.state()["jobs"]}
    assert state[job.export_id]["status"] == "Cancelled"


def test_timeout_cancels_job(sim):
    sim.set_faults("stuck-queue")
    with make_client(sim) as client:
        job = client.create_export(
            ExportRequest(fields=["id"], filter=ExportFilter.created_at(*JAN))
        )
        with pytest.raises(errors.ExportTimeoutError) as info:
            client.wait_for_export(job.export_id, poll_interval=0.2, timeout=1.0)
    assert info.value.cancelled
    state = {j["exportId"]: j for j in sim.state()["jobs"]}
    assert state[job.export_id]["status"] == "Cancelled"


def test_reattach_via_job_list_and_export_usable(sim, tmp_path):
    req = ExportRequest(fields=["id", "email"], filter=ExportFilter.created_at(*JAN))
    with make_client(sim) as first:
        job = first.create_export(req)
        first.enqueue_export(job.export_id)
    # a new process: find the job in the list and carry on with it
    with make_client(sim) as second:
        listed = {j.export_id: j for j in second.list_exports(["Queued", "Processing"])}
        assert job.export_id in listed
        again = second.export_usable(job.export_id)
        assert again is not None and again.status in ("Queued", "Processing", "Completed")
        done = second.wait_for_export(job.export_id)
        # a completed job is still usable (file probe with Range 0-0)
        assert second.export_usable(job.export_id) == done
        result = second.download_export(done, tmp_path / "a.csv")
        assert any(j.export_id == job.export_id for j in second.list_exports(["Completed"]))
    assert result.bytes == done.file_size
    created = [j for j in sim.state()["jobs"] if j["exportId"] == job.export_id]
    assert len(created) == 1


def test_exported_bytes_today_matches_simulator(sim, tmp_path):
    with make_client(sim) as client:
        run_cycle(
            client,
            ExportRequest(fields=["id"], filter=ExportFilter.created_at(*JAN)),
            tmp_path / "x.csv",
        )
        used = client.exported_bytes_today()
    assert used == sim.state()["quota_used_bytes"] > 0


def test_client_rate_limit_respected(sim_factory):
    """The client's own throttle keeps it under the instance limit: no 606/615 ever."""
    sim = sim_factory()
    sim.configure(rate_limit=10, rate_window=2.0, max_in_flight=3, latency=0.05)
    with make_client(sim, max_calls_per_window=9, window_seconds=2.0, max_concurrent=3) as client:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: client.describe_fields(), range(24)))
        assert client.calls_made == 24
    state = sim.state()
    assert state["max_in_flight_seen"] <= 3
    assert "606" not in state["requests"]["by_code"]
    assert "615" not in state["requests"]["by_code"]


def test_no_secret_or_token_in_logs_reprs_errors(sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "marketo_assets"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    events: list[Event] = []
    raised: list[BaseException] = []
    tokens: list[str] = []
    with make_client(sim, events) as client:
        run_cycle(
            client,
            ExportRequest(fields=["id"], filter=ExportFilter.created_at(*JAN)),
            tmp_path / "r.csv",
        )
        tokens.append(client._auth._token or "")
        sim.revoke_tokens()
        client.get_export(sim.state()["jobs"][-1]["exportId"])
        tokens.append(client._auth._token or "")
        with pytest.raises(errors.InvalidFieldsError) as e1:
            client.create_export(
                ExportRequest(fields=["bogus"], filter=ExportFilter.created_at(*JAN))
            )
        raised.append(e1.value)
        text = repr(client) + repr(client.settings) + str(client.settings)
    bad = make_client(sim, client_secret="wrong-" + sim.client_secret)
    with bad, pytest.raises(errors.AuthenticationError) as e2:
        bad.describe_fields()
    raised.append(e2.value)
    assert all(tokens) and tokens[0] != tokens[1]
    haystacks = [caplog.text, text, *(str(e) + repr(e) for e in raised), repr(events)]
    for hay in haystacks:
        assert sim.client_secret not in hay
        for tok in tokens:
            assert tok not in hay
    assert (datetime.now(UTC) - timedelta(days=1)).year >= 2025
