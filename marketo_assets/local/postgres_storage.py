"""Dagster's PostgreSQL instance storage with pool slots claimed one process at a time
(`pool_slots`), on every machine of the deployment: the lock is a PostgreSQL advisory lock
(`pg_advisory_lock`) held by a connection of its own, released when it is unlocked or that
connection ends (a killed process's included). Everything else is Dagster's
`DagsterPostgresStorage`, unchanged (same tables).

Configured in `deploy/dagster.yaml` (`storage: custom:`, the same `postgres_db` settings as
Dagster's `storage: postgres:`). Built on Dagster's storage classes (private modules):
`postgres/test_scale_out_instance.py` fails if the claims stop going through this class or stop
being one at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.storage import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from marketo_assets.local.pool_slots import PoolSlotsLocked

# The advisory lock's key: any 64-bit number the database's other users do not take.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"marketo_assets pool slots").digest()[:8], "big") >> 1


class PoolLockedPostgresEventLogStorage(PoolSlotsLocked, PostgresEventLogStorage):
    """`PostgresEventLogStorage` whose pool slot changes hold the advisory lock LOCK_KEY."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._init_pool_lock()

    @contextmanager
    def instance_lock(self) -> Iterator[None]:
        with self._engine.connect() as conn:  # autocommit, not pooled: a session of its own
            conn.execute(db.text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(db.text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})


class PoolLockedPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` with `PoolLockedPostgresEventLogStorage` as its event log."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: Any = None,
        token_provider: Any = None,
    ):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        plain = self._event_log_storage
        self._event_log_storage = PoolLockedPostgresEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        plain.dispose()

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PoolLockedPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
