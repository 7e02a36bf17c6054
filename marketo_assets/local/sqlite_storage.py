"""Dagster's SQLite instance storage with pool slots claimed one process at a time
(`pool_slots`): the lock is an exclusive `flock` of `pool_slots.lock`, next to the storage's
`index.db`. Everything else is Dagster's `DagsterSqliteStorage`, unchanged (same files, same
layout).

Configured in `dagster_home/dagster.yaml` (`storage: custom:`), `base_dir` the instance's
folder (`env: DAGSTER_HOME`, as Dagster's own default is). Built on Dagster's storage classes
(private modules): `dagster/test_in_process_pools.py` fails if real runs stop claiming through
this class, `dagster/test_pool_slots.py` if the claims stop being one at a time.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

from marketo_assets.local.pool_slots import PoolSlotsLocked

LOCK_FILE = "pool_slots.lock"


class PoolLockedSqliteEventLogStorage(PoolSlotsLocked, SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose pool slot changes hold LOCK_FILE's lock."""

    def __init__(self, base_dir: str, inst_data: Any = None, home: str | None = None):
        super().__init__(base_dir, inst_data)
        self._home = home  # the instance folder this storage belongs to, when known
        self._init_pool_lock()

    @contextmanager
    def instance_lock(self) -> Iterator[None]:
        fd = os.open(os.path.join(self._base_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def register_instance(self, instance) -> None:
        """Refuses an instance in another folder: `base_dir` comes from DAGSTER_HOME, so an
        instance built from another folder's dagster.yaml (`DagsterInstance.from_config`)
        would otherwise read and write this one's runs."""
        if self._home is not None:
            mine = os.path.realpath(self._home)
            theirs = os.path.realpath(instance.root_directory)
            if mine != theirs:
                raise ValueError(
                    f"the instance in {theirs} has its storage in {mine} (dagster.yaml's "
                    f"storage base_dir is DAGSTER_HOME): set DAGSTER_HOME={theirs} before "
                    "loading it"
                )
        super().register_instance(instance)


class PoolLockedSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` with `PoolLockedSqliteEventLogStorage` as its event log."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        super().__init__(base_dir, inst_data)
        plain = self._event_log_storage
        self._event_log_storage = PoolLockedSqliteEventLogStorage(plain._base_dir, home=base_dir)
        plain.dispose()

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PoolLockedSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
