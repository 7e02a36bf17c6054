"""The export step: create or reattach a Marketo job, wait, download, verify, stage, record.

Every step is recorded in the export ledger, so a re-launched run reattaches to its job (or
reuses its staged file) instead of spending quota again. `export` is the one call; it raises
`ExportFailed` for failures the caller reports, and re-raises anything else (an interrupt of
the wait cancels the Marketo job first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from marketo_assets.marketo import (
    DownloadResult,
    ExportJob,
    ExportRequest,
    ExportType,
    MarketoClient,
    errors,
)

from .capabilities import FilterCapabilities, capability_for
from .claims import RunStatus, claim_partition
from .errors import ExportFailed
from .events import Notice, OnEvent, ignore
from .ledger_base import ExportIdConflictError, Ledger, LedgerEntry
from .quota import History, Prediction, member_rows, progress
from .spec import ExportPart, ExportSpec, check_columns, safe_name
from .staging import Staging, staged_ok

__all__ = ["ExportClient", "ExportLimits", "ExportOutcome", "clean_staging_area", "export"]

MB = 1024 * 1024
EXTENSIONS = {"CSV": "csv", "TSV": "tsv", "SSV": "ssv"}
# Errors that fail the same way on a retry: the step fails at once, saying why.
NOT_RETRYABLE = (
    errors.InvalidFieldsError,
    errors.InvalidRequestError,
    errors.AuthenticationError,
    errors.DailyCallLimitError,
    errors.HostNotFoundError,
    ExportIdConflictError,  # the ledger belongs to another Marketo instance
)


class ExportClient(Protocol):
    """The Marketo client calls the engine makes (`MarketoClient` has them all). A job's calls
    name its export type (its paths); `exported_bytes_today` counts the jobs of every type."""

    @property
    def calls_made(self) -> int: ...

    def create_export(self, request: ExportRequest) -> ExportJob: ...
    def export_usable(self, export_id: str, export_type: ExportType = ...) -> ExportJob | None: ...
    def wait_for_export(
        self, export_id: str, *, export_type: ExportType = ..., seen: ExportJob | None = ...
    ) -> ExportJob: ...
    def cancel_export(self, export_id: str, export_type: ExportType = ...) -> ExportJob: ...
    def download_export(self, job: ExportJob, dest: Path) -> DownloadResult: ...
    def exported_bytes_today(self) -> int: ...
    def server_now(self) -> datetime: ...


C = TypeVar("C", bound=ExportClient)


@dataclass(frozen=True)
class ExportLimits:
    daily_quota_mb: float = 500
    # A job Marketo marks Failed is created again up to this many jobs in all.
    max_job_attempts: int = 3
    # A claim handed over between steps (or held on another host) is stale after this long.
    claim_lease_seconds: float = 3600.0
    # This project's daily budget (MB, at most the quota); None: only the quota is checked.
    budget_mb: float | None = None
    # A job whose size cannot be predicted yet waits for the jobs in flight (see quota.py).
    budget_poll_seconds: float = 5.0
    budget_wait_seconds: float = 3 * 3600.0

    @property
    def budget_bytes(self) -> int | None:
        return None if self.budget_mb is None else int(self.budget_mb * MB)


@dataclass
class ExportOutcome:
    """A verified staged export: one file, or (`export_ids`) one per job of a long window."""

    export_id: str
    path: Path
    records: int
    bytes: int
    # Plain values (numbers, text, bools, JSON-able lists and dicts) for the step's metadata.
    metadata: dict[str, Any] = field(default_factory=dict)
    # Bytes exported today as checked before this export's job was created (None: reattached).
    quota_used_before: int | None = None
    export_ids: list[str] = field(default_factory=list)
    reused: bool = False
    job_attempts: int = 0
    download_seconds: float | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def clean_staging_area(staging: Staging, ledger: Ledger, notify: OnEvent) -> None:
    """Delete staged files older than the staging's max age whose export is finished."""
    result = staging.clean(ledger)
    hours = staging.max_age_hours
    if result.deleted:
        notify(
            Notice(
                "staging_cleaned",
                f"Deleted {len(result.deleted)} staged file(s) older than {hours:g} h "
                f"({result.bytes_freed / MB:.1f} MB)",
            )
        )
    if result.kept_active:
        notify(
            Notice(
                "staging_kept",
                f"{len(result.kept_active)} staged file(s) older than {hours:g} h are kept: "
                "their export is not loaded yet",
                "warning",
            )
        )


