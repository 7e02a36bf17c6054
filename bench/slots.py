"""Row 6: slot use. A backfill of N daily partitions through the Dagster daemon (the project's
dagster.yaml and pools: `marketo_bulk_export` 2, `duckdb` 1), every Marketo job with the same
processing time P; makespan vs the ideal schedule with both Marketo slots always busy.

Makespan: from the moment the daemon creates the backfill's first run (when its 30-second backfill
tick comes round is luck, not scheduling) to the end of the last run. Sensors and schedules are
stopped first, so that only the backfill runs.

Ideal = O + ceil(N/2) x P, where O, the overhead no schedule can avoid (daemon pick-up, run and
step start, describe/create/enqueue before the first job, poll, download and load after the
last), is measured as the makespan of a one-partition backfill minus its P, on the same warm
daemon. Phases: warm-up (one partition, P = 0: the daemon loads the code location), the
one-partition backfill, then the N-partition backfill.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import datetime
from pathlib import Path

from bench.common import Row, run_worker, say
from bench.transfer import dagster_home


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def measure(profile, work: Path) -> Row:
    from marketo_assets.simulator.process import run_simulator

    n, p, per_day = profile.slot_partitions, profile.slot_processing, profile.slot_rows_per_day
    days = n + 2
    keys = [f"2025-01-{d:02d}" for d in range(1, n + 1)]
    single, warm = f"2025-01-{n + 1:02d}", f"2025-01-{n + 2:02d}"
    say(f"row 6: slot use, {n} partitions, P = {p:g} s, through the daemon …")
    with run_simulator(
        leads=per_day * days,
        created_from="2025-01-01",
        created_to=f"2025-01-{days + 1:02d}",
        status_interval=profile.slot_tick,
        rows_per_second=0,
        quota_mb=1_000_000,
    ) as sim:
        run_dir = work / "slots"
        env = {
            "DAGSTER_HOME": str(dagster_home(run_dir / "dagster_home")),
            "MARKETO_BASE_URL": sim.base_url,
            "MARKETO_CLIENT_ID": sim.client_id,
            "MARKETO_CLIENT_SECRET": sim.client_secret,
            "MARKETO_POLL_INTERVAL": str(profile.slot_tick),
            "MARKETO_JOB_TIMEOUT": "1800",
            "MARKETO_DAILY_QUOTA_MB": "1000000",
            "MARKETO_PARTITION_WINDOW": "daily",
            "MARKETO_PARTITION_START": "2025-01-01",
            "MARKETO_FIELDS": "id,email,createdAt,updatedAt",
            "DUCKDB_PATH": str(run_dir / "marketo.duckdb"),
            "MARKETO_STAGING_DIR": str(run_dir / "exports"),
            "MARKETO_LEDGER_PATH": str(run_dir / "ledger.sqlite"),
        }
        rps = per_day / p
        cfg = {
            "dir": str(run_dir),
            "timeout": 900,
            "phases": [
                {"name": "warm-up", "keys": [warm], "rows_per_second": 0},
                {"name": "single", "keys": [single], "rows_per_second": rps},
                {"name": "main", "keys": keys, "rows_per_second": rps},
            ],
        }
        res = run_worker(["slots", json.dumps(cfg)], env=env, log=work / "slots.log", timeout=1200)
        jobs = sim.state()["jobs"]
    phases = {ph["name"]: ph for ph in res.data["phases"]}
    for ph in phases.values():
        if ph["status"] != "COMPLETED_SUCCESS":
            raise RuntimeError(f"backfill {ph['name']} ended {ph['status']} (log: {work})")

    by_key = {j["filter"]["createdAt"]["startAt"][:10]: j for j in jobs}
    nominal = {k: by_key[k]["numberOfRecords"] / rps for k in [*keys, single]}
    p_mean = statistics.mean(nominal[k] for k in keys)
    m1 = phases["single"]["makespan"]
    overhead = m1 - nominal[single]
    ideal = overhead + math.ceil(n / 2) * p_mean
    makespan = phases["main"]["makespan"]

    # Marketo's side: how busy the two slots were between the first start and the last finish.
    main_jobs = [by_key[k] for k in keys]
    first = min(_when(j["startedAt"]) for j in main_jobs)
    last = max(_when(j["finishedAt"]) for j in main_jobs)
    busy = sum(_when(j["finishedAt"]) - _when(j["startedAt"]) for j in main_jobs)
    span = last - first
    gap = (2 * span - busy) / max(1, n - 2)
    t0 = phases["main"]["submitted"] + phases["main"]["first_run_created"]
    head = first - t0
    tail = makespan - (last - t0)
    say(f"  makespan {makespan:.1f} s, ideal {ideal:.1f} s (O = {overhead:.1f} s)")
    return Row(
        "6",
        f"Backfill of {n} partitions through the daemon, Marketo processing P = {p_mean:.1f} s "
        f"each: makespan vs ideal O + ceil({n}/2) x P",
        makespan,
        ideal,
        "s",
        "≤ 1.15x",
        makespan / ideal <= 1.15,
        reference_text=f"{ideal:.1f} s (O {overhead:.1f} + {math.ceil(n / 2)} x {p_mean:.1f})",
        ours_text=f"{makespan:.1f} s",
        details={
            "processing_nominal": {k: round(v, 2) for k, v in nominal.items()},
            "single_makespan": m1,
            "overhead": overhead,
            "warmup_makespan": phases["warm-up"]["makespan"],
            "daemon_pickup": {k: round(v["first_run_created"], 2) for k, v in phases.items()},
            "stopped_instigators": res.data.get("stopped"),
            "slot_utilisation": round(busy / (2 * span), 3) if span else None,
            "idle_per_handoff": round(gap, 2),
            "head": round(head, 2),
            "tail": round(tail, 2),
            "runs": phases["main"]["runs"],
            "jobs": [
                {k: j.get(k) for k in ("startedAt", "finishedAt", "queuedAt", "numberOfRecords")}
                for j in main_jobs
            ],
            "note": (
                f"O = one-partition makespan {m1:.1f} s - its P {nominal[single]:.1f} s; "
                f"Marketo slots busy {100 * busy / (2 * span):.0f}% between first start and "
                f"last finish, ~{gap:.1f} s idle per hand-over; first job started {head:.1f} s "
                f"after the first run was created, last run ended {tail:.1f} s after the last "
                "job finished; makespans count from the daemon's creation of the first run "
                f"(its 30 s backfill tick took {phases['main']['first_run_created']:.0f} s here); "
                f"poll interval and status refresh {profile.slot_tick:g} s (Marketo: 60 s)"
            ),
        },
    )
