"""Dagster's SQLite instance storage with pool slots claimed one process at a time and its
fixed cost per run cut: the same files and tables as Dagster's `DagsterSqliteStorage`.

- **Pool slots** (`pool_slots`): every claim and release holds an exclusive `flock` of
  `pool_slots.lock`, next to the storage's `index.db`.
- **Engines** (`sqlite_engines`): one SQLAlchemy engine per database file and process instead of
  one per connection, each keeping a connection open: `runs.db`, `schedules.db`, `index.db` and
  a run's own `<run_id>.db` (closed when the run has ended, or at exit). The UI follows a
  running run by watching its file change (Dagster's watcher); in WAL mode a commit changes
  only the `-wal` file while a connection stays open, so after each commit that wrote to a run
  file its modification time is set (`os.utime`), which the watcher sees as a change.
- **New run files**: a copy of a run file that Dagster's own code made (tables, WAL mode,
  alembic stamp) once per instance folder and Dagster version, when the storage is set up (as
  Dagster sets up `index.db`), not in the first run; kept next to the run files (TEMPLATE);
  put in place only if the file does not exist yet (`os.link`), otherwise Dagster's own
  initialisation runs. A file already stamped by alembic (a run file, `runs.db`,
  `schedules.db`) is not checked against Dagster's migration scripts again: Dagster changes
  nothing in a stamped file (it migrates only with `dagster instance migrate`).

Configured in `dagster_home/dagster.yaml` (`storage: custom:`), `base_dir` the instance's
folder (`env: DAGSTER_HOME`, as Dagster's own default is). Built on Dagster's storage classes
(private modules): `dagster/test_in_process_pools.py` fails if real runs stop claiming through
this class, `dagster/test_pool_slots.py` if the claims stop being one at a time,
`dagster/test_sqlite_storage.py` if runs stop using these engines or the files differ from
Dagster's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import dagster
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from sqlalchemy.engine import Connection, Engine

from marketo_assets.local.pool_slots import PoolSlotsLocked
from marketo_assets.local.sqlite_engines import Engines

LOCK_FILE = "pool_slots.lock"
TEMPLATE = "run-file-template-dagster-{version}.sqlite"  # not *.db: Dagster reads those as runs
RUN_ENDED = {
    DagsterEventType.RUN_SUCCESS,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_CANCELED,
}


class LocalSqliteEventLogStorage(PoolSlotsLocked, SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose pool slot changes hold LOCK_FILE's lock, with engines kept
    and new run files copied (module docstring)."""

    def __init__(self, base_dir: str, inst_data: Any = None, home: str | None = None):
        self.engines = Engines()  # before Dagster's __init__: it may index the events
        super().__init__(base_dir, inst_data)
        self._home = home  # the instance folder this storage belongs to, when known
        self._init_pool_lock()
        if not os.path.exists(self._template_path()):
            # set up with the instance (as Dagster sets up index.db), not in its first run
            self._run_file_template()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Dagster's `_connect` with a kept engine and a copied new file; after a commit that
        wrote to a run file, the file's modification time is set (module docstring)."""
        url, path = self.conn_string_for_shard(shard), self.path_for_shard(shard)
        run_file = shard != INDEX_SHARD_NAME
        with self._db_lock:
            first = shard not in self._initialized_dbs
            if first and not os.path.exists(path):
                self.engines.drop(url)  # a connection kept to a file deleted since (`wipe`)
            engine = self.engines.get(
                url, pooled=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
            )
            if first:
                if not run_file or not _new_run_file(path, self._run_file_template):
                    self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                raw = cast(sqlite3.Connection, conn.connection.dbapi_connection)
                changes = raw.total_changes
                with conn.begin():
                    yield conn
                if run_file and raw.total_changes != changes:
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile (wipe)
                        os.utime(path)  # the UI's watcher sees the file change

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        # Dagster's `_initdb` changes only a file without a revision
        if not _file_stamped(str(engine.url.database)):
            super()._initdb(engine, for_index_shard=for_index_shard)

    def _run_file_template(self) -> bytes | None:
        """A new run file as Dagster's `_initdb` makes it: made once per instance folder and
        Dagster version (TEMPLATE, next to the run files), read once per process."""
        key = (os.getpid(), self._base_dir)  # a forked child reads it again
        with _template_lock:
            if key not in _template:
                saved = self._template_path()
                data = _valid(saved)
                if data is None:
                    data = _made_run_file(self)
                    if data is not None:
                        _put(saved, data, replace=os.path.exists(saved))
                _template[key] = data
            return _template[key]

    def wipe(self) -> None:
        self.engines.dispose()  # closes the kept connections to the files Dagster deletes
        super().wipe()

    def store_event(self, event: EventLogEntry) -> None:
        super().store_event(event)
        if event.is_dagster_event and event.dagster_event_type in RUN_ENDED:
            self.engines.drop(self.conn_string_for_shard(event.run_id))  # its WAL folded in

    def _template_path(self) -> str:
        return os.path.join(self._base_dir, TEMPLATE.format(version=dagster.__version__))

    def dispose(self) -> None:
        super().dispose()
        self.engines.dispose()

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


