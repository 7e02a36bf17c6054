"""`python -m bench.run [--quick]`: the measurements of issues 7 and 17, side by side, one table.

Writes bench/results/bench-<profile>-<time>.{json,md} and latest-<profile>.{json,md}, prints
the table. Loopback only; every step has a timeout, so the run always stops by itself. Exit
status 1 only if a measurement could not be made (a missed goal is reported, not an error).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import activity_load, api_calls, memory, slots, startup, transfer
from bench.common import RESULTS, Row, load_average, machine, missed, save, say, table_lines


@dataclass(frozen=True)
class Profile:
    name: str
    transfer_leads: int  # rows 1-3: 25 fields, ~268 bytes a row
    download_repeats: int
    reset_repeats: int
    load_repeats: int
    e2e_repeats: int
    memory_leads: tuple[int, int]  # row 4: every field, ~462 bytes a row
    job_minutes: float  # row 5
    slot_partitions: int  # row 6
    slot_processing: float
    slot_rows_per_day: int
    slot_tick: float  # poll interval and simulator status refresh in row 6
    slot_single: bool  # row 6: measure O with a one-partition backfill
    budget: float  # seconds for the whole run (row 6 gets what is left)
    activity_leads: int  # row 2b: ~8 activities a lead, all in one month
    floor_repeats: int = 3  # row 3: empty runs timed for Dagster's floor (after a warm-up)
    e2e_warm_up: bool = True  # row 3: a first, uncounted run (bytecode cache of a run's imports)
    skip_by_default: tuple[str, ...] = ()  # sections left out unless named in --only


PROFILES = {
    "full": Profile(
        name="full",
        transfer_leads=2_000_000,
        download_repeats=5,
        reset_repeats=3,
        load_repeats=3,
        e2e_repeats=3,
        memory_leads=(220_000, 2_200_000),
        job_minutes=10,
        slot_partitions=12,
        slot_processing=30.0,
        slot_rows_per_day=2000,
        slot_tick=0.5,
        slot_single=True,
        budget=840,
        activity_leads=100_000,
    ),
    # Row 6 alone takes ~2 minutes even with 4 partitions (each daemon run starts a run worker
    # and a process per step): left out of --quick unless asked for with --only slots.
    "quick": Profile(
        name="quick",
        transfer_leads=200_000,
        download_repeats=3,
        reset_repeats=2,
        load_repeats=2,
        e2e_repeats=1,
        memory_leads=(110_000, 1_100_000),  # 50 MB vs 500 MB: both fill the load bound
        job_minutes=10,
        slot_partitions=4,
        slot_processing=5.0,
        slot_rows_per_day=500,
        slot_tick=0.25,
        slot_single=False,
        budget=240,
        activity_leads=10_000,
        skip_by_default=("slots",),
    ),
    # For the smoke test: the same machinery on tiny sizes.
    "tiny": Profile(
        name="tiny",
        transfer_leads=20_000,
        download_repeats=2,
        reset_repeats=1,
        load_repeats=1,
        e2e_repeats=1,
        memory_leads=(2_000, 20_000),
        job_minutes=10,
        slot_partitions=2,
        slot_processing=1.0,
        slot_rows_per_day=100,
        slot_tick=0.25,
        slot_single=False,
        budget=300,
        activity_leads=500,
        floor_repeats=1,
        e2e_warm_up=False,
        skip_by_default=("slots",),
    ),
}
SECTIONS = ("startup", "download", "load", "activities", "e2e", "memory", "api", "slots")
KEYS = {
    "startup": ("0", "Start-up to the first Marketo call", f"≤ {startup.GOAL_SECONDS} s"),
    "download": ("1a", "Download vs curl", "≤ 1.10x"),
    "load": ("2", "Load vs CTAS", "≤ 1.15x"),
    "activities": ("2b", "Activity load vs CTAS", "≤ 1.15x"),
    "e2e": ("3", "End to end vs Marketo's wait + curl + CTAS", "≤ 1.3x"),
    "memory": ("4", "Peak RSS", "≤ 1.25x and ≤ 400 MB"),
    "api": ("5", "REST calls per export job", "≤ 1 + ceil(minutes) + 5 + 2"),
    "slots": ("6", "Slot use", "≤ 1.15x"),
}


def _failed(section: str, exc: BaseException) -> Row:
    key, figure, goal = KEYS[section]
    say(f"  {section} FAILED: {exc}")
    traceback.print_exc()
    return missed(key, figure, goal, f"{type(exc).__name__}: {exc}")


def _skipped(section: str, profile: Profile) -> Row:
    key, figure, goal = KEYS[section]
    return Row(
        key,
        figure,
        0.0,
        0.0,
        "",
        goal,
        None,
        ours_text="not run",
        reference_text="-",
        details={
            "note": f"not part of --{profile.name} by default (about 2 minutes on its own): "
            f"`python -m bench.run --{profile.name} --only {section}` or `make bench`"
        },
    )


def run(
    profile: Profile,
    only: set[str],
    out_dir: Path,
    skipped: set[str] = frozenset(),
    export_pool: int | None = None,
) -> tuple[list[Row], dict]:
    started = time.monotonic()
    meta = {
        "profile": profile.name + (f"-whatif-pool{export_pool}" if export_pool else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_before": load_average(),
        "sections": {},
    }
    rows: list[Row] = [_skipped(s, profile) for s in SECTIONS if s in skipped]
    with tempfile.TemporaryDirectory(prefix="marketo-bench-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        wanted = only & {"download", "load", "e2e"}
        if wanted:
            try:
                got, _ = transfer.measure(profile, work, wanted)
                rows += got
            except Exception as exc:
                rows += [_failed(s, exc) for s in SECTIONS if s in wanted]
            meta["sections"]["transfer"] = round(time.monotonic() - t0, 1)
        deadline = started + profile.budget
        sections = (
            ("startup", startup),
            ("activities", activity_load),
            ("memory", memory),
            ("api", api_calls),
            ("slots", slots),
        )
        for section, module in sections:
            if section not in only:
                continue
            t0 = time.monotonic()
            try:
                if module is slots and export_pool:
                    row = slots.measure(
                        profile, work, deadline, pools={"marketo_bulk_export": export_pool}
                    )
                    row.figure = f"(what-if: export pool {export_pool}) {row.figure}"
                    rows.append(row)
                elif module is slots:
                    rows.append(slots.measure(profile, work, deadline))
                else:
                    rows.append(module.measure(profile, work))
            except Exception as exc:
                rows.append(_failed(section, exc))
            meta["sections"][section] = round(time.monotonic() - t0, 1)
    meta["seconds"] = round(time.monotonic() - started, 1)
    meta["load_after"] = load_average()
    rows.sort(key=lambda r: r.key)
    meta["short_names"] = {key: name for key, name, _ in KEYS.values()} | {"1b": "Download, resets"}
    json_path, md_path = save(rows, meta, out_dir)
    meta["files"] = [str(json_path), str(md_path)]
    return rows, meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, rows 1-5 (under 2 minutes)")
    ap.add_argument("--profile", choices=sorted(PROFILES), help="full, quick or tiny")
    ap.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ap.add_argument(
        "--export-pool",
        type=int,
        help="what-if for row 6: limit of the marketo_bulk_export pool (the project sets 2)",
    )
    args = ap.parse_args(argv)
    profile = PROFILES[args.profile or ("quick" if args.quick else "full")]
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    skipped = set() if args.only else set(profile.skip_by_default)
    only -= skipped
    say(f"marketo_assets benchmark, profile {profile.name}: {', '.join(sorted(only))}")
    if profile.name != "full":
        say("(smaller sizes than the issue's: indicative only; the goals are for `make bench`)")
    rows, meta = run(profile, only, args.out, skipped, args.export_pool)
    say("")
    say(
        f"{meta['date']}, {meta['machine']['cores']} cores, {meta['machine']['memory_gb']} GB, "
        f"{meta['seconds']:.0f} s, load average {meta['load_before']} → {meta['load_after']}"
    )
    for line in table_lines(rows):
        say(line)
    for r in rows:
        if r.details.get("note"):
            say(f"  {r.key}: {r.details['note']}")
        if r.details.get("error"):
            say(f"  {r.key}: ERROR {r.details['error']}")
    say(f"results: {meta['files'][0]}, {meta['files'][1]}")
    return 1 if any(r.details.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
