"""A ledger with a long history (issue 17): each read a run makes returns what reading every
entry and filtering in Python returned (the reference functions below are the code before the
change), on both stores; an existing ledger gets the new index; and the rows a partition's run
reads do not grow with the history."""

from __future__ import annotations

import json
import math
import os
import random
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.ledger_history import Counted, call_sites, seed
from marketo_assets.extract import quota
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.extract.ledger_base import ACTIVE, Ledger, LedgerEntry
from marketo_assets.extract.ledger_postgres import PostgresLedger
from marketo_assets.extract.load import header_columns

ASSETS = ["marketo/leads", "marketo/activities", "marketo/program_members"]
FIELD_LISTS = [["id"], ["id", "email"], ["email", "id"], ["id", "x", "y"], None]
KEYS = [f"2026-01-0{d}" for d in range(1, 6)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request, tmp_path, monkeypatch) -> Ledger:
    if request.param == "sqlite":
        return ExportLedger(tmp_path / "ledger.sqlite")
    server = request.getfixturevalue("pg_server")
    for name, value in server.libpq_env("postgres").items():
        monkeypatch.setenv(name, value)
    schema = "h_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
    return PostgresLedger(schema=f"{schema}_{os.getpid()}")


def _random_history(ledger: Ledger, root: Path, entries: int = 400) -> None:
    """Every kind of entry the product records: field lists in any order or none, export
    types or none, header names, every status, empty and sized files, jobs in flight, files
    staged inside and outside the staging folder, finish times in two offsets."""
    rng = random.Random(17)
    now = datetime.now(UTC)
    for i in range(entries):
        export_id = f"{i:08X}-0000-4000-8000-000000000000"
        payload: dict = {}
        fields = rng.choice(FIELD_LISTS)
        if fields is not None:
            payload["fields"] = fields
        if rng.random() < 0.05:
            payload["columnHeaderNames"] = {"email": rng.choice(["Email", "e_mail"]), "id": "ID"}
        request: dict = {"payload": payload}
        if rng.random() < 0.7:
            request["export_type"] = rng.choice(["leads", "activities", "program_members"])
        status = rng.choice([*ACTIVE, "loaded", "loaded", "loaded", "failed", "superseded"])
        ledger.record_created(export_id=export_id, asset=rng.choice(ASSETS),
                              partition_key=rng.choice(KEYS), request_hash=rng.choice("abc"),
                              request=request, status=status)  # fmt: skip
        values: dict = {}
        if rng.random() < 0.8:
            records = rng.choice([0, rng.randrange(1, 5000)])
            values.update(records=records, bytes=40 + records * rng.randrange(9, 99))
        if rng.random() < 0.8:
            finished = now - timedelta(hours=rng.randrange(0, 24 * 20))
            offset = rng.choice([UTC, datetime.now().astimezone().tzinfo])
            values["finished_at"] = finished.astimezone(offset).isoformat()
        staged = rng.choice([None, str(root / f"{export_id}.csv"), f"/elsewhere/{export_id}.csv"])
        if staged:
            values["staged_file"] = staged
        if values:
            ledger.update(export_id, **values)
        if rng.random() < 0.7:  # created earlier (the rest: now, the same second, in order)
            created = (now - timedelta(hours=rng.choice([3, 30, 300]))).isoformat(
                timespec="seconds"
            )
            with ledger._write() as tx:
                tx.run(
                    "UPDATE exports SET created_at = ? WHERE export_id = ?", (created, export_id)
                )


