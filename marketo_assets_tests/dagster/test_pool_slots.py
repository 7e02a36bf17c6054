"""Pool slots on the project's SQLite instance (`marketo_assets.local.sqlite_storage`, set in
`dagster_home/dagster.yaml`): processes that claim a pool's last slot at the same moment get
it once. Dagster's own SQLite storage gave it to 2-3 of 4 such processes in most rounds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from marketo_assets.local.sqlite_storage import LOCK_FILE, PoolLockedSqliteEventLogStorage
from marketo_assets.settings import PROJECT_ROOT

PROCESSES, ROUNDS, ROUND_SECONDS = 4, 6, 1.0

CLAIM = textwrap.dedent(
    """
    import json, sys, time, uuid
    import dagster as dg

    start, rounds, every = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    claimed = []
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        for r in range(rounds):
            while time.time() < start + r * every:
                time.sleep(0.0005)
            run_id = uuid.uuid4().hex
            if storage.claim_concurrency_slot("p", run_id, "step").is_claimed:
                claimed.append(r)
            time.sleep(every / 2)
            storage.free_concurrency_slots_for_run(run_id)
    print(json.dumps(claimed))
    """
)


@pytest.mark.timeout(120)
def test_the_last_slot_goes_to_one_of_the_processes_asking_together(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    script = tmp_path / "claim.py"
    script.write_text(CLAIM)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import dagster as dg\n"
            "with dg.DagsterInstance.get() as i: i.event_log_storage.set_concurrency_slots('p', 1)",
        ],
        env=env,
        check=True,
        timeout=60,
    )
    start = time.time() + 8  # every process has started and loaded Dagster by then
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(start), str(ROUNDS), str(ROUND_SECONDS)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=90)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    claimed = [json.loads(out) for out in outputs]
    per_round = [sum(r in c for c in claimed) for r in range(ROUNDS)]
    assert per_round == [1] * ROUNDS, f"claims per round (pool of 1): {per_round}"
    assert (home / "history" / "runs" / LOCK_FILE).exists()


def test_the_project_instance_uses_it_and_refuses_another_folder(tmp_path: Path, monkeypatch):
    home, other = tmp_path / "home", tmp_path / "other"
    for folder in (home, other):
        folder.mkdir()
        shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", folder / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, PoolLockedSqliteEventLogStorage)
    # base_dir is DAGSTER_HOME: loading another folder's instance must not use this one's runs.
    with pytest.raises(ValueError, match="set DAGSTER_HOME="):
        dg.DagsterInstance.from_config(str(other))
