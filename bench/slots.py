"""Row 6: slot use. A backfill of N daily partitions through the Dagster daemon (the project's
dagster.yaml and pools: `marketo_bulk_export` 2, `duckdb` 1), every Marketo job with the same
processing time P; makespan vs the ideal schedule with both Marketo slots always busy.

Makespan: from the moment the daemon creates the backfill's first run (when its 30-second backfill
tick comes round is luck, not scheduling) to the end of the last run. Sensors and schedules are
stopped first, so that only the backfill runs.

Ideal = O + ceil(N/2) x P, where O is the overhead no schedule can avoid: run and step start,
describe/create/enqueue before the first job, the last poll, download and load after the last
job. O is measured as the makespan of a one-partition backfill minus its P, run after the main
backfill on the same daemon (so the main backfill, not O, pays any warm-up). When that does not
fit in the time budget (or in --quick), O is the main backfill's own head (first run created ->
first job started) plus tail (last job finished -> last run ended), which is larger (four runs
start at once on two cores) and so favours us; the note says which was used.

Everything must end by the deadline the runner gives (make bench must stay under 15 minutes):
a backfill still running then is reported as missed with its makespan so far as a lower bound.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from datetime import datetime
from pathlib import Path

from bench.common import Row, run_worker, say
from bench.transfer import dagster_home


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def measure(
    profile, work: Path, deadline: float, pools: dict | None = None, yaml_extra: str = ""
) -> Row:
    """`deadline`: time.monotonic() value by which the worker must be done. `pools` (pool limits)
    and `yaml_extra` (lines added under `concurrency: pools:` in dagster.yaml) are for what-if
    runs only; `make bench` measures the project's own settings."""
    from marketo_assets.simulator.process import run_simulator

    n, p, per_day = profile.slot_partitions, profile.slot_processing, profile.slot_rows_per_day
    days = n + 1
    keys = [f"2025-01-{d:02d}" for d in range(1, n + 1)]
    single = f"2025-01-{n + 1:02d}"
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
        home = dagster_home(run_dir / "dagster_home")
        if yaml_extra:
            yaml = (home / "dagster.yaml").read_text()
            yaml = yaml.replace("  pools:\n", "  pools:\n" + yaml_extra, 1)
            (home / "dagster.yaml").write_text(yaml)
        env = {
            "DAGSTER_HOME": str(home),
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
        phases = [{"name": "main", "keys": keys, "rows_per_second": rps}]
        if profile.slot_single:
            # The one-partition backfill first: it measures O, and the main backfill then runs
            # on a ledger with history, as every backfill but a new install's very first (whose
            # first job runs alone to learn the size, docs/QUOTA.md; one P once).
            phases.insert(0, {"name": "single", "keys": [single], "rows_per_second": rps})
        # The worker stops 15 s before the deadline: stopping the daemon and its runs takes time.
        budget = deadline - time.monotonic() - 15
        cfg = {
            "dir": str(run_dir),
            "deadline": time.time() + budget,
            "phases": phases,
            "pools": pools or {},
        }
        res = run_worker(
            ["slots", json.dumps(cfg)], env=env, log=work / "slots.log", timeout=budget + 60
        )
        jobs = sim.state()["jobs"]
    got = {ph["name"]: ph for ph in res.data["phases"]}
    main = got["main"]
    if main["status"] not in ("COMPLETED_SUCCESS", "TIMED_OUT"):
        raise RuntimeError(f"backfill ended {main['status']} (log: {work / 'slots.log'})")

    by_key = {j["filter"]["createdAt"]["startAt"][:10]: j for j in jobs}
    finished = [by_key[k] for k in keys if by_key.get(k, {}).get("finishedAt")]
    nominal = {k: j["numberOfRecords"] / rps for k, j in by_key.items() if j.get("numberOfRecords")}
    p_mean = statistics.mean(nominal[k] for k in keys if k in nominal) if nominal else p
    t0 = main["submitted"] + main["first_run_created"]
    head = tail = None
    if finished:
        head = min(_when(j["startedAt"]) for j in finished) - t0
        tail = main["makespan"] - (max(_when(j["finishedAt"]) for j in finished) - t0)
    one = got.get("single", {})
    if one.get("status") == "COMPLETED_SUCCESS" and single in nominal:
        overhead = one["makespan"] - nominal[single]
        how = f"O = one-partition makespan {one['makespan']:.1f} s - its P {nominal[single]:.1f} s"
    elif head is not None and main["status"] != "TIMED_OUT":
        overhead = head + tail
        how = (
            f"O = this backfill's head {head:.1f} s + tail {tail:.1f} s (no one-partition "
            "backfill in this profile / time budget: favours us)"
        )
    else:
        overhead = 0.0
        how = "O unknown (timed out): ideal without overhead"
    ideal = overhead + math.ceil(n / 2) * p_mean
    makespan = main["makespan"]
    timed_out = main["status"] == "TIMED_OUT"

    busy = sum(_when(j["finishedAt"]) - _when(j["startedAt"]) for j in finished)
    span = (
        max(_when(j["finishedAt"]) for j in finished) - min(_when(j["startedAt"]) for j in finished)
        if finished
        else 0.0
    )
    gap = (2 * span - busy) / max(1, len(finished) - 2) if finished else None
    if timed_out:
        say(f"  stopped after {makespan:.0f} s: {main['runs_done']} of {n} runs done")
    else:
        say(f"  makespan {makespan:.1f} s, ideal {ideal:.1f} s (O = {overhead:.1f} s)")
    notes = [how]
    if span:
        notes.append(
            f"Marketo slots busy {100 * busy / (2 * span):.0f}% between first start and last "
            f"finish, ~{gap:.1f} s idle per hand-over"
        )
    if head is not None:
        notes.append(
            f"first job started {head:.1f} s after the first run was created; last run ended "
            f"{tail:.1f} s after the last job finished"
        )
    notes.append(
        f"daemon picked the backfill up after {main['first_run_created']:.0f} s (not counted); "
        f"poll interval and status refresh {profile.slot_tick:g} s (Marketo: 60 s)"
    )
    if one.get("status") == "COMPLETED_SUCCESS":
        notes.append(
            "the one-partition backfill ran first: the 12 run on a ledger with history (a new "
            "ledger's very first job runs alone, docs/QUOTA.md)"
        )
    if timed_out:
        notes.insert(0, f"time budget ran out: {main['runs_done']} of {n} runs done")
    return Row(
        "6",
        f"Backfill of {n} partitions through the daemon, Marketo processing P = {p_mean:.1f} s "
        f"each: makespan vs ideal O + ceil({n}/2) x P",
        makespan,
        ideal,
        "s",
        "≤ 1.15x",
        False if timed_out else makespan / ideal <= 1.15,
        ours_text=(f"> {makespan:.0f} s (stopped)" if timed_out else f"{makespan:.1f} s"),
        reference_text=f"{ideal:.1f} s (O {overhead:.1f} + {math.ceil(n / 2)} x {p_mean:.1f})",
        details={
            "processing_nominal": {k: round(v, 2) for k, v in nominal.items()},
            "overhead": overhead,
            "single": {k: v for k, v in one.items() if k != "runs"},
            "timed_out": timed_out,
            "runs_done": main["runs_done"],
            "slot_utilisation": round(busy / (2 * span), 3) if span else None,
            "idle_per_handoff": round(gap, 2) if gap is not None else None,
            "head": head,
            "tail": tail,
            "stopped_instigators": res.data.get("stopped"),
            "runs": main["runs"],
            "jobs": [
                {k: j.get(k) for k in ("startedAt", "finishedAt", "queuedAt", "numberOfRecords")}
                for j in finished
            ],
            "note": "; ".join(notes),
        },
    )