# ------------------------------------------------------------ the code before the change
def _old_predict(entries, asset, partition_key, request_hash, fields, member_rows=None):
    def fields_of(e: LedgerEntry) -> tuple[str, ...]:
        return tuple(sorted(e.request.get("payload", {}).get("fields", [])))

    def sized_of(es):
        return [e for e in es if e.records is not None and e.bytes is not None]

    sized = sized_of([e for e in entries if e.asset == asset])
    if not sized:
        others = sized_of(entries)
        if not others:
            return quota.Prediction(None, None, None, "no history")
        average = sum(e.bytes or 0 for e in others) / len(others)
        return quota.Prediction(math.ceil(average * quota.HEADROOM), None, None,
                                "average export of any type")  # fmt: skip
    wanted = tuple(sorted(fields))
    same_fields = [e for e in sized if fields_of(e) == wanted and (e.records or 0) > 0]
    basis_rows = same_fields or [e for e in sized if (e.records or 0) > 0]
    if basis_rows:
        per_row = sum(e.bytes or 0 for e in basis_rows) / sum(e.records or 0 for e in basis_rows)
    else:
        per_row = float(max(e.bytes or 0 for e in sized))
    same_request = [e for e in sized if e.partition_key == partition_key]
    exact = [e for e in same_request if e.request_hash == request_hash]
    if member_rows is not None:
        rows, basis = member_rows, "last rows of the batch's partitions"
    elif exact or same_request:
        rows, basis = float((exact or same_request)[-1].records or 0), "last export of this window"
    else:
        rows = sum(e.records or 0 for e in sized) / len(sized)
        basis = "average export of this type"
    size = math.ceil(max(rows, 1.0) * per_row * quota.HEADROOM)
    return quota.Prediction(size, per_row, rows, basis)


def _old_predict_entry(entries, e):
    fields = e.request.get("payload", {}).get("fields", [])
    return _old_predict(entries, e.asset, e.partition_key, e.request_hash, fields).bytes


def _old_in_flight(entries, exclude):
    since = datetime.now(UTC) - timedelta(hours=quota.IN_FLIGHT_HOURS)
    total = unknown = 0
    for e in entries:
        if e.status not in quota.IN_FLIGHT or (e.asset, e.partition_key) in exclude:
            continue
        if datetime.fromisoformat(e.created_at) < since:
            continue
        size = _old_predict_entry(entries, e)
        unknown, total = (unknown + 1, total) if size is None else (unknown, total + size)
    return total, unknown


def _old_usage(entries, budget):
    days: dict = {}
    for e in entries:
        if e.finished_at is None or e.bytes is None:
            continue
        kind = str(e.request.get("export_type") or "leads")
        key = (quota.quota_day(datetime.fromisoformat(e.finished_at)), kind, e.asset)
        day = days.setdefault(key, [0, 0])
        day[0] += 1
        day[1] += e.bytes
    return [{"day": d, "export_type": k, "asset": a, "jobs": j, "bytes": b, "budget_bytes": budget}
            for (d, k, a), (j, b) in sorted(days.items())]  # fmt: skip


def _old_header_columns(entries):
    out: dict[str, str] = {}
    fields: set[str] = set()
    for e in entries:
        payload = e.request.get("payload", {})
        fields.update(name.casefold() for name in payload.get("fields", []))
        headers = payload.get("columnHeaderNames") or {}
        out.update({h: f for f, h in headers.items() if h != f})
    return {h: f for h, f in out.items() if h.casefold() not in fields}


# ------------------------------------------------------------ the tests
def test_each_history_read_returns_what_reading_every_entry_returned(ledger, tmp_path):
    root = tmp_path / "staging"
    _random_history(ledger, root, 400 if isinstance(ledger, ExportLedger) else 150)
    entries = ledger.entries()
    history = quota.History.read(ledger)
    for asset in [*ASSETS, "marketo/new"]:
        for key in [*KEYS, "2030-01-01"]:
            for request_hash in "az":
                for fields in FIELD_LISTS:
                    for rows in (None, 150.0):
                        args = (asset, key, request_hash, fields or [], rows)
                        assert history.predict(*args) == _old_predict(entries, *args), args
        assert header_columns(ledger, asset) == _old_header_columns(ledger.entries(asset))
    for exclude in ({}, {(ASSETS[0], KEYS[0]), (ASSETS[1], KEYS[1])}):
        assert history.in_flight(exclude=exclude) == _old_in_flight(entries, exclude)
    assert quota.usage_rows(ledger, 99) == _old_usage(entries, 99)
    sized = [e for e in entries if e.records is not None and e.bytes is not None]
    latest = {(e.asset, e.partition_key): e for e in sized}  # each partition's last
    assert quota.smallest_job(ledger) == min(
        (_old_predict_entry(entries, e), f"{e.asset} {e.partition_key}") for e in latest.values()
    )
    # The staging cleaner: the exports of its files, and those staged outside its folder.
    everything = ledger.file_states()
    ids = {e.export_id.lower() for e in entries[::7]} | {"not-in-the-ledger"}
    inside = str(root) + os.sep
    assert ledger.file_states(ids, outside=str(root)) == {
        k: (status, staged)
        for k, (status, staged) in everything.items()
        if k in ids or (staged and status not in ACTIVE and not staged.startswith(inside))
    }


