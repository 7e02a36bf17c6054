"""A load on another machine than its export: download the verified file again by export id.

Without a shared disk (one pod per run, several workers; MARKETO_LEDGER=postgres) the load
step may run where the export's staged file is not. Marketo keeps a Completed job's file for
7 days and a download spends no export quota, so the load downloads it again into its own
staging folder (same size and SHA-256 check as the export step) instead of exporting again.
The ledger keeps the export machine's path: that machine deletes its copy once the export is
loaded (staging.clean_staging), and this copy is deleted by the load like any staged file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Protocol

from marketo_assets.marketo import DownloadResult, ExportJob, ExportType, errors

from .errors import ExportFailed
from .events import Notice, OnEvent
from .ledger_base import Ledger, LedgerEntry
from .spec import safe_name
from .staging import Staging, staged_ok

__all__ = ["FileClient", "fetch_again"]


class FileClient(Protocol):
    """The Marketo calls a download again needs (`MarketoClient` has them)."""

    def export_usable(self, export_id: str, export_type: ExportType = ...) -> ExportJob | None: ...
    def download_export(self, job: ExportJob, dest: Path) -> DownloadResult: ...


def fetch_again(
    client: FileClient, ledger: Ledger, staging: Staging, entry: LedgerEntry, on_event: OnEvent
) -> LedgerEntry:
    """`entry` with `staged_file` in this machine's staging folder: the copy a failed attempt
    here left, or the file downloaded again from Marketo. ExportFailed (no retry) when Marketo
    no longer has it: the export step must run again."""
    name = Path(entry.staged_file or "").name or f"{entry.export_id}.csv"
    folder = staging.folder(safe_name(entry.asset), safe_name(entry.partition_key))
    here = replace(entry, staged_file=str(folder / name))
    if staged_ok(here):
        return here
    job = client.export_usable(entry.export_id, entry.request.get("export_type", "leads"))
    gone = job is None or job.status != "Completed"
    if job is not None and not gone and entry.checksum and job.file_checksum != entry.checksum:
        raise ExportFailed(
            f"Marketo's file of export {entry.export_id} has checksum {job.file_checksum}, not "
            f"the {entry.checksum} verified when it was exported: it is not loaded. Re-run the "
            f"export step of {entry.asset} partition {entry.partition_key}.",
            retryable=False,
        )
    try:
        download = None if gone or job is None else client.download_export(job, folder / name)
    except errors.ExportFileExpiredError:
        download = None
    except errors.ChecksumMismatchError as exc:
        raise ExportFailed(str(exc), retryable=False) from exc
    if download is None:
        error = "its file is gone from Marketo (kept 7 days) before it was loaded"
        ledger.update(entry.export_id, status="expired", error=error)
        raise ExportFailed(
            f"Export {entry.export_id} of {entry.asset} partition {entry.partition_key} was "
            f"downloaded on another machine ({entry.staged_file}) and Marketo no longer has "
            "its file (Marketo keeps export files 7 days), so this machine cannot load it; "
            "nothing was loaded. Materialize the export step of this partition again: it "
            "creates a new export job.",
            retryable=False,
        )
    on_event(
        Notice(
            "downloaded_again",
            f"Export {entry.export_id} was staged on another machine: downloaded it again "
            f"({download.bytes} bytes, SHA-256 verified; no export quota used)",
            export_id=entry.export_id,
        )
    )
    return replace(here, staged_file=str(download.path), bytes=download.bytes)
