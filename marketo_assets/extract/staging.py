"""The staging folder of downloaded export files: private to the user, cleaned by age.

Export files hold personal data. They are written 0600 (download.py) into folders made 0700
here, deleted by the load step once their load is committed, kept when a load fails (the retry
loads them without exporting again), and deleted by `clean_staging` once they are older than
the configured age — but never while their ledger entry is still active (created, queued,
processing, completed or downloaded): such a file may still be loaded.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .ledger import ACTIVE, ExportLedger, LedgerEntry

__all__ = [
    "CleanupResult",
    "Staging",
    "clean_staging",
    "discard_staged",
    "private_dir",
    "staged_ok",
]

log = logging.getLogger("marketo_assets.extract")
_EXPORT_ID = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", re.IGNORECASE)


def private_dir(root: Path, *parts: str) -> Path:
    """`root/parts...`, every level created (or fixed) as 0700, whatever the umask."""
    path = Path(root)
    for part in ("", *parts):
        path = path / part if part else path
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o777 != 0o700:
            path.chmod(0o700)
    return path


@dataclass
class CleanupResult:
    deleted: list[Path] = field(default_factory=list)
    kept_active: list[Path] = field(default_factory=list)
    bytes_freed: int = 0


def _export_id_of(path: Path) -> str | None:
    match = _EXPORT_ID.search(path.name)
    return match.group(0).lower() if match else None


def clean_staging(
    root: Path, ledger: ExportLedger, max_age_seconds: float, now: float | None = None
) -> CleanupResult:
    """Delete files under `root` last modified more than `max_age_seconds` ago, unless the
    export they belong to (the export id in the file name) is still active in the ledger.
    Files of finished exports (loaded, failed, cancelled, expired, superseded) and files no
    export claims (a `.part` of a killed download, a leftover temp file) are deleted. Folders
    stay (another step may be about to write into one). Never raises for a file that vanished
    meanwhile."""
    root = Path(root)
    result = CleanupResult()
    if not root.is_dir():
        return result
    now = time.time() if now is None else now
    cutoff = now - max_age_seconds
    active_ids = {
        e.export_id.lower() for e in ledger.entries() if e.status in ACTIVE and e.export_id
    }
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue
            if stat.st_mtime > cutoff:
                continue
            export_id = _export_id_of(path)
            if export_id is not None and export_id in active_ids:
                result.kept_active.append(path)
                continue
            try:
                path.unlink()
            except FileNotFoundError:
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

    def clean(self, ledger: ExportLedger) -> CleanupResult:
        return clean_staging(self.root, ledger, self.max_age_hours * 3600)


def staged_ok(entry: LedgerEntry) -> bool:
    """The entry's staged file is there, whole (its recorded size)."""
    path = Path(entry.staged_file) if entry.staged_file else None
    return bool(path and path.exists() and path.stat().st_size == (entry.bytes or 0))


def discard_staged(staged_file: str | None) -> bool:
    """Delete a loaded export's staged file (personal data); True when there was one."""
    if not staged_file:
        return False
    path = Path(staged_file)
    path.unlink(missing_ok=True)
    # NUL-free copies a killed load left behind (warehouse.strip_nul) hold the same data.
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.nonul"):
        leftover.unlink(missing_ok=True)
    return True
