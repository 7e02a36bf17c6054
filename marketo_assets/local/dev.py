"""`make dev`: the simulator (unless MARKETO_* is set) and the Dagster UI on localhost:3000.

Uses the same DAGSTER_HOME and DuckDB file as `make demo`, so the demo's materializations and
partition status are visible, and backfills launched from the UI run through the same pools.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from marketo_assets.settings import PROJECT_ROOT

from .environment import marketo_target
from .instance import ensure_pools


def main() -> int:
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    port = os.environ.get("DAGSTER_PORT", "3000")
    with marketo_target() as target:
        os.environ.update(target.env)
        with dg.DagsterInstance.get() as instance:
            ensure_pools(instance)
        where = "the Marketo simulator at " if target.is_simulator else ""
        print(f"Marketo: {where}{os.environ['MARKETO_BASE_URL']}", flush=True)  # noqa: T201
        print(f"Dagster UI: http://localhost:{port}", flush=True)  # noqa: T201
        dagster = Path(sys.executable).with_name("dagster")
        cmd = [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", port]
        try:
            return subprocess.call(cmd, cwd=PROJECT_ROOT)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