class OneKeptEngine:
    """For Dagster's run and schedule storages (one database file each): `connect()` through
    one engine that keeps a connection open."""

    _conn_string: str

    def __init__(self, conn_string: str, inst_data: Any = None):
        super().__init__(conn_string, inst_data)  # type: ignore[call-arg]
        self.engines = Engines(size=1)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        engine = self.engines.get(self._conn_string, pooled=True)
        with engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self.engines.dispose()


class LocalSqliteRunStorage(OneKeptEngine, SqliteRunStorage):
    """`SqliteRunStorage` (`runs.db`) with one engine keeping a connection open."""

    @classmethod
    def from_local(cls, base_dir: str, inst_data: Any = None) -> LocalSqliteRunStorage:
        """Dagster's `from_local` changes nothing in a stamped file with `instance_info`: open
        such a file without reading Dagster's migration scripts (0.03-0.06 s per process)."""
        path = os.path.join(base_dir, "runs.db")
        if _file_stamped(path, also="instance_info"):
            return cls(create_db_conn_string(base_dir, "runs"), inst_data)
        return super().from_local(base_dir, inst_data)


class LocalSqliteScheduleStorage(OneKeptEngine, SqliteScheduleStorage):
    """`SqliteScheduleStorage` (`schedules.db`) with one engine keeping a connection open."""

    @classmethod
    def from_local(cls, base_dir: str, inst_data: Any = None) -> LocalSqliteScheduleStorage:
        """As `LocalSqliteRunStorage.from_local`: Dagster's changes nothing in a stamped file."""
        if _file_stamped(os.path.join(base_dir, "schedules.db")):
            return cls(create_db_conn_string(base_dir, "schedules"), inst_data)
        return super().from_local(base_dir, inst_data)  # type: ignore[return-value]


class LocalSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` made of the storages above, in Dagster's folders."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        self.base_dir = base_dir
        self._run_storage = LocalSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = LocalSqliteEventLogStorage(
            _event_logs_directory(base_dir), home=base_dir
        )
        self._schedule_storage = LocalSqliteScheduleStorage.from_local(
            _schedule_directory(base_dir)
        )
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()  # skips building Dagster's own storages

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> LocalSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


def _file_stamped(path: str, also: str | None = None) -> bool:
    """Whether the database file records an alembic revision (and has the table `also`)."""
    if not os.path.exists(path):
        return False
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        try:
            row = db.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return bool(row and row[0]) and (also is None or also in tables)


_template_lock = threading.Lock()
_template: dict[tuple[int, str], bytes | None] = {}  # by process and instance folder


def _made_run_file(storage: SqliteEventLogStorage) -> bytes | None:
    """The bytes of a run file initialised by `storage` in a temporary folder; None if SQLite
    kept part of it in a WAL file (then it is not a complete copy)."""
    with tempfile.TemporaryDirectory(prefix="marketo-dagster-") as folder:
        path = os.path.join(folder, "template.db")
        engines = Engines(size=1)
        storage._initdb(engines.get(f"sqlite:///{path}", pooled=False))
        engines.dispose()
        if os.path.exists(path + "-wal"):
            return None
        with open(path, "rb") as f:
            return f.read()


def _valid(path: str) -> bytes | None:
    """The file's bytes if it is an SQLite database stamped by alembic, else None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        db = sqlite3.connect(":memory:")
        try:
            # In memory, SQLite opens only a rollback-journal file: bytes 18-19 say WAL (2, 2).
            db.deserialize(data[:18] + b"\x01\x01" + data[20:])
            stamped = db.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            db.close()
    except (OSError, sqlite3.Error):
        return None
    return data if stamped else None


def _put(path: str, data: bytes, *, replace: bool = False) -> bool:
    """Writes `data` to `path` through a part file, all at once: never over an existing file
    unless `replace` (then atomically). False if it did not (a file was there, or an error)."""
    part = f"{path}.{os.getpid()}-{threading.get_ident()}.new"
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # as SQLite creates files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(part, path)
        else:
            os.link(part, path)  # fails if the file appeared meanwhile: nothing is overwritten
        return True
    except OSError:  # FileExistsError, or a file system without hard links
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)


def _new_run_file(path: str, template: Callable[[], bytes | None]) -> bool:
    """Writes `template()` to `path` unless a file is there (then False, and Dagster's own
    initialisation runs: it copes with another process initialising the file at the same
    time)."""
    if os.path.exists(path):
        return False
    data = template()
    return data is not None and _put(path, data)
