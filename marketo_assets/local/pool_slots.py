"""Pool slots claimed one process at a time, for Dagster's instance storages.

Dagster's event log storages check for a free pool slot and take it in separate statements
(SQLite ignores `SELECT ... FOR UPDATE`; PostgreSQL runs each statement on its own, in
autocommit), so steps of several run processes that ask at the same moment can all get the last
slot. Measured with 4 processes claiming a pool of 1 together, 8 rounds: on SQLite 6 rounds
gave it to 2-3 of them, on PostgreSQL 1 round to 2. `PoolSlotsLocked` makes every change to pool
slots and pending steps (claim, free, assign, set limits) hold one lock of the whole instance,
so a check and its claim are one step; the storages in `sqlite_storage` and
`postgres_storage` say which lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any


class PoolSlotsLocked:
    """Mixin for an event log storage: its pool slot changes hold `instance_lock()`."""

    def _init_pool_lock(self) -> None:
        self._pool_thread_lock = threading.RLock()
        self._pool_lock_depth = 0
        self._pool_lock_held: AbstractContextManager[None] | None = None

    def instance_lock(self) -> AbstractContextManager[None]:
        """The exclusive lock shared by every process of the instance."""
        raise NotImplementedError

    @contextmanager
    def pool_slots_locked(self) -> Iterator[None]:
        """Re-entrant in a process (freeing a slot assigns pending steps inside it)."""
        with self._pool_thread_lock:
            if self._pool_lock_depth == 0:
                held = self.instance_lock()
                held.__enter__()
                self._pool_lock_held = held
            self._pool_lock_depth += 1
            try:
                yield
            finally:
                self._pool_lock_depth -= 1
                if self._pool_lock_depth == 0 and self._pool_lock_held is not None:
                    held, self._pool_lock_held = self._pool_lock_held, None
                    held.__exit__(None, None, None)

    def claim_concurrency_slot(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().claim_concurrency_slot(*args, **kwargs)  # type: ignore[misc]

    def free_concurrency_slot_for_step(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().free_concurrency_slot_for_step(*args, **kwargs)  # type: ignore[misc]

    def free_concurrency_slots_for_run(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().free_concurrency_slots_for_run(*args, **kwargs)  # type: ignore[misc]

    def assign_pending_steps(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().assign_pending_steps(*args, **kwargs)  # type: ignore[misc]

    def add_pending_step(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().add_pending_step(*args, **kwargs)  # type: ignore[misc]

    def set_concurrency_slots(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().set_concurrency_slots(*args, **kwargs)  # type: ignore[misc]

    def initialize_concurrency_limit_to_default(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().initialize_concurrency_limit_to_default(*args, **kwargs)  # type: ignore[misc]

    def delete_concurrency_limit(self, *args: Any, **kwargs: Any) -> Any:
        with self.pool_slots_locked():
            return super().delete_concurrency_limit(*args, **kwargs)  # type: ignore[misc]
