"""The ledger work of one lead partition run with a year of history in the ledger (issue 17).

`python -m bench.ledger_history [--entries 3000] [--repeats 7]` seeds an SQLite ledger with
`--entries` exports as the product records them (three families, daily partitions, reruns,
every status) and times, per call site, the ledger reads one lead partition run makes (export
step, load step, and the definitions load of its run process), next to an empty ledger: their
cost should not grow with the history. Rows read are counted at the store (`_rows`).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from marketo_assets.extract import quota
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.extract.ledger_base import Ledger
from marketo_assets.extract.load import header_columns
from marketo_assets.extract.staging import clean_staging

LEAD_FIELDS = ["id", "email", "firstName", "lastName", "company", "title", "phone", "city",
               "state", "country", "leadSource", "leadStatus", "leadScore", "createdAt",
               "updatedAt"]  # fmt: skip
FAMILIES = (  # asset, export type, fields
    ("marketo/leads", "leads", LEAD_FIELDS),
    (
        "marketo/activities",
        "activities",
        ["marketoGUID", "leadId", "activityDate", "activityTypeId", "attributes"],
    ),
    (
        "marketo/program_members",
        "program_members",
        ["leadId", "programId", "statusName", "membershipDate"],
    ),
)
PARTITION = "2026-01-15"  # the lead partition the measured run exports and loads
T0 = datetime(2026, 1, 16, 6, tzinfo=UTC)


def seed(ledger: Ledger, entries: int, root: Path, seed_value: int = 17) -> None:
    """`entries` exports ending the day before T0: one a day per family (program members per
    program), ~10% reruns, statuses as runs leave them, all in one transaction."""
    rng = random.Random(seed_value)
    rows = []
    day = 0
    while len(rows) < entries:
        for asset, kind, fields in FAMILIES:
            if len(rows) >= entries:
                break
            start = T0 - timedelta(days=day + 1)
            key = f"{3000 + day % 60}" if kind == "program_members" else f"{start.date()}"
            for attempt in range(2 if rng.random() < 0.1 else 1):
                created = start + timedelta(hours=7, minutes=attempt * 30 + rng.randrange(30))
                status = rng.choices(
                    ["loaded", "failed", "superseded", "expired", "cancelled"],
                    [90, 4, 3, 2, 1],
                )[0]
                export_id = f"{len(rows):08x}-0000-4000-8000-{rng.randrange(16**12):012x}"
                request = {
                    "export_type": kind,
                    "payload": {
                        "fields": list(fields),
                        "format": "CSV",
                        "filter": {
                            "createdAt": {
                                "startAt": f"{start.date()}T00:00:00Z",
                                "endAt": f"{start.date()}T23:59:59Z",
                            }
                        },
                    },
                }
                records = rng.randrange(0, 50_000) if status != "failed" else None
                done = created + timedelta(minutes=rng.randrange(2, 40))
                rows.append(
                    (export_id, asset, key, f"h{kind}{key}", request, status, created, records,
                     done if records is not None else None)
                )  # fmt: skip
        day += 1
    with ledger._write() as tx:
        for export_id, asset, key, rhash, request, status, created, records, done in rows:
            stamp = created.isoformat(timespec="seconds")
            tx.run(
                "INSERT INTO exports (export_id, asset, partition_key, request_hash,"
                " request_json, status, run_id, created_at, queued_at, started_at, finished_at,"
                " downloaded_at, loaded_at, records, bytes, checksum, staged_file, error,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (export_id, asset, key, rhash, json.dumps(request, sort_keys=True), status,
                 f"run-{export_id[:8]}", stamp, stamp, stamp,
                 done.isoformat() if done else None, done.isoformat() if done else None,
                 done.isoformat() if status == "loaded" and done else None, records,
                 None if records is None else 80 + records * 120, None,
                 str(root / f"{export_id}.csv") if records is not None else None,
                 "failed" if status == "failed" else None, stamp),
            )  # fmt: skip


class Counted:
    """Counts the calls and rows of a ledger's `_rows` while installed."""

    def __init__(self, ledger: Ledger):
        self.ledger, self.calls, self.rows = ledger, 0, 0
        self._original = ledger._rows

    def __enter__(self) -> Counted:
        def rows(sql: str, params: Any = ()) -> list[dict[str, Any]]:
            out = self._original(sql, params)
            self.calls += 1
            self.rows += len(out)
            return out

        self.ledger._rows = rows  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.ledger._rows


def _quota_check(ledger: Ledger) -> object:
    """The export step's quota check (prediction, jobs in flight), as export.py makes it (or
    made it before `quota.History`: to compare with an older tree, run this file in it)."""
    exclude = {("marketo/leads", PARTITION)}
    if hasattr(quota, "History"):
        history = quota.History.read(ledger)
        return history.predict("marketo/leads", PARTITION, "x", LEAD_FIELDS), history.in_flight(
            exclude=exclude
        )
    entries = ledger.entries()
    return quota.predict(entries, "marketo/leads", PARTITION, "x", LEAD_FIELDS), quota.in_flight(
        entries, exclude=exclude
    )


def call_sites(root: Path) -> dict[str, Callable[[Ledger], object]]:
    """The ledger reads of one lead partition run whose cost could depend on the history."""
    return {
        "definitions load: check_budget (smallest_job)": quota.smallest_job,
        "export step: clean_staging (file_states)": lambda led: clean_staging(root, led, 86400),
        "export step: active job of the partition": lambda led: led.active(
            "marketo/leads", PARTITION, "x"
        ),
        "export step: quota check (predict, in flight)": _quota_check,
        "load step: clean_staging (file_states)": lambda led: clean_staging(root, led, 86400),
        "load step: latest_downloaded": lambda led: led.latest_downloaded(
            "marketo/leads", PARTITION
        ),
        "load step: header_columns (rename lookup)": lambda led: header_columns(
            led, "marketo/leads"
        ),
        "load step: quota usage table (usage_rows)": lambda led: quota.usage_rows(led, 10**9),
    }


def measure(entries: int, repeats: int, work: Path) -> dict[str, tuple[float, int]]:
    """{call site: (median ms, rows read)} with `entries` seeded exports."""
    root = work / f"staging-{entries}"
    root.mkdir(parents=True, exist_ok=True)
    ledger = ExportLedger(work / f"ledger-{entries}.sqlite")
    if entries:
        seed(ledger, entries, root)
    out: dict[str, tuple[float, int]] = {}
    for name, call in call_sites(root).items():
        times = []
        for _ in range(repeats):
            with Counted(ledger) as counted:
                t0 = time.perf_counter()
                call(ledger)
                times.append(time.perf_counter() - t0)
        out[name] = (statistics.median(times) * 1000, counted.rows)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        empty = measure(0, args.repeats, Path(tmp))
        full = measure(args.entries, args.repeats, Path(tmp))
    print(f"{'call site':48} {'empty ms':>9} {'rows':>5} {args.entries:>6,} ms {'rows':>5}")
    for name, (ms, rows) in full.items():
        print(f"{name:48} {empty[name][0]:9.1f} {empty[name][1]:5} {ms:9.1f} {rows:5}")
    total_e = sum(v[0] for v in empty.values())
    total_f = sum(v[0] for v in full.values())
    print(f"{'total':48} {total_e:9.1f} {'':5} {total_f:9.1f}")


if __name__ == "__main__":
    main()
