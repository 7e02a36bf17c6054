"""Simulator: export file content, formats, headers, determinism."""

from __future__ import annotations

import pytest

from marketo_assets.simulator.data import EXPORTABLE
from marketo_assets_tests.support.simulator import JAN, Api, parse, sha

ALL = list(EXPORTABLE)


@pytest.fixture(scope="module")
def jan_all(request):
    """All fields for January, from one simulator (seed 7)."""
    from marketo_assets.simulator.process import run_simulator

    with run_simulator() as sim:
        api = Api(sim)
        job, body = api.export(JAN, ALL)
        yield sim, job, body


def test_csv_content_is_tricky_but_parseable(jan_all):
    sim, job, body = jan_all
    assert body.endswith(b"\n") and b"\r\n" not in body.split(b"\n", 1)[0]
    rows = parse(body)
    header, data = rows[0], rows[1:]
    assert header == ALL
    assert len(data) == job["numberOfRecords"] == sim.truth(JAN)["count"]
    assert all(len(r) == len(header) for r in data)
    values = [v for r in data for v in r]
    assert "null" in values
    assert any("\n" in v for v in values) and any("\r" in v for v in values)
    assert any("\x00" in v for v in values)
    assert any('"' in v for v in values) and any("," in v for v in values)
    text = "".join(values)
    for sample in ("王", "Д", "م", "🚀"):
        assert sample in text
    ids = [int(r[0]) for r in data]
    assert ids == sorted(ids)
    created = [r[header.index("createdAt")] for r in data]
    assert created == sorted(created)
    assert created[0] == "2025-01-01T00:00:00Z"  # boundary lead at midnight on the 1st
    assert created[-1] == "2025-01-31T23:59:59Z"  # and one at the last second of the month
    upd = header.index("updatedAt")
    assert all(r[upd] >= c for r, c in zip(data, created, strict=True))
    # percent values sometimes carry decimals; booleans are true/false
    assert any("." in r[header.index("probability")] for r in data)
    assert {r[header.index("unsubscribed")] for r in data} <= {"true", "false", "null"}


def test_file_rows_equal_the_lead_records(jan_all):
    sim, _, body = jan_all
    data = parse(body)[1:]
    for row in data[:: max(1, len(data) // 25)]:
        lead = sim.lead(int(row[0]))
        assert row == [("null" if lead[f] is None else lead[f]) for f in ALL]


def test_boundaries_are_inclusive(simulator):
    api = Api(simulator)
    simulator.configure(status_interval=0.05)  # many exports here: faster ticks
    flt = {"createdAt": {"startAt": "2025-02-01T00:00:00Z", "endAt": "2025-03-01T00:00:00Z"}}
    _, body = api.export(flt, ["id", "createdAt"])
    created = [r[1] for r in parse(body)[1:]]
    assert created[0] == "2025-02-01T00:00:00Z" and created[-1] == "2025-03-01T00:00:00Z"
    flt = {"createdAt": {"startAt": "2025-03-01T00:00:01Z", "endAt": "2025-03-31T23:59:59Z"}}
    _, body = api.export(flt, ["createdAt"])
    created = [r[0] for r in parse(body)[1:]]
    assert "2025-03-01T00:00:00Z" not in created and created[-1] == "2025-03-31T23:59:59Z"
    # every month of the range has its midnight and last-second leads
    every = set()
    for m in range(1, 7):
        w = {
            "createdAt": {
                "startAt": f"2025-{m:02d}-01T00:00:00Z",
                "endAt": f"2025-{m + 1:02d}-01T00:00:00Z" if m < 6 else "2025-06-30T23:59:59Z",
            }
        }
        _, body = api.export(w, ["createdAt"])
        every |= {r[0] for r in parse(body)[1:]}
    for m in range(1, 7):
        assert f"2025-{m:02d}-01T00:00:00Z" in every
    assert {"2025-01-31T23:59:59Z", "2025-02-28T23:59:59Z", "2025-06-30T23:59:59Z"} <= every


@pytest.mark.parametrize("fmt", ["TSV", "SSV"])
def test_tsv_ssv_quote_like_csv(simulator, fmt):
    api = Api(simulator)
    fields = ["id", "company", "address", "notes__c", "firstName"]
    job, body = api.export(JAN, fields, format=fmt)
    assert job["format"] == fmt
    rows = parse(body, fmt)
    assert rows[0] == fields and len(rows) - 1 == job["numberOfRecords"]
    assert all(len(r) == len(fields) for r in rows)
    delim = "\t" if fmt == "TSV" else ";"
    assert any(delim in v for r in rows for v in r)


def test_column_header_names(simulator):
    api = Api(simulator)
    _, body = api.export(
        JAN,
        ["id", "email", "firstName"],
        columnHeaderNames={"email": "Email Address", "id": 'Lead "ID", main'},
    )
    assert parse(body)[0] == ['Lead "ID", main', "Email Address", "firstName"]


def test_same_seed_gives_identical_files(simulator_factory):
    a, b = simulator_factory(seed=11, status_interval=0.05), simulator_factory(seed=11)
    c = simulator_factory(seed=12, status_interval=0.05)
    bodies = []
    for sim in (a, b, c):
        job, body = Api(sim).export(JAN, ALL)
        assert sha(body) == job["fileChecksum"]
        bodies.append(body)
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


def test_identical_jobs_reuse_the_file(simulator):
    api = Api(simulator)
    j1, b1 = api.export(JAN, ["id", "email"])
    j2, b2 = api.export(JAN, ["id", "email"])
    assert j1["exportId"] != j2["exportId"] and b1 == b2
    assert j1["fileChecksum"] == j2["fileChecksum"]
    assert simulator.state()["quota_used_bytes"] == 2 * j1["fileSize"]
