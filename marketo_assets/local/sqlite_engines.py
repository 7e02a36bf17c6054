"""SQLAlchemy engines for Dagster's SQLite storages, one per database file and process.

Dagster's SQLite storages build a new engine for every connection they open (`NullPool`), so
each use pays for the engine, SQLAlchemy's dialect set-up and compiling its statements again (the
compiled-statement cache belongs to the engine), then for opening the file and, at close, SQLite's
WAL checkpoint. An empty run of bench row 3's shape opens about 130 connections.

`Engines` keeps the engines of the most recently used files. `pooled=True` keeps one idle
connection open (`QueuePool`, size 1, any number more while in use; SQLAlchemy's default pool
for SQLite files); `pooled=False` keeps Dagster's `NullPool`: each connection is closed after use.
A forked child starts with no engines (a SQLite connection must not cross a fork; the parent's
are kept referenced in the child, never closed there). At exit a process closes its engines'
connections (the last connection to close a WAL-mode file folds its WAL file back in).
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections import OrderedDict
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool

_INHERITED: list[Engine] = []  # engines a forked child got from its parent: never closed there
_ALL: weakref.WeakSet[Engines] = weakref.WeakSet()


class Engines:
    """The engines of the `size` most recently used (url, pooled) pairs; thread-safe."""

    def __init__(self, size: int = 32):
        self._size = size
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._engines: OrderedDict[tuple[str, bool], Engine] = OrderedDict()
        _ALL.add(self)

    def get(self, url: str, *, pooled: bool, connect_args: dict[str, Any] | None = None) -> Engine:
        key = (url, pooled)
        with self._lock:
            self._after_fork()
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
            pool: dict[str, Any] = (
                {"poolclass": QueuePool, "pool_size": 1, "max_overflow": -1}
                if pooled
                else {"poolclass": NullPool}
            )
            engine = create_engine(url, connect_args=connect_args or {}, **pool)
            self._engines[key] = engine
            if len(self._engines) > self._size:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()  # closes its idle connection; one in use closes when returned
            return engine

    def drop(self, url: str) -> None:
        """Forget the engines of `url`, closing their idle connections."""
        with self._lock:
            self._after_fork()
            dropped = [self._engines.pop(key) for key in list(self._engines) if key[0] == url]
        for engine in dropped:
            engine.dispose()

    def dispose(self) -> None:
        with self._lock:
            self._after_fork()
            engines, self._engines = list(self._engines.values()), OrderedDict()
        for engine in engines:
            engine.dispose()

    def __len__(self) -> int:
        return len(self._engines)

    def urls(self) -> list[tuple[str, bool]]:
        return list(self._engines)

    def _after_fork(self) -> None:
        if os.getpid() != self._pid:
            _INHERITED.extend(self._engines.values())
            self._engines = OrderedDict()
            self._pid = os.getpid()


@atexit.register
def _dispose_all() -> None:
    for engines in list(_ALL):
        engines.dispose()  # a forked child's inherited engines are not among them
