"""Local files and folders that hold personal data: created private, checked before use.

Export files, the ledger and the warehouse hold lead data. What the project creates is private
(files 0600, folders 0700, whatever the umask); what exists already is the user's and keeps its
mode. A configured path that cannot work (a file where a folder is expected, a path under a
regular file, a folder that is not writable) raises LocalPathError naming the setting, the path
and the fix: retrying cannot help.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "LocalPathError",
    "create_private_file",
    "private_dirs",
    "private_umask",
    "require_writable",
]

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


class LocalPathError(Exception):
    """A configured local path cannot be used. Not transient: the message says what to fix."""


def path_error(setting: str, configured: Path, problem: str, fix: str) -> LocalPathError:
    name = setting or "The path"
    return LocalPathError(f"{name} is {configured}, but {problem}. {fix}")


def private_dirs(path: Path, setting: str = "", configured: Path | None = None) -> Path:
    """Make sure the folder `path` exists. Missing levels are created 0700 (they are ours);
    levels that exist keep their mode. `setting` and `configured` (default `path`) name what
    the user set, for the error when a level is a file or cannot be created."""
    path = Path(path)
    configured = Path(configured or path)
    fix = f"Set {setting or 'it'} to a folder you can write to (missing folders are created)."
    try:
        missing: list[Path] = []
        level = path
        while not (level.exists() or level.is_symlink()) and level != level.parent:
            missing.append(level)
            level = level.parent
        if not level.is_dir():
            raise path_error(setting, configured, f"{level} is a file, not a folder", fix)
        for level in reversed(missing):
            try:
                level.mkdir(mode=0o700)
            except FileExistsError:
                if level.is_dir():
                    continue  # another process made it meanwhile
                raise path_error(
                    setting, configured, f"{level} is a file, not a folder", fix
                ) from None
            level.chmod(0o700)  # ours: the umask does not decide
    except LocalPathError:
        raise
    except OSError as exc:
        where = exc.filename or path
        if exc.errno in _DENIED:
            problem = f"{Path(where).parent} is not writable ({exc.strerror})"
        else:
            problem = f"{where} cannot be created ({exc.strerror})"
        raise path_error(setting, configured, problem, fix) from exc
    return path


def create_private_file(path: Path) -> bool:
    """Create `path` empty with mode 0600, unless it exists. True if this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return True


def require_writable(folder: Path, setting: str, configured: Path) -> None:
    """LocalPathError unless this user may create files in `folder`."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise path_error(
            setting,
            configured,
            f"{folder} is not writable for this user",
            f"Make it writable for the user running Dagster, or set {setting or 'it'} to "
            "another folder.",
        )


_umask_lock = threading.Lock()
_umask_depth = 0
_umask_saved = 0


@contextmanager
def private_umask() -> Iterator[None]:
    """While open, files this process (or a process it starts) creates are 0600 and folders
    0700: for files a library creates itself, such as DuckDB's database, `.wal` and temp files.
    The umask is per process: nested or concurrent uses restore it once, at the last exit."""
    global _umask_depth, _umask_saved
    with _umask_lock:
        if _umask_depth == 0:
            old = os.umask(0o077)
            os.umask(old | 0o077)
            _umask_saved = old
        _umask_depth += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_depth -= 1
            if _umask_depth == 0:
                os.umask(_umask_saved)