def export(
    spec: ExportSpec | Callable[[C], ExportSpec],
    client: C,
    ledger: Ledger,
    staging: Staging,
    capabilities: FilterCapabilities,
    *,
    run_id: str,
    run_status: RunStatus | None = None,
    limits: ExportLimits = ExportLimits(),
    on_event: OnEvent = ignore,
    now: Callable[[], datetime] = _utc_now,
    preflight: Callable[[], None] | None = None,
) -> ExportOutcome:
    """Export one partition to verified staged file(s). `spec` may be a function of the client
    (describe, validation) called first. The partition is claimed for `run_id` and handed over
    to the same run's load step on success, released on failure. `preflight` runs after the
    local state is checked and before any Marketo call (e.g. can the load write its rows)."""
    clean_staging_area(staging, ledger, on_event)
    if preflight is not None:
        preflight()
    calls_before = client.calls_made
    built: ExportSpec | None = None
    try:
        built = spec if isinstance(spec, ExportSpec) else spec(client)
        check_columns(built.request)
        folder = staging.folder(safe_name(built.asset), safe_name(built.partition_key))
        asset, key, step_key = built.asset, built.partition_key, built.step_key
        claims = _claim_slots(ledger, built, run_id, limits, run_status)
        job = _Job(built, client, ledger, folder, capabilities, run_id, limits, on_event, now)
        try:
            plan = built.plan()
            outcomes = []
            for part in plan:
                if len(plan) > 1:
                    on_event(
                        Notice(
                            "export_part",
                            f"Export part {part.index + 1} of {len(plan)}: "
                            f"{part.request.filter.describe()}",
                        )
                    )
                outcomes.append(job.run(part))
            outcome = outcomes[0] if len(plan) == 1 else _combined(plan, outcomes)
        except BaseException:
            for claimed in claims:
                ledger.release(asset, claimed, run_id)
            raise
        if key != step_key:  # a batch's slot: the next member's step reuses its file
            ledger.release(asset, key, run_id)
        if built.members:
            ledger.add_members(outcome.export_id, asset, built.members)
        # The claim stays with this run until its load step has loaded the file.
        ledger.hand_over(asset, step_key, run_id)
        ledger.clear_stop(asset, step_key)
    except errors.QuotaExceededError as exc:
        if built is not None:
            ledger.record_stop(
                built.asset,
                built.step_key,
                reason="quota",
                resets_at=exc.reset_at,
                predicted_bytes=None,
                run_id=run_id,
            )
        raise ExportFailed(
            f"{exc} The quota_resume sensor launches this partition again after the reset; "
            "nothing was changed.",
            retryable=False,
            metadata={"quota_resets_at": exc.reset_at.isoformat(), "stopped_by": "quota"},
        ) from exc
    except errors.UnsupportedFilterError as exc:
        if built is None:
            raise ExportFailed(str(exc), retryable=False) from exc
        raise _unsupported(built, capabilities, exc, on_event) from exc
    except NOT_RETRYABLE as exc:
        raise ExportFailed(str(exc), retryable=False) from exc
    # Quota used today: the pre-create check's figure plus this export (saves a listing
    # call per job); a reattached or reused export has no such figure, so list again.
    before = outcome.quota_used_before
    used = before + outcome.bytes if before is not None else client.exported_bytes_today()
    outcome.metadata.update(
        {
            "rest_calls": client.calls_made - calls_before,
            "quota_used_today_bytes": used,
            "quota_used_today_pct": round(100 * used / (limits.daily_quota_mb * MB), 2),
        }
    )
    if limits.budget_bytes is not None:
        outcome.metadata.update(progress(ledger, used, limits.budget_bytes))
    return outcome


