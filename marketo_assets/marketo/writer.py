"""A writer thread for the download: pieces go to the file while the next ones are read."""

from __future__ import annotations

import os
import queue
import threading

__all__ = ["READ_BUFFER", "Writer", "write_all"]

READ_BUFFER = 1 << 20  # socket reads go into reused buffers of this size


class Writer:
    """A thread writing queued pieces to `fd`; errors land in `failure`. Buffers given back
    with a piece return to a small pool once written (constant memory, no fresh pages)."""

    POOL = 6

    def __init__(self, fd: int, name: str):
        self.fd = fd
        self.failure: list[BaseException] = []
        self.queue: queue.Queue[tuple[list, bytearray | None] | None] = queue.Queue(maxsize=4)
        self.pool: queue.Queue[bytearray] = queue.Queue()
        self.made = 0
        self.thread = threading.Thread(target=self._run, name=f"marketo-download-{name}")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            pieces, buf = item
            if not self.failure:
                try:
                    write_all(self.fd, pieces)
                except BaseException as exc:  # reported to the reading thread
                    self.failure.append(exc)
            if buf is not None:
                self.pool.put(buf)

    def buffer(self) -> bytearray:
        if self.made < self.POOL and self.pool.empty():
            self.made += 1
            return bytearray(READ_BUFFER)
        return self.pool.get()

    def recycle(self, buf: bytearray) -> None:
        self.pool.put(buf)

    def put(self, pieces: list, buf: bytearray | None = None) -> None:
        self.queue.put((pieces, buf))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def write_all(fd: int, pieces: list) -> None:
    views = [memoryview(p) for p in pieces if p]
    while views:
        n = os.writev(fd, views[:1024])
        while n and views:
            if n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][n:]
                n = 0
