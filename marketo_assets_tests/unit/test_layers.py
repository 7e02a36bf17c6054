"""The layer contracts in pyproject.toml ([tool.importlinter]) hold: only defs/ and local/ use
Dagster, nothing below defs/ imports it, the simulator shares no code with the client, and the
packages import each other without cycles. And defs/ stays thin glue: at most DEFS_MAX_LINES."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


# Issue 14: the Dagster glue stays thin, new families included; machinery goes to extract/,
# marketo/, warehouse/. Counted as `wc -l marketo_assets/defs/*.py` counts.
DEFS_MAX_LINES = 1600


def test_defs_stays_within_its_line_budget():
    files = sorted((ROOT / "marketo_assets" / "defs").rglob("*.py"))
    lines = {f.relative_to(ROOT).as_posix(): f.read_bytes().count(b"\n") for f in files}
    total = sum(lines.values())
    biggest = sorted(lines.items(), key=lambda item: -item[1])[:5]
    assert total <= DEFS_MAX_LINES, f"marketo_assets/defs/ has {total} lines: {biggest}"