def _claim_slots(
    ledger: Ledger,
    spec: ExportSpec,
    run_id: str,
    limits: ExportLimits,
    run_status: RunStatus | None,
) -> list[str]:
    """Claim the step's partition; for a batch also the batch's slot, waiting while the step of
    another member creates (or reattaches to) and downloads the shared job."""
    asset, lease = spec.asset, limits.claim_lease_seconds
    claim_partition(
        ledger, asset, spec.step_key, run_id, lease_seconds=lease, run_status=run_status
    )
    if spec.partition_key == spec.step_key:
        return [spec.step_key]
    try:
        claim_partition(
            ledger,
            asset,
            spec.partition_key,
            run_id,
            lease_seconds=lease,
            run_status=run_status,
            wait_seconds=lease,
            poll_seconds=limits.budget_poll_seconds,
        )
    except BaseException:
        ledger.release(asset, spec.step_key, run_id)
        raise
    return [spec.step_key, spec.partition_key]


def _unsupported(
    spec: ExportSpec,
    capabilities: FilterCapabilities,
    exc: errors.UnsupportedFilterError,
    on_event: OnEvent,
) -> ExportFailed:
    """1035: remember it (sensors and schedules stop asking) and fail without retries."""
    kind = spec.request.filter.kind
    capability = capability_for(kind) or kind
    hint = spec.unsupported_hint or (
        "Ask Marketo Support to enable it, or export with the createdAt filter instead."
    )
    message = (
        f"The {kind} filter is not enabled for this Marketo subscription (Marketo error 1035: "
        f"{exc.message}). {hint}"
    )
    status = capabilities.record(capability, False, source="export", message=message)
    on_event(Notice("unsupported_filter", message, "error"))
    return ExportFailed(
        message,
        retryable=False,
        metadata={
            "marketo_error": "1035",
            "filter": kind,
            "recorded_at": status.checked_at.isoformat(timespec="seconds"),
            "capabilities_file": str(capabilities.path),
        },
    )


