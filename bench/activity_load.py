"""Row 2b: loading a bulk activity export into `marketo.activities` (typed columns, `attributes`
as JSON, atomic partition replace) vs DuckDB's own CTAS of the same file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Row, drop_files, run_worker, say

WINDOW = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC))


def measure(profile, work: Path) -> Row:
    from marketo_assets.extract.activities import ACTIVITY_FIELDS
    from marketo_assets.marketo import ActivityFilter, ClientSettings, ExportRequest, MarketoClient
    from marketo_assets.simulator.process import run_simulator

    leads = profile.activity_leads
    say(f"row 2b: activity export of {leads:,} leads' January …")
    with run_simulator(
        leads=leads,
        created_from="2025-01-01",
        created_to="2025-02-01",
        status_interval=0.2,
        rows_per_second=0,
        quota_mb=1_000_000,
        ready_timeout=120,
    ) as sim:
        settings = ClientSettings(
            base_url=sim.base_url,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            poll_interval=0.2,
        )
        request = ExportRequest(
            fields=[name for name, _ in ACTIVITY_FIELDS],
            filter=ActivityFilter(start=WINDOW[0], end=WINDOW[1]),
        )
        path = work / "activities.csv"
        with MarketoClient(settings) as client:
            job = client.create_export(request)
            job = client.wait_for_export(job.export_id, export_type="activities", timeout=900)
            client.download_export(job, path)
    size = path.stat().st_size
    say(f"  export: {job.number_of_records:,} activities, {size / 1e6:.0f} MB")
    runs: dict[str, list[dict]] = {"ctas": [], "load": []}
    for i in range(profile.load_repeats):
        for kind in ("ctas", "load") if i % 2 == 0 else ("load", "ctas"):
            db = work / f"act-{kind}.duckdb"
            cfg = {
                "db": str(db),
                "file": str(path),
                "field_types": list(ACTIVITY_FIELDS),
                "table": "marketo.activities",
            }
            runs[kind].append(run_worker([kind, json.dumps(cfg)], log=work / "worker.log").data)
            drop_files(db, db.with_suffix(".duckdb.wal"))
    drop_files(path)
    if {r["rows"] for r in runs["load"] + runs["ctas"]} != {job.number_of_records}:
        raise RuntimeError("a load did not load every activity of the file")
    ours = min(r["seconds"] for r in runs["load"])
    ctas = min(r["seconds"] for r in runs["ctas"])
    return Row(
        "2b",
        f"Load into `marketo.activities` (typed, `attributes` JSON, atomic partition replace), "
        f"{size / 1e6:.0f} MB, vs DuckDB `CREATE TABLE AS SELECT * FROM read_csv(...)`",
        ours,
        ctas,
        "s",
        "≤ 1.15x",
        ours / ctas <= 1.15,
        details={
            "rows": job.number_of_records,
            "ours": [round(r["seconds"], 3) for r in runs["load"]],
            "ctas": [round(r["seconds"], 3) for r in runs["ctas"]],
            "note": (
                f"CPU seconds (best): ours {min(r['cpu_seconds'] for r in runs['load']):.1f}, "
                f"CTAS {min(r['cpu_seconds'] for r in runs['ctas']):.1f}"
            ),
        },
    )
