"""The benchmark machinery runs (tiny sizes) and writes its table: no benchmark numbers checked."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench import run as bench_run
from bench.common import Row, TreeSampler, markdown, table_lines


def test_quick_machinery_on_tiny_sizes_writes_the_table(tmp_path, capsys):
    started = time.monotonic()
    code = bench_run.main(
        ["--profile", "tiny", "--only", "download,load,api", "--out", str(tmp_path)]
    )
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads((tmp_path / "latest-tiny.json").read_text())
    keys = [r["key"] for r in data["rows"]]
    assert keys == ["1a", "1b", "2", "5"]
    for r in data["rows"]:
        assert r["ours"] > 0 and r["reference"] > 0 and r["ratio"] is not None
        assert isinstance(r["met"], bool)
    assert data["meta"]["machine"]["cores"] >= 1
    md = (tmp_path / "latest-tiny.md").read_text()
    assert "| # | figure | ours | reference | ratio | goal | met? |" in md
    assert "| 5 | REST calls per export job" in md
    assert "| 5 | REST calls per export job" in out  # and printed
    assert took < 120


def test_memory_sampler_sees_a_child_process_tree():
    code = "import time; b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
    code += "time.sleep(1.0)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    with TreeSampler(proc.pid, interval=0.02) as sampler:
        proc.wait(30)
    assert sampler.samples > 5
    assert sampler.peak_tree >= 80 * 1024 * 1024


def test_table_marks_missed_goals():
    rows = [
        Row("1a", "fast", 1.0, 1.0, "s", "≤ 1.10x", True),
        Row("2", "slow", 2.0, 1.0, "s", "≤ 1.15x", False),
    ]
    lines = table_lines(rows)
    assert lines[2].endswith("| yes |") and lines[3].endswith("| **no** |")
    assert "2.00x" in lines[3]
    meta = {
        "profile": "tiny",
        "date": "2026-01-01 00:00 UTC",
        "seconds": 1.0,
        "machine": {"cores": 2, "cpu": "x", "memory_gb": 1.0},
        "load_before": [0, 0, 0],
        "load_after": [0, 0, 0],
    }
    assert "2 cores" in markdown(rows, meta)


def test_row_3_note_checks_the_fixed_cost_goal_against_everything_but_wait_download_load():
    from bench.transfer import fixed_cost_note

    run = {
        "seconds": 2.0,
        "marketo_wait_seconds": 0.4,
        "dagster_events": 36,
        "phases": {
            "create": 0.2,
            "run_start": 0.1,
            "step:marketo__lead_export_files": 0.7,  # 0.4 wait + 0.1 download + 0.2 ours
            "between": 0.1,
            "step:marketo__leads": 0.85,  # 0.7 load + 0.15 checks and events
            "finish": 0.05,
            "create_events": 7,
        },
    }
    note = fixed_cost_note(run, download=0.1, load=0.7)
    assert note.startswith("fixed cost (everything but Marketo's wait 0.40 s, the download")
    assert ") 0.80 s, goal ≤ 0.3 s: not met" in note  # 2.0 - 0.4 - 0.1 - 0.7
    assert "creating the run (before RUN_START, 7 planned events) 0.20 s" in note
    assert "in the run (RUN_START to RUN_SUCCESS) 0.55 s" in note  # 0.1 + 0.2 + 0.15 + 0.1
    assert "after RUN_SUCCESS 0.05 s" in note
    assert "goal ≤ 0.3 s: met" in fixed_cost_note({**run, "seconds": 1.45}, 0.1, 0.7)
