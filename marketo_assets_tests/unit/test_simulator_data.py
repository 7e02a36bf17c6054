"""Simulator internals: data set, file rendering, range parsing, validation, fault specs."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from marketo_assets.simulator.data import EXPORTABLE, FIELDS, DataSet, iso, parse_day
from marketo_assets.simulator.faults import Faults, flip, parse_spec
from marketo_assets.simulator.files import escape, render_row, write_export
from marketo_assets.simulator.jobs import ApiError, validate_request
from marketo_assets.simulator.server import _parse_range

ALL = list(EXPORTABLE)


@pytest.fixture(scope="module")
def ds() -> DataSet:
    return DataSet(3000, 7, "2025-01-01", "2025-07-01")


def test_same_seed_same_data(ds):
    again = DataSet(3000, 7, "2025-01-01", "2025-07-01")
    other = DataSet(3000, 8, "2025-01-01", "2025-07-01")
    assert again.created == ds.created
    assert other.created != ds.created
    assert [again.lead_values(i) for i in range(1, 200)] == [
        ds.lead_values(i) for i in range(1, 200)
    ]


def test_created_sorted_in_range_with_boundaries(ds):
    c = list(ds.created)
    assert c == sorted(c) and ds.start <= c[0] and c[-1] < ds.end
    texts = {iso(t) for t in c}
    for m in range(1, 7):
        assert f"2025-{m:02d}-01T00:00:00Z" in texts
    for last in (
        "2025-01-31",
        "2025-02-28",
        "2025-03-31",
        "2025-04-30",
        "2025-05-31",
        "2025-06-30",
    ):
        assert f"{last}T23:59:59Z" in texts
    assert all(ds.updated_of(i) >= ds.created[i - 1] for i in range(1, ds.n + 1))


def test_tiny_data_set_still_starts():
    small = DataSet(3, 1, "2025-01-01", "2025-07-01")
    assert len(small.created) == 3


def test_field_catalog():
    types = {f.data_type for f in FIELDS}
    assert {
        "string",
        "email",
        "phone",
        "integer",
        "float",
        "currency",
        "percent",
        "score",
        "boolean",
        "date",
        "datetime",
        "text",
        "reference",
        "url",
        "formula",
    } <= types
    assert 35 <= len(FIELDS) <= 50
    assert {"customerTier__c", "npsScore__c", "lastProductSeen__c"} <= {f.name for f in FIELDS}
    assert "fullNameFormula" not in EXPORTABLE


@pytest.mark.parametrize("fmt", ["CSV", "TSV", "SSV"])
def test_fast_rows_equal_slow_rows(ds, tmp_path, fmt):
    """The template fast path renders exactly what lead_values + render_row give."""
    path = tmp_path / "f"
    rows, size, digest = write_export(ds, range(1, ds.n + 1), ALL, fmt, {}, str(path), {}, {})
    body = path.read_bytes()
    assert rows == ds.n and size == len(body) and digest == hashlib.sha256(body).hexdigest()
    delim = {"CSV": ",", "TSV": "\t", "SSV": ";"}[fmt]
    expected = "".join(render_row(ds.lead_values(i), ALL, delim) for i in range(1, ds.n + 1))
    assert body.decode().split("\n", 1)[1] == expected
    parsed = list(csv.reader(io.StringIO(body.decode(), newline=""), delimiter=delim))
    assert len(parsed) == ds.n + 1 and all(len(r) == len(ALL) for r in parsed)


def test_overrides_and_changes_in_files(tmp_path):
    ds = DataSet(100, 7, "2025-01-01", "2025-07-01")
    ds.update_lead(5, {"firstName": 'Ann "A", B', "isPartner__c": True}, 1_800_000_000)
    path = tmp_path / "f"
    write_export(
        ds,
        range(1, 101),
        ["id", "firstName", "isPartner__c", "updatedAt"],
        "CSV",
        {"id": "ID"},
        str(path),
        ds.overrides,
        ds.changed,
    )
    lines = path.read_text().split("\n")
    assert lines[0] == "ID,firstName,isPartner__c,updatedAt"
    assert lines[5] == f'5,"Ann ""A"", B",true,{iso(1_800_000_000)}'
    with pytest.raises(ValueError):
        ds.update_lead(5, {"id": 3}, 0)


def test_updated_at_never_after_the_clock_at_start(tmp_path):
    """The clock (as_of) inside the data set: no lead or list is updated in the future; the
    file writer's fast path and the updatedAt filter agree with lead_values."""
    as_of = parse_day("2025-06-20T12:00:00Z")
    ds = DataSet(3000, 7, "2025-01-01", "2025-07-01", as_of=as_of)
    assert ds.as_of == as_of
    upd = ds.updated_array()
    for i in range(1, ds.n + 1):
        c, u = ds.created[i - 1], ds.updated_of(i)
        assert u == upd[i - 1] and c <= u
        assert u <= as_of if c <= as_of else u == c
    assert sum(as_of - 86400 < u <= as_of for u in upd) > 0  # some updated in the last day
    assert all(lst.updated <= as_of for lst in ds.lists.values())
    # far from the clock the seeded values are unchanged
    far = DataSet(3000, 7, "2025-01-01", "2025-07-01")
    assert [far.updated_of(i) for i in range(1, 500)] == [ds.updated_of(i) for i in range(1, 500)]
    path = tmp_path / "f"
    write_export(ds, range(1, ds.n + 1), ["id", "updatedAt"], "CSV", {}, str(path), {}, {})
    lines = path.read_text().split("\n")[1:-1]
    assert lines == [f"{i},{ds.lead_values(i)['updatedAt']}" for i in range(1, ds.n + 1)]
    day = ds.ids_updated(as_of - 86400, as_of)
    assert day and all(as_of - 86400 <= ds.updated_of(i) <= as_of for i in day)


