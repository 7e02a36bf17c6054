"""Pool slots on the project's SQLite instance (`marketo_assets.local.sqlite_storage`, set in
`dagster_home/dagster.yaml`): processes that claim a pool's last slot at the same moment get
it once. Dagster's own SQLite storage gave it to 2-3 of 4 such processes in most rounds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from marketo_assets.local.sqlite_storage import LOCK_FILE, LocalSqliteEventLogStorage
from marketo_assets.settings import PROJECT_ROOT
from marketo_assets_tests.support.pool_claims import claims_per_round

ROUNDS = 6


@pytest.mark.timeout(120)
def test_the_last_slot_goes_to_one_of_the_processes_asking_together(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    per_round = claims_per_round({**os.environ, "DAGSTER_HOME": str(home)}, tmp_path, rounds=ROUNDS)
    assert per_round == [1] * ROUNDS, f"claims per round (pool of 1): {per_round}"
    assert (home / "history" / "runs" / LOCK_FILE).exists()


def test_the_project_instance_uses_it_and_refuses_another_folder(tmp_path: Path, monkeypatch):
    home, other = tmp_path / "home", tmp_path / "other"
    for folder in (home, other):
        folder.mkdir()
        shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", folder / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, LocalSqliteEventLogStorage)
    # base_dir is DAGSTER_HOME: loading another folder's instance must not use this one's runs.
    with pytest.raises(ValueError, match="set DAGSTER_HOME="):
        dg.DagsterInstance.from_config(str(other))
