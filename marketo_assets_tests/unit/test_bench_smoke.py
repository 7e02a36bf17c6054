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
