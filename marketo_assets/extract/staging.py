"""The staging folder of downloaded export files: the project's own, private, cleaned by age.

MARKETO_STAGING_DIR may be a folder the user keeps other files in (a shared data/, ~/Downloads).
The project works only inside one sub-folder of it, `marketo_assets/`, which it creates 0700
with a marker file (`staging_root`); the folder itself is created if missing, and otherwise
keeps its mode. Export files hold personal data: they are written 0600 (download.py), deleted
by the load step once their load is committed, kept when a load fails (the retry loads them
without exporting again), and deleted by `clean_staging` once they are older than the
configured age — only files the ledger knows the project made, and never while their export is
still active (created, queued, processing, completed or downloaded). Without a shared disk
(runs on several machines, MARKETO_LEDGER=postgres) the load may run on another machine than
the export: it downloads the file again by export id (load.py), and the export's machine
deletes its copy at its next cleaning, whatever its age, once the ledger says it is loaded.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .ledger_base import ACTIVE, Ledger, LedgerEntry
from .local_paths import LocalPathError, path_error, private_dirs, require_writable

__all__ = [
    "MARKER",
    "OWNED",
    "CleanupResult",
    "Staging",
    "clean_staging",
    "discard_staged",
    "private_dir",
    "staged_ok",
    "staging_root",
]

log = logging.getLogger("marketo_assets.extract")
OWNED = "marketo_assets"  # the project's folder inside MARKETO_STAGING_DIR
MARKER = ".marketo_assets-staging"  # in OWNED: the project created it
_MARKER_TEXT = (
    "This folder is managed by marketo_assets (MARKETO_STAGING_DIR). It holds Marketo export "
    "files (personal data), which are deleted automatically. Do not keep your own files here.\n"
)
_UUID = r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}"
# What the project writes: `<export id>.<ext>`, its `.part` while downloading, the NUL-free
# copy `.<export id>.<ext>.<random>.nonul` of the loader (warehouse.strip_nul), and a loaded
# file being deleted, `.<export id>.<ext>.<random>.deleted` (discard_staged).
_OUR_FILE = re.compile(
    rf"(?P<id>{_UUID})\.(?:csv|tsv|ssv)(?:\.part)?"
    rf"|\.(?P<tmp>{_UUID})\.(?:csv|tsv|ssv)\.\w+\.(?:nonul|deleted)",
    re.IGNORECASE,
)
DELETED = ".deleted"
DISCARD_THREAD = "marketo_assets-discard-staged"


def staging_root(staging_dir: Path, setting: str = "MARKETO_STAGING_DIR") -> Path:
    """The project's own folder `staging_dir/marketo_assets` (0700, with its marker), created
    when missing. `staging_dir` is created (0700) when missing; an existing one is not changed.
    LocalPathError when a path cannot work, or when `marketo_assets` exists without the marker
    (the project did not make it: its content is not touched)."""
    base = Path(staging_dir)
    private_dirs(base, setting)
    owned = base / OWNED
    try:
        if not (owned / MARKER).is_file():
            _create_owned(base, owned, setting)
        if owned.stat().st_mode & 0o777 != 0o700:
            owned.chmod(0o700)  # ours (the marker says so)
    except LocalPathError:
        raise
    except OSError as exc:
        problem = f"{owned} cannot be used ({exc.strerror})"
        fix = f"Make {base} writable for the user running Dagster, or set {setting} elsewhere."
        raise path_error(setting, base, problem, fix) from exc
    require_writable(owned, setting, base)
    return owned


def _create_owned(base: Path, owned: Path, setting: str) -> None:
    if owned.exists() or owned.is_symlink():
        raise _not_ours(base, owned, setting)
    require_writable(base, setting, base)
    # Made complete under a temporary name, then renamed: no process ever sees it unmarked.
    tmp = Path(tempfile.mkdtemp(prefix=f".{OWNED}-", dir=base))
    try:
        (tmp / MARKER).write_text(_MARKER_TEXT)
        os.rename(tmp, owned)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (owned / MARKER).is_file():  # else another process created it meanwhile
            raise


def _not_ours(base: Path, owned: Path, setting: str) -> LocalPathError:
    return path_error(
        setting,
        base,
        f"{owned} exists and was not created by marketo_assets (it has no {MARKER} file); "
        "nothing in it was changed",
        f"Move that folder away, or set {setting} to another folder.",
    )


def private_dir(root: Path, *parts: str) -> Path:
    """`root/parts...` below the project's own folder `root`, each level created (or fixed)
    as 0700 whatever the umask."""
    path = Path(root)
    for part in parts:
        path = path / part
        path.mkdir(exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o777 != 0o700:
            path.chmod(0o700)
    return path


@dataclass
class CleanupResult:
    deleted: list[Path] = field(default_factory=list)
    kept_active: list[Path] = field(default_factory=list)
    bytes_freed: int = 0


def _export_id_of(path: Path) -> str | None:
    match = _OUR_FILE.fullmatch(path.name)
    return (match.group("id") or match.group("tmp")).lower() if match else None


def _loaded_copy(path: Path, status: str) -> bool:
    """A whole export file of an export that is loaded: its load ran on another machine
    (a load deletes its own file), so this copy is never needed again."""
    return status == "loaded" and not path.name.startswith(".") and path.suffix != ".part"


def clean_staging(
    root: Path, ledger: Ledger, max_age_seconds: float, now: float | None = None
) -> CleanupResult:
    """Delete the files the project staged that are older than `max_age_seconds` and whose
    export is finished (loaded, failed, cancelled, expired, superseded), and at once the
    export file of an export another machine loaded, or a loaded file being deleted by a
    process that was killed. A file is the
    project's when it is under its own folder `root` and named after an export of the ledger
    (the export file, its `.part`, a NUL-free copy), or when it is the staged file a ledger
    entry records (an earlier version staged outside `root`). Every other file is left alone,
    as are folders (another step may be about to write into one). Never raises for a file
    that vanished meanwhile."""
    root = Path(root)
    result = CleanupResult()
    now = time.time() if now is None else now
    cutoff = now - max_age_seconds
    found: dict[Path, str] = {}
    if root.is_dir():
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                export_id = _export_id_of(path)
                if export_id:
                    found[path] = export_id
    # Only the exports of these files, and those staged outside `root`: not the whole history.
    states = ledger.file_states(set(found.values()), outside=str(root))
    entries = {export_id: state for export_id, state in states.items() if export_id}
    candidates = {path: export_id for path, export_id in found.items() if export_id in entries}
    for export_id, (status, staged_file) in entries.items():
        if staged_file and status not in ACTIVE:
            path = Path(staged_file)
            if _export_id_of(path) == export_id:
                candidates.setdefault(path, export_id)
    for path, export_id in candidates.items():
        try:
            stat = path.lstat()
        except OSError:  # vanished meanwhile, or not ours to reach
            continue
        doomed = path.suffix == DELETED  # loaded; its deletion was cut short (discard_staged)
        status = entries[export_id][0]
        if not doomed and stat.st_mtime > cutoff and not _loaded_copy(path, status):
            continue
        if not doomed and status in ACTIVE:
            result.kept_active.append(path)
            continue
        try:
            path.unlink()
        except OSError:
            continue
        result.bytes_freed += stat.st_size
        result.deleted.append(path)
    if result.deleted:
        log.info("extract: deleted %d old staged file(s)", len(result.deleted))
    return result


@dataclass(frozen=True)
class Staging:
    """The staging folder and how long its files may stay."""

    root: Path
    max_age_hours: float = 168.0

    def folder(self, *parts: str) -> Path:
        """A private folder under the root (every level 0700): export files hold personal data."""
        return private_dir(self.root, *parts)

    def clean(self, ledger: Ledger) -> CleanupResult:
        return clean_staging(self.root, ledger, self.max_age_hours * 3600)


def staged_ok(entry: LedgerEntry) -> bool:
    """The entry's staged file is there, whole (its recorded size)."""
    path = Path(entry.staged_file) if entry.staged_file else None
    return bool(path and path.exists() and path.stat().st_size == (entry.bytes or 0))


def discard_staged(staged_file: str | None) -> bool:
    """Delete a loaded export's staged file (personal data); True when there was one. It is
    renamed out of the way at once, then unlinked by a thread (freeing a file of hundreds of MB
    takes ~0.1 s) that the process waits for before it exits; should the process be killed
    first, the next `clean_staging` deletes it."""
    if not staged_file:
        return False
    path = Path(staged_file)
    doomed = path.with_name(f".{path.name}.{secrets.token_hex(4)}{DELETED}")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        pass
    else:
        unlink = threading.Thread(target=doomed.unlink, name=DISCARD_THREAD, args=(True,))
        unlink.start()
    # NUL-free copies a killed load left behind (warehouse.strip_nul) hold the same data.
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.nonul"):
        leftover.unlink(missing_ok=True)
    return True