def test_an_empty_ledger_predicts_nothing(ledger):
    history = quota.History.read(ledger)
    assert history.predict(ASSETS[0], KEYS[0], "a", ["id"]).basis == "no history"
    assert history.in_flight() == (0, 0)
    assert quota.usage_rows(ledger, 1) == [] and quota.smallest_job(ledger) is None
    assert header_columns(ledger, ASSETS[0]) == {}


def test_an_existing_sqlite_ledger_gets_the_status_index(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ExportLedger(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX exports_status")  # a ledger made before the index
    ExportLedger(path)
    with sqlite3.connect(path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM exports WHERE status IN ('created', 'queued')"
        ).fetchall()
    assert "exports_status" in str(plan)


@pytest.mark.postgres
def test_an_existing_postgres_ledger_gets_the_status_index(pg_server, monkeypatch):
    for name, value in pg_server.libpq_env("postgres").items():
        monkeypatch.setenv(name, value)
    schema = f"h_index_{os.getpid()}"
    ledger = PostgresLedger(schema=schema)
    with ledger._write() as tx:
        tx.run(f"DROP INDEX {schema}.exports_status")  # a ledger made before the index
    assert not ledger._rows("SELECT to_regclass(?) IS NOT NULL AS found",
                            [f"{schema}.exports_status"])[0]["found"]  # fmt: skip
    PostgresLedger(schema=schema)
    assert ledger._rows("SELECT to_regclass(?) IS NOT NULL AS found",
                        [f"{schema}.exports_status"])[0]["found"]  # fmt: skip


def test_the_rows_a_partition_run_reads_do_not_grow_with_the_history(tmp_path):
    """Every read of one lead partition's run (export and load step) at 300 and at 3,000
    ledger entries (a year of three families): the same rows, but for the quota usage table
    (one row per finished job: the table keeps every day) and the smallest job (one row per
    partition), both read without each entry's request."""
    read: dict[int, dict[str, int]] = {}
    for size in (300, 3000):
        root = tmp_path / f"staging-{size}"
        root.mkdir()
        ledger = ExportLedger(tmp_path / f"ledger-{size}.sqlite")
        seed(ledger, size, root)
        read[size] = {}
        for name, call in call_sites(root).items():
            with Counted(ledger) as counted:
                call(ledger)
            read[size][name] = counted.rows
    growing = {n for n in read[300] if "usage_rows" in n or "smallest_job" in n}
    assert {n: r for n, r in read[3000].items() if n not in growing} == {
        n: r for n, r in read[300].items() if n not in growing
    }
    assert all(read[3000][n] < 3000 for n in growing)
    assert json.dumps(read[3000])  # names the sites when it fails


def test_the_smallest_job_of_several_partitions_of_one_size_names_the_first(ledger):
    for i, (key, records) in enumerate(
        [("2026-01-03", 10), ("2026-01-02", 10), ("2026-01-01", 20)]
    ):
        export_id = f"e-{i}"
        request = {"payload": {"fields": ["id"]}}
        ledger.record_created(export_id=export_id, asset=ASSETS[0], partition_key=key,
                              request_hash="a", request=request)  # fmt: skip
        ledger.update(export_id, records=records, bytes=records * 100)
    entries = ledger.entries()
    size = _old_predict_entry(entries, entries[1])
    assert quota.smallest_job(ledger) == (size, f"{ASSETS[0]} 2026-01-02")


@pytest.mark.postgres
def test_the_reads_of_a_quota_check_share_one_postgres_connection(pg_server, monkeypatch):
    for name, value in pg_server.libpq_env("postgres").items():
        monkeypatch.setenv(name, value)
    ledger = PostgresLedger(schema=f"h_reading_{os.getpid()}")
    _random_history(ledger, Path("/nowhere"), 20)
    opened = []
    connect = ledger._connect
    monkeypatch.setattr(ledger, "_connect", lambda: opened.append(1) or connect())
    with ledger.reading():
        history = quota.History.read(ledger)
        prediction = history.predict(ASSETS[0], KEYS[0], "a", ["id"])
        assert ledger.file_states({"x"}, outside="/nowhere") is not None
    assert len(opened) == 1
    assert prediction == _old_predict(ledger.entries(), ASSETS[0], KEYS[0], "a", ["id"])
