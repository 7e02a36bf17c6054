"""Dagster's SQLite instance storage with pool slots claimed one process at a time.

Dagster's SQLite event log storage checks for a free pool slot and takes it in separate
statements (SQLite ignores `SELECT ... FOR UPDATE`), so steps of several run processes that
ask at the same moment can all get the last slot: 2, 3 exports at once in a pool of 1 (4
processes claiming together, 8 rounds: 6 rounds over the limit). Here every change to pool
slots and pending steps (claim, free, assign, set limits) holds an exclusive lock on a file
next to the storage's `index.db`, so the check and the claim are one step for every process of
the instance. Everything else is Dagster's `DagsterSqliteStorage`, unchanged (same files, same
layout).

Configured in `dagster_home/dagster.yaml` (`storage: custom:`), `base_dir` the instance's
folder (`env: DAGSTER_HOME`, as Dagster's own default is). Built on Dagster's storage classes
(private modules): `dagster/test_in_process_pools.py` fails if real runs stop claiming through
this class, `dagster/test_pool_slots.py` if the claims stop being one at a time.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

LOCK_FILE = "pool_slots.lock"


class PoolLockedSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose pool slot changes hold LOCK_FILE's lock."""

    def __init__(self, base_dir: str, inst_data: Any = None, home: str | None = None):
        super().__init__(base_dir, inst_data)
        self._home = home  # the instance folder this storage belongs to, when known
        self._pool_lock_path = os.path.join(self._base_dir, LOCK_FILE)
        self._pool_thread_lock = threading.RLock()
        self._pool_lock_depth = 0
        self._pool_lock_fd: int | None = None

    @contextmanager
    def pool_slots_locked(self) -> Iterator[None]:
        """The instance-wide lock (re-entrant: a free assigns pending steps inside it)."""
        with self._pool_thread_lock:
            if self._pool_lock_fd is None:
                self._pool_lock_fd = os.open(self._pool_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            if self._pool_lock_depth == 0:
                fcntl.flock(self._pool_lock_fd, fcntl.LOCK_EX)
            self._pool_lock_depth += 1
            try:
                yield
            finally:
                self._pool_lock_depth -= 1
                if self._pool_lock_depth == 0:
                    fcntl.flock(self._pool_lock_fd, fcntl.LOCK_UN)

    def claim_concurrency_slot(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().claim_concurrency_slot(*args, **kwargs)

    def free_concurrency_slot_for_step(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().free_concurrency_slot_for_step(*args, **kwargs)

    def free_concurrency_slots_for_run(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().free_concurrency_slots_for_run(*args, **kwargs)

    def assign_pending_steps(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().assign_pending_steps(*args, **kwargs)

    def add_pending_step(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().add_pending_step(*args, **kwargs)

    def set_concurrency_slots(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().set_concurrency_slots(*args, **kwargs)

    def initialize_concurrency_limit_to_default(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().initialize_concurrency_limit_to_default(*args, **kwargs)

    def delete_concurrency_limit(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().delete_concurrency_limit(*args, **kwargs)

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

    def dispose(self) -> None:
        super().dispose()
        with self._pool_thread_lock:
            if self._pool_lock_fd is not None:
                os.close(self._pool_lock_fd)
                self._pool_lock_fd = None


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
