"""`dbt build` as a user runs it, for the tests that build the models on a warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from marketo_assets.settings import PROJECT_ROOT

DBT = str(Path(sys.executable).with_name("dbt"))


def dbt_build(tmp_path: Path, env: dict[str, str], *args: str) -> dict[str, tuple[str, int | None]]:
    """`dbt build` with `env` added; {node name: (status, failures)}."""
    target = tmp_path / "dbt_target"  # never the project's target/ (Dagster's manifest)
    done = subprocess.run(
        [DBT, "build", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project",
         "--target-path", str(target), "--log-path", str(tmp_path / "dbt_logs"), *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".", 2)[2]: (r["status"], r["failures"]) for r in results}