@dataclass
class _Job:
    """The life of one part's Marketo job (see `run`)."""

    spec: ExportSpec
    client: ExportClient
    ledger: Ledger
    folder: Path
    capabilities: FilterCapabilities
    run_id: str
    limits: ExportLimits
    notify: OnEvent
    now: Callable[[], datetime]

    def run(self, part: ExportPart) -> ExportOutcome:
        """Reuse the staged file, or reattach to the job, or create one; wait; download."""
        spec, ledger = self.spec, self.ledger
        entry = ledger.active(spec.asset, spec.partition_key, part.request_hash)
        if entry and entry.status == "downloaded" and staged_ok(entry):
            self._say(
                "reused",
                f"Export {entry.export_id} already downloaded; reusing the staged file",
                entry.export_id,
            )
            return _reused(entry)

        job: ExportJob | None = None
        if entry:
            job = self.client.export_usable(entry.export_id, part.request.export_type)
            if job is None:
                ledger.update(entry.export_id, status="expired", error="not reusable any more")
                self._say(
                    "not_reusable",
                    f"Export {entry.export_id} can no longer be used; creating anew",
                    entry.export_id,
                    "warning",
                )
            else:
                self._say(
                    "reattached",
                    f"Reattaching to export {job.export_id} ({job.status})",
                    job.export_id,
                )
        reattached = job is not None
        attempts = 1 if reattached else 0
        recreated_for_missing_file = False
        quota_used_before: int | None = None
        prediction: Prediction | None = None
        while True:
            if job is None:
                quota_used_before, prediction, job = self._check_and_create(part)
                attempts += 1
                self._say(
                    "created", f"Created export {job.export_id} (attempt {attempts})", job.export_id
                )
            try:
                job = self._wait(job)
            except errors.ExportJobFailedError as exc:
                ledger.update(job.export_id, status="failed", error=str(exc))
                if attempts >= self.limits.max_job_attempts:
                    raise ExportFailed(
                        f"Marketo failed export {job.export_id} {attempts} times: {exc}",
                        retryable=False,
                    ) from exc
                self._say(
                    "recreating",
                    f"Export {job.export_id} failed in Marketo ({exc}); re-creating",
                    job.export_id,
                    "warning",
                )
                job = None
                continue
            except errors.ExportTimeoutError as exc:
                ledger.update(job.export_id, status="cancelled", error=str(exc))
                raise ExportFailed(str(exc), retryable=False) from exc
            except errors.ExportJobCancelledError as exc:
                ledger.update(job.export_id, status="cancelled", error=str(exc))
                raise ExportFailed(str(exc), retryable=True) from exc

            dest = self.folder / f"{job.export_id}.{EXTENSIONS[part.request.format]}"
            try:
                download = self.client.download_export(job, dest)
            except errors.ExportFileExpiredError as exc:
                ledger.update(job.export_id, status="expired", error=str(exc))
                if recreated_for_missing_file:
                    raise ExportFailed(str(exc), retryable=True) from exc
                self._say(
                    "file_gone",
                    f"Export {job.export_id} is Completed but its file is gone ({exc}); "
                    "re-creating the job once",
                    job.export_id,
                    "warning",
                )
                recreated_for_missing_file = True
                job = None
                continue
            except errors.ChecksumMismatchError as exc:
                # Already downloaded checksum_retries + 1 times: a step retry would only fetch
                # the same bad file again. The next run of the partition creates a new job.
                ledger.update(job.export_id, status="failed", error=str(exc))
                raise ExportFailed(str(exc), retryable=False) from exc
            break

        ledger.update(
            job.export_id,
            status="downloaded",
            downloaded_at=self.now(),
            staged_file=str(download.path),
            records=job.number_of_records,
            bytes=download.bytes,
            checksum=job.file_checksum,
        )
        outcome = _downloaded(part, job, download, attempts, reattached, quota_used_before)
        if prediction is not None:
            outcome.metadata.update(prediction.metadata())
        return outcome

    def _say(self, kind: str, message: str, export_id: str | None, level: Any = "info") -> None:
        self.notify(Notice(kind, message, level, export_id))

    def _check_and_create(self, part: ExportPart) -> tuple[int, Prediction, ExportJob]:
        """Check the quota and the budget, then create the job, under the budget lock. A job
        of unknown size (or next to one) waits until nothing else is in flight."""
        deadline = time.monotonic() + self.limits.budget_wait_seconds
        said = False
        while True:
            with self.ledger.budget_lock():
                used, prediction, wait = self._check_quota(part)
                if not wait:
                    return used, prediction, self._create(part)
            if time.monotonic() > deadline:
                raise ExportFailed(
                    "Still waiting for the export jobs in flight to finish (their size teaches "
                    "the budget's prediction); the step is retried.",
                    retryable=True,
                )
            if not said:
                said = True
                self._say(
                    "budget_wait",
                    "Waiting for the export jobs in flight: the size of this job or of one of "
                    "them is not known yet (no history for its export type)",
                    None,
                )
            time.sleep(self.limits.budget_poll_seconds)

    def _check_quota(self, part: ExportPart) -> tuple[int, Prediction, bool]:
        """(bytes exported today, this job's predicted size, whether to wait). Fails (no retry)
        before any job when the quota is used up or the job would pass the budget; the
        partition is then recorded as stopped until the reset (see quota.py)."""
        spec, limits = self.spec, self.limits
        used = self.client.exported_bytes_today()
        reset = MarketoClient.quota_reset_time(self.client.server_now())
        quota_mb = limits.daily_quota_mb
        fields = part.record.get("payload", {}).get("fields", [])
        with self.ledger.reading():
            history = History.read(self.ledger)
            batch_rows = None
            if spec.partition_key != spec.step_key:  # a batch: its partitions' last rows
                batch_rows = member_rows(self.ledger, spec.asset, spec.members)
            prediction = history.predict(
                spec.asset, spec.partition_key, part.request_hash, fields, batch_rows
            )
        resume = "The quota_resume sensor launches this partition again then; nothing was changed."
        if used >= quota_mb * MB:
            self._stop("quota", reset, prediction)
            raise ExportFailed(
                f"Marketo's daily export quota ({quota_mb:g} MB) is used up "
                f"({used / MB:.1f} MB exported today). It resets at {reset.isoformat()} "
                f"(midnight America/Chicago). {resume}",
                retryable=False,
                metadata={"quota_resets_at": reset.isoformat(), "stopped_by": "quota"},
            )
        budget = limits.budget_bytes
        if budget is None:
            return used, prediction, False
        flight, unknown = history.in_flight(exclude={(spec.asset, spec.partition_key)})
        size = prediction.bytes
        if (size is None or unknown) and (flight or unknown):
            return used, prediction, True
        if size is not None and size > budget:
            raise ExportFailed(
                f"This export of {spec.asset} {spec.partition_key} is predicted at "
                f"{size / MB:.2f} MB, more than the whole daily budget ({budget / MB:.2f} MB, "
                "MARKETO_QUOTA_BUDGET_MB): it could never start. Raise the budget, or use "
                "shorter partitions (MARKETO_PARTITION_WINDOW). Nothing was changed.",
                retryable=False,
                metadata={**prediction.metadata(), "quota_budget_bytes": budget},
            )
        if used + flight + (size or 0) > budget or used >= budget:
            self._stop("budget", reset, prediction)
            predicted = "unknown" if size is None else f"{size / MB:.2f} MB"
            raise ExportFailed(
                f"Daily budget reached: this export of {spec.asset} {spec.partition_key} "
                f"(predicted {predicted}) would pass the budget of {budget / MB:.2f} MB "
                f"(MARKETO_QUOTA_BUDGET_MB) with {used / MB:.2f} MB exported today and "
                f"{flight / MB:.2f} MB in flight. The budget resets at {reset.isoformat()} "
                f"(midnight America/Chicago). {resume}",
                retryable=False,
                metadata={
                    "stopped_by": "budget",
                    "quota_resets_at": reset.isoformat(),
                    "quota_used_today_bytes": used,
                    "in_flight_bytes": flight,
                    **prediction.metadata(),
                    **progress(self.ledger, used, budget),
                },
            )
        return used, prediction, False

    def _stop(self, reason: str, reset: datetime, prediction: Prediction) -> None:
        self.ledger.record_stop(
            self.spec.asset,
            self.spec.step_key,
            reason=reason,
            resets_at=reset,
            predicted_bytes=prediction.bytes,
            run_id=self.run_id,
        )

    def _create(self, part: ExportPart) -> ExportJob:
        spec, ledger = self.spec, self.ledger
        job = self.client.create_export(part.request)
        self._remember_supported()
        ledger.record_created(
            export_id=job.export_id,
            asset=spec.asset,
            partition_key=spec.partition_key,
            request_hash=part.request_hash,
            request=part.record,
            run_id=self.run_id,
        )
        siblings = [h for h in part.record.get("parts", ()) if h != part.request_hash]
        ledger.supersede_others(
            spec.asset, spec.partition_key, keep=job.export_id, siblings=siblings
        )
        return job

    def _remember_supported(self) -> None:
        capability = capability_for(self.spec.request.filter.kind)
        if capability is None:
            return
        known = self.capabilities.get(capability)
        if known is None or not known.supported:
            self.capabilities.record(capability, True, source="export")

    def _wait(self, job: ExportJob) -> ExportJob:
        """Wait for Completed; an interrupted wait cancels the Marketo job, then re-raises."""
        try:
            done = self.client.wait_for_export(job.export_id, export_type=job.export_type, seen=job)
        except Exception:
            raise
        except BaseException:  # an interrupt (KeyboardInterrupt, the orchestrator's own)
            self._say(
                "interrupted",
                f"Run interrupted: cancelling Marketo export {job.export_id}",
                job.export_id,
                "warning",
            )
            try:
                self.client.cancel_export(job.export_id, job.export_type)
                self.ledger.update(job.export_id, status="cancelled", error="run interrupted")
            except Exception as exc:  # best effort: the interrupt must still propagate
                self._say(
                    "cancel_failed",
                    f"Could not cancel export {job.export_id}: {exc}",
                    job.export_id,
                    "error",
                )
            raise
        self.ledger.update(
            done.export_id,
            status="completed",
            queued_at=done.queued_at,
            started_at=done.started_at,
            finished_at=done.finished_at,
            records=done.number_of_records,
            bytes=done.file_size,
            checksum=done.file_checksum,
        )
        return done


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _downloaded(
    part: ExportPart,
    job: ExportJob,
    download: DownloadResult,
    attempts: int,
    reattached: bool,
    quota_used_before: int | None,
) -> ExportOutcome:
    seconds = float(download.seconds)
    metadata: dict[str, Any] = {
        "export_id": job.export_id,
        "records": job.number_of_records or 0,
        "file_size_bytes": download.bytes,
        "checksum_verified": True,
        "download_seconds": round(seconds, 3),
        "download_mb_per_s": round(download.bytes / MB / seconds, 2) if seconds else 0.0,
        "download_resumes": download.resumes,
        "job_attempts": attempts,
        "reattached": reattached and attempts == 1,
        "filter": part.request.payload()["filter"],
    }
    queue_wait = _seconds(job.queued_at, job.started_at)
    processing = _seconds(job.started_at, job.finished_at)
    if queue_wait is not None:
        metadata["queue_wait_seconds"] = float(queue_wait)
    if processing is not None:
        metadata["processing_seconds"] = float(processing)
    return ExportOutcome(
        export_id=job.export_id,
        path=download.path,
        records=job.number_of_records or 0,
        bytes=download.bytes,
        metadata=metadata,
        quota_used_before=quota_used_before,
        export_ids=[job.export_id],
        job_attempts=attempts,
        download_seconds=round(seconds, 3),
    )


