"""Start-up of a run process (issue 17, bench row 0): loading the definitions of the raw code
location imports nothing a lead export does not need and touches no database or file it could
write. Every run process pays for what the definitions import before its first Marketo call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Packages a run of the export and load assets never needs at load: dbt and dagster-dbt (the
# other code location, ~2.8 s), dataframes, the PostgreSQL driver (imported by the PostgreSQL
# ledger and warehouse when used), the simulator's web stack, and the project's own simulator,
# dbt helpers and local tooling.
HEAVY = (
    "dbt",
    "dagster_dbt",
    "pandas",
    "pyarrow",
    "polars",
    "numpy",
    "psycopg",
    "psycopg2",
    "starlette",
    "uvicorn",
    "marketo_assets.simulator",
    "marketo_assets.transform",
    "marketo_assets.local",
)

_LOAD = """
import gc, json, sys
connects = []
sys.addaudithook(lambda event, args: event == "sqlite3.connect" and connects.append(args[0]))
import marketo_assets.definitions as d
d.defs()
heavy = json.loads(sys.argv[1])
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
frozen = gc.get_freeze_count()
print(json.dumps({"loaded": loaded, "sqlite": [str(c) for c in connects], "frozen": frozen}))
"""


def test_loading_the_definitions_imports_nothing_heavy_and_opens_no_database(tmp_path):
    """`marketo_assets.definitions` loads without the HEAVY packages, without connecting to
    SQLite (the ledger) and without creating the DuckDB file, the ledger or the staging area;
    what is loaded then is frozen (out of the garbage collector's full passes)."""
    state = tmp_path / "state"
    env = {
        **os.environ,
        "DUCKDB_PATH": str(state / "marketo.duckdb"),
        "MARKETO_LEDGER_PATH": str(state / "ledger.sqlite"),
        "MARKETO_STAGING_DIR": str(state / "exports"),
    }
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["sqlite"] == []
    assert not state.exists()
    assert result["frozen"] > 100_000