def test_escape():
    assert escape(None, ",") == "null"
    assert escape("plain", ",") == "plain"
    assert escape('a "b"', ",") == '"a ""b"""'
    assert escape("a\tb", "\t") == '"a\tb"' and escape("a\tb", ",") == "a\tb"
    assert escape("x\ry", ";") == '"x\ry"' and escape("nul\x00", ",") == "nul\x00"


def test_parse_range():
    assert _parse_range("bytes=0-9", 100) == (0, 9)
    assert _parse_range("bytes=90-", 100) == (90, 99)
    assert _parse_range("bytes=-10", 100) == (90, 99)
    assert _parse_range("bytes=50-500", 100) == (50, 99)
    assert _parse_range("bytes=100-", 100) == "unsatisfiable"
    assert _parse_range("bytes=5-1", 100) is None
    assert _parse_range("items=0-1", 100) is None


def _req(**kw):
    body = {
        "fields": ["id"],
        "filter": {
            "createdAt": {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-01-31T00:00:00Z"}
        },
    }
    body.update(kw)
    return body


def test_validate_request(ds):
    req, sel = validate_request(ds, _req(format="ssv"), set())
    assert req["format"] == "SSV" and sel.kind == "createdAt"
    assert sel.end - sel.start == 30 * 86400
    with pytest.raises(ApiError, match="31 days"):
        validate_request(
            ds,
            _req(
                filter={
                    "updatedAt": {
                        "startAt": "2025-01-01T00:00:00Z",
                        "endAt": "2025-02-02T00:00:00Z",
                    }
                }
            ),
            set(),
        )
    with pytest.raises(ApiError) as e:
        validate_request(ds, _req(filter={"smartListId": 5001}), {"smartList"})
    assert e.value.code == "1035"
    with pytest.raises(ApiError, match="unknown request keys"):
        validate_request(ds, _req(extra=1), set())


def test_fault_specs():
    assert parse_spec("flaky, corrupt") == (["flaky", "corrupt"], {})
    assert parse_spec({"profiles": "job-fail", "job_fail_times": 3}) == (
        ["job-fail"],
        {"job_fail_times": 3},
    )
    assert parse_spec({"stuck-queue": {"stuck_seconds": 5}}) == (
        ["stuck-queue"],
        {"stuck_seconds": 5},
    )
    f = Faults(seed=1)
    with pytest.raises(ValueError):
        f.set("nonsense")
    with pytest.raises(ValueError):
        f.set({"profiles": ["flaky"], "bogus_option": 1})
    f.set("download-resets")
    plans = [f.download_plan("x", 100) for _ in range(4)]
    assert [p[0] for p in plans] == [50, 50, 50, None]
    assert f.download_plan("y", 1) == (None, False)


def test_flip_changes_three_bytes_across_chunks():
    data = bytes(range(100))
    whole = flip(data, 0, 0, 100)
    parts = flip(data[:40], 0, 0, 100) + flip(data[40:], 40, 0, 100)
    assert whole == parts and sum(a != b for a, b in zip(whole, data, strict=True)) == 3


def test_control_api_is_loopback_only():
    from marketo_assets.simulator.server import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1")
    assert not _is_loopback("10.0.0.5") and not _is_loopback(None)


def test_cli_rejects_bad_options(capsys):
    from marketo_assets.simulator.cli import parse_args

    for argv in (
        ["--faults", "flaky,bogus"],
        ["--created-from", "2025-07-01"],
        ["--leads", "0"],
        ["--client", "nocolon"],
    ):
        with pytest.raises(SystemExit):
            parse_args(argv)
    assert "bogus" in capsys.readouterr().err
    args = parse_args(["--faults", "flaky,corrupt", "--disable-filter", "updatedAt"])
    assert args.faults == "flaky,corrupt" and args.disable_filter == ["updatedAt"]