def _reused(entry: LedgerEntry) -> ExportOutcome:
    return ExportOutcome(
        export_id=entry.export_id,
        path=Path(entry.staged_file or ""),
        records=entry.records or 0,
        bytes=entry.bytes or 0,
        metadata={
            "export_id": entry.export_id,
            "records": entry.records or 0,
            "file_size_bytes": entry.bytes or 0,
            "checksum_verified": True,
            "reused_staged_file": True,
        },
        export_ids=[entry.export_id],
        reused=True,
    )


def _combined(plan: list[ExportPart], outcomes: list[ExportOutcome]) -> ExportOutcome:
    """The outcome of a partition exported as several jobs: totals, and each job's export id,
    filter and size."""
    befores = [o.quota_used_before for o in outcomes]
    seconds = [o.download_seconds for o in outcomes]
    metadata: dict[str, Any] = {
        "export_ids": [o.export_id for o in outcomes],
        "export_parts": len(outcomes),
        "records": sum(o.records for o in outcomes),
        "file_size_bytes": sum(o.bytes for o in outcomes),
        "checksum_verified": True,
        "job_attempts": sum(o.job_attempts for o in outcomes),
        "parts": [
            {
                "export_id": o.export_id,
                "filter": p.request.payload()["filter"],
                "records": o.records,
                "file_size_bytes": o.bytes,
                "reused_staged_file": o.reused,
            }
            for p, o in zip(plan, outcomes, strict=True)
        ],
    }
    total: float | None = None
    if all(s is not None for s in seconds):
        total = round(sum(s or 0.0 for s in seconds), 3)
        metadata["download_seconds"] = total
    return ExportOutcome(
        export_id=",".join(o.export_id for o in outcomes),
        path=outcomes[0].path,
        records=sum(o.records for o in outcomes),
        bytes=sum(o.bytes for o in outcomes),
        metadata=metadata,
        # The first job's pre-create figure plus all files; unknown if a job was reused.
        quota_used_before=None if None in befores else befores[0],
        export_ids=[o.export_id for o in outcomes],
        reused=all(o.reused for o in outcomes),
        job_attempts=sum(o.job_attempts for o in outcomes),
        download_seconds=total,
    )
