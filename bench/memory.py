"""Row 4: peak resident memory of the run process, for a small and a 10x larger export.

The run (both lead assets of one partition, every exportable field, in one process with
Dagster's in-process executor) is a separate process; its memory is sampled from outside with
psutil every 20 ms (the whole process tree) and cross-checked with the kernel's ru_maxrss.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import MB, MONTH, PARTITION, Row, drop_files, run_worker, say
from bench.transfer import dagster_home


def _run(leads: int, work: Path, name: str) -> dict:
    from marketo_assets.simulator.process import run_simulator

    with run_simulator(
        leads=leads,
        **MONTH,
        status_interval=0.2,
        rows_per_second=0,
        quota_mb=1_000_000,
        ready_timeout=120,
    ) as sim:
        run_dir = work / f"memory-{name}"
        cfg = {
            "dir": str(run_dir),
            "base_url": sim.base_url,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "partition": PARTITION,
            "fields": [],  # every exportable field
            "poll_interval": 0.2,
        }
        env = {"DAGSTER_HOME": str(dagster_home(run_dir / "dagster_home"))}
        drop_files()
        res = run_worker(
            ["materialize", json.dumps(cfg)], env=env, log=work / "memory.log", sample=True
        )
        if not res.data["success"]:
            raise RuntimeError(f"memory run {name} failed (log: {work / 'memory.log'})")
        size = res.data["metadata"].get("lead_export_files.file_size_bytes", 0)
        return {
            "leads": leads,
            "file_bytes": size,
            "peak_tree_rss": res.peak_tree_rss,
            "peak_single_rss": res.peak_single_rss,
            "max_rss_kernel": res.max_rss_kernel,
            "seconds": res.data["seconds"],
        }


def measure(profile, work: Path) -> Row:
    small_leads, big_leads = profile.memory_leads
    say(f"row 4: memory, {small_leads:,} and {big_leads:,} leads (all fields) …")
    small = _run(small_leads, work, "small")
    big = _run(big_leads, work, "big")
    peak = max(big["peak_tree_rss"], big["max_rss_kernel"])
    ref = max(small["peak_tree_rss"], small["max_rss_kernel"])
    ratio = peak / ref
    say(f"  peak RSS: {ref / MB:.0f} MB and {peak / MB:.0f} MB")
    return Row(
        "4",
        f"Peak RSS of the run process: {big['file_bytes'] / 1e6:,.0f} MB export vs "
        f"{small['file_bytes'] / 1e6:,.0f} MB export",
        peak / MB,
        ref / MB,
        "MB",
        "≤ 1.25x and ≤ 400 MB",
        ratio <= 1.25 and peak <= 400 * MB,
        details={
            "small": small,
            "big": big,
            "note": (
                "psutil polling of the process tree every 20 ms and ru_maxrss agree within "
                f"{abs(big['peak_tree_rss'] - big['max_rss_kernel']) / MB:.0f} MB; "
                f"run time {small['seconds']:.1f} s and {big['seconds']:.1f} s"
            ),
        },
    )
