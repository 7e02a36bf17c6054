"""`python -m bench.run [--quick]`: the six measurements of issue 7, side by side, one table.

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

from bench import api_calls, memory, slots, transfer
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


PROFILES = {
    "full": Profile(
        "full", 2_000_000, 5, 3, 3, 3, (220_000, 2_200_000), 10, 12, 30.0, 2000, 0.5, True, 840
    ),
    "quick": Profile(
        "quick", 200_000, 3, 2, 2, 1, (22_000, 220_000), 10, 4, 5.0, 500, 0.25, False, 115
    ),
    # For the smoke test: the same machinery on tiny sizes.
    "tiny": Profile("tiny", 20_000, 2, 1, 1, 1, (2_000, 20_000), 10, 2, 1.0, 100, 0.25, False, 300),
}
SECTIONS = ("download", "load", "e2e", "memory", "api", "slots")
KEYS = {
    "download": ("1a", "Download vs curl", "≤ 1.10x"),
    "load": ("2", "Load vs CTAS", "≤ 1.15x"),
    "e2e": ("3", "End to end vs curl + CTAS", "≤ 1.3x"),
    "memory": ("4", "Peak RSS", "≤ 1.25x and ≤ 400 MB"),
    "api": ("5", "REST calls per export job", "≤ 1 + ceil(minutes) + 5"),
    "slots": ("6", "Slot use", "≤ 1.15x"),
}


def _failed(section: str, exc: BaseException) -> Row:
    key, figure, goal = KEYS[section]
    say(f"  {section} FAILED: {exc}")
    traceback.print_exc()
    return missed(key, figure, goal, f"{type(exc).__name__}: {exc}")


def run(profile: Profile, only: set[str], out_dir: Path) -> tuple[list[Row], dict]:
    started = time.monotonic()
    meta = {
        "profile": profile.name,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_before": load_average(),
        "sections": {},
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="marketo-bench-") as tmp:
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
        for section, module in (("memory", memory), ("api", api_calls), ("slots", slots)):
            if section not in only:
                continue
            t0 = time.monotonic()
            try:
                if module is slots:
                    rows.append(slots.measure(profile, work, deadline))
                else:
                    rows.append(module.measure(profile, work))
            except Exception as exc:
                rows.append(_failed(section, exc))
            meta["sections"][section] = round(time.monotonic() - t0, 1)
    meta["seconds"] = round(time.monotonic() - started, 1)
    meta["load_after"] = load_average()
    rows.sort(key=lambda r: r.key)
    json_path, md_path = save(rows, meta, out_dir)
    meta["files"] = [str(json_path), str(md_path)]
    return rows, meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (under 2 minutes)")
    ap.add_argument("--profile", choices=sorted(PROFILES), help="full, quick or tiny")
    ap.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = ap.parse_args(argv)
    profile = PROFILES[args.profile or ("quick" if args.quick else "full")]
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    say(f"marketo_assets benchmark, profile {profile.name}: {', '.join(sorted(only))}")
    rows, meta = run(profile, only, args.out)
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
