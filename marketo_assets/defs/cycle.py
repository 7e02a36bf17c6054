"""The export cycle as Dagster steps: export (Marketo pool) and load (DuckDB pool).

`run_export` creates or reattaches to a Marketo job, waits, downloads and verifies the file, and
records every step in the export ledger. `run_load` loads the newest downloaded file of a
partition into DuckDB in one transaction and evaluates the checks every raw table shares (rows =
`numberOfRecords`, no lead twice in the partition). A partition whose window is longer than
Marketo's 31 days is exported as several jobs (`ExportSpec.of`), one ledger entry each, and
loaded from all their files in one transaction. The two steps meet only through the ledger,
so a failed load is retried without spending export quota again. Leads, lead changes and list
memberships all go through these two functions.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.marketo import Event, ExportJob, ExportRequest, MarketoClient, errors
from marketo_assets.marketo.capabilities import capability_for
from marketo_assets.marketo.ledger import ExportIdConflictError, ExportLedger, LedgerEntry
from marketo_assets.marketo.staging import clean_staging
from marketo_assets.warehouse import (
    CastError,
    HeaderMismatchError,
    LoadResult,
    SchemaConflictError,
    WarehouseSession,
    columns_for,
)

from .resources import RESERVED_COLUMNS, MarketoResource, check_warehouse, warehouse_session

MB = 1024 * 1024
# Run tag set by sensors and schedules: the source state a run exports (see ExportSpec).
GENERATION_TAG = "marketo/export_generation"
# Fields Marketo lists in describe but will not export.
NOT_EXPORTABLE = {"formula"}
_EXTENSIONS = {"CSV": "csv", "TSV": "tsv", "SSV": "ssv"}


@dataclass(frozen=True)
class ExportPart:
    """One Marketo job of a partition's export: its request, ledger hash and ledger record."""

    index: int
    request: ExportRequest
    request_hash: str
    record: dict


@dataclass(frozen=True)
class ExportSpec:
    """One partition's export: which ledger slot it fills and what Marketo is asked for.

    Usually one Marketo job (`request`). A window longer than Marketo's 31 days is sent as
    several jobs (`parts`, all of them in window order; build it with `ExportSpec.of`): each
    is created, reattached and recorded in the ledger on its own, and the load step loads all
    their files in one transaction as the one partition."""

    asset: str
    partition_key: str
    request: ExportRequest
    field_types: list[tuple[str, str]]
    # What to tell the user when Marketo answers 1035 (filter not enabled for the subscription).
    unsupported_hint: str | None = None
    # Which state of the source this export is for (e.g. the list's updatedAt, the schedule
    # tick): an export staged for another generation is never reused. Empty = any.
    generation: str = ""
    # Every job of a partition exported as several (`request` is the first); empty for one.
    parts: tuple[ExportRequest, ...] = ()

    @classmethod
    def of(
        cls,
        asset: str,
        partition_key: str,
        requests: Sequence[ExportRequest],
        field_types: list[tuple[str, str]],
        **options,
    ) -> ExportSpec:
        """A spec for one or several jobs (e.g. the windows of `split_window`)."""
        first, *rest = requests
        parts = (first, *rest) if rest else ()
        return cls(asset, partition_key, first, field_types, parts=parts, **options)

    def _hash(self, request: ExportRequest) -> str:
        payload: object = request.payload()
        if self.generation:
            payload = {"payload": payload, "generation": self.generation}
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def request_hash(self) -> str:
        return self._hash(self.request)

    def ledger_record(self) -> dict:
        return {"payload": self.request.payload(), "field_types": self.field_types}

    def plan(self) -> list[ExportPart]:
        """The jobs to run. A part's ledger record lists the hashes of all parts, so the load
        step finds the whole set."""
        if not self.parts:
            return [ExportPart(0, self.request, self.request_hash, self.ledger_record())]
        hashes = [self._hash(r) for r in self.parts]
        return [
            ExportPart(
                i,
                request,
                hashes[i],
                {
                    "payload": request.payload(),
                    "field_types": self.field_types,
                    "part": i,
                    "parts": hashes,
                },
            )
            for i, request in enumerate(self.parts)
        ]


@dataclass
class ExportOutcome:
    export_id: str
    path: Path
    records: int
    bytes: int
    metadata: dict[str, object] = field(default_factory=dict)
    # Bytes exported today as checked before this export's job was created (None: reattached).
    quota_used_before: int | None = None


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def select_fields(described: list, wanted: list[str], required: list[str]) -> list[tuple[str, str]]:
    """(name, data_type) pairs to export; validates names against describe before any job."""
    types = {f.name: f.data_type for f in described}
    if wanted:
        unknown = [name for name in wanted if name not in types]
        if unknown:
            raise dg.Failure(
                description=(
                    f"Unknown Marketo lead fields: {', '.join(unknown)}. Use REST names from "
                    "describe (`GET /rest/v1/leads/describe2.json`) in the `fields` option."
                ),
                allow_retries=False,
            )
        names = list(dict.fromkeys(wanted))
    else:
        names = [f.name for f in described if f.data_type not in NOT_EXPORTABLE]
    for name in reversed(required):
        if name not in names:
            names.insert(0, name)
    return [(name, types[name]) for name in names]


def check_columns(request: ExportRequest) -> None:
    """Table columns are the REST field names (DuckDB names ignore case) next to the lineage
    columns; a clash would fail the load after the export spent quota, so fail now. Headers
    only label the file's columns, but are held to the same rule so the file is unambiguous."""
    fields: dict[str, str] = {name: name for name in RESERVED_COLUMNS}
    for field_name in request.fields:
        if field_name.casefold() in fields:
            raise dg.Failure(
                description=(
                    f"The export's fields {fields[field_name.casefold()]!r} and {field_name!r} "
                    "would be one table column (DuckDB column names ignore case). Export only "
                    "one of them (fields, MARKETO_FIELDS)."
                ),
                allow_retries=False,
            )
        fields[field_name.casefold()] = field_name
    seen: dict[str, str] = {name: name for name in RESERVED_COLUMNS}
    for field_name, header in zip(request.fields, request.headers(), strict=True):
        folded = header.casefold()
        if folded in seen:
            raise dg.Failure(
                description=(
                    f"The export's column {header!r} (field {field_name!r}) clashes with "
                    f"column {seen[folded]!r}: DuckDB column names ignore case and "
                    f"{', '.join(RESERVED_COLUMNS)} are lineage columns. Give the field "
                    "another header in column_header_names (MARKETO_COLUMN_HEADER_NAMES)."
                ),
                allow_retries=False,
            )
        seen[folded] = header


def clean_staged_files(context: dg.AssetExecutionContext, marketo: MarketoResource) -> None:
    """Delete staged files older than `staging_max_age_hours` whose export is finished (only
    the project's own, see marketo.staging); fails at once if the staging folder cannot work."""
    root = marketo.staging_root()
    result = clean_staging(root, marketo.ledger(), marketo.staging_max_age_hours * 3600)
    if result.deleted:
        context.log.info(
            f"Deleted {len(result.deleted)} staged file(s) older than "
            f"{marketo.staging_max_age_hours:g} h ({result.bytes_freed / MB:.1f} MB)"
        )
    if result.kept_active:
        context.log.warning(
            f"{len(result.kept_active)} staged file(s) older than "
            f"{marketo.staging_max_age_hours:g} h are kept: their export is not loaded yet"
        )


def _log_event(context: dg.AssetExecutionContext):
    last_progress = {"mb": -1}

    def handle(event: Event) -> None:
        data = event.data
        if event.kind == "status":
            context.log.info(f"Export {event.export_id}: {data.get('status')}")
        elif event.kind == "download_progress":
            mb = int(data.get("bytes", 0) // (64 * MB))
            if mb != last_progress["mb"]:
                last_progress["mb"] = mb
                context.log.info(
                    f"Export {event.export_id}: downloaded {data.get('bytes', 0) / MB:.1f} MB"
                    f" of {(data.get('total') or 0) / MB:.1f} MB"
                )
        elif event.kind in ("retry", "rate_limited", "enqueue_wait", "download_resumed"):
            context.log.warning(f"Marketo {event.kind}: {_short(data)}")
        elif event.kind == "checksum_mismatch":
            context.log.warning(f"Export {event.export_id}: checksum mismatch, downloading again")

    return handle


log_events = _log_event  # for assets that call Marketo outside run_export


def _short(data: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items())


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _fail_unsupported(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    spec: ExportSpec,
    exc: errors.UnsupportedFilterError,
) -> dg.Failure:
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
    status = marketo.capabilities().record(capability, False, source="export", message=message)
    context.log.error(message)
    return dg.Failure(
        description=message,
        metadata={
            "marketo_error": "1035",
            "filter": kind,
            "recorded_at": status.checked_at.isoformat(timespec="seconds"),
            "capabilities_file": str(marketo.capabilities().path),
        },
        allow_retries=False,
    )


def _remember_supported(marketo: MarketoResource, spec: ExportSpec) -> None:
    capability = capability_for(spec.request.filter.kind)
    if capability is None:
        return
    store = marketo.capabilities()
    known = store.get(capability)
    if known is None or not known.supported:
        store.record(capability, True, source="export")


def _fail_quota(exc: errors.QuotaExceededError) -> dg.Failure:
    return dg.Failure(
        description=f"{exc} Re-run this partition after the reset; nothing was changed.",
        metadata={"quota_resets_at": dg.MetadataValue.text(exc.reset_at.isoformat())},
        allow_retries=False,
    )


class RunTerminated(dg.DagsterError, dg.DagsterExecutionInterruptedError):
    """The run is being terminated: end the step as interrupted, without a retry.

    Dagster honours a step's RetryPolicy after an interrupt (meant for pre-empted workers), and
    the in-process executor has nothing else that stops the run: a terminated export step slept
    its retry delay and then ran again, creating a new Marketo job, and the run stayed
    CANCELING. Raised instead of the interrupt when the run's status is CANCELING: as a
    DagsterError it passes the retry policy untouched, as an interrupt it ends the run CANCELED.
    """


def _terminating(context: dg.AssetExecutionContext) -> bool:
    try:
        run = context.instance.get_run_by_id(context.run.run_id)
    except Exception:  # the check must never hide the interrupt itself
        return False
    return run is not None and run.status in (
        dg.DagsterRunStatus.CANCELING,
        dg.DagsterRunStatus.CANCELED,
    )


@contextmanager
def stop_when_terminated(context: dg.AssetExecutionContext) -> Iterator[None]:
    """Turn the interrupt of a terminated run into RunTerminated (see there); an interrupt
    of a run nobody terminated (a pre-empted worker) keeps the retry policy."""
    try:
        yield
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
        if not isinstance(exc, RunTerminated) and _terminating(context):
            raise RunTerminated("The run was terminated.") from exc
        raise


def run_export(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    make_spec: Callable[[MarketoClient], ExportSpec],
    *,
    warehouse: DuckDBResource,
) -> ExportOutcome:
    """Check that the load can write to `warehouse` (before any Marketo call), build the
    request (describe, validation), then create or reattach, wait and download.
    Terminating the run cancels the Marketo job and ends the step without a retry."""
    with stop_when_terminated(context):
        return _run_export(context, marketo, make_spec, warehouse)


def _run_export(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    make_spec: Callable[[MarketoClient], ExportSpec],
    warehouse: DuckDBResource,
) -> ExportOutcome:
    # Local state first (ledger, staging folder: created if missing), then the warehouse; all
    # before any Marketo call.
    ledger = marketo.ledger()
    clean_staged_files(context, marketo)
    check_warehouse(warehouse, marketo, context.log)
    with marketo.client(on_event=_log_event(context)) as client:
        calls_before = client.calls_made
        try:
            spec = make_spec(client)
            check_columns(spec.request)
            staging = marketo.staging_path(safe_name(spec.asset), safe_name(spec.partition_key))
            claim_partition(context, marketo, ledger, spec.asset, spec.partition_key)
            try:
                plan = spec.plan()
                outcomes = []
                for part in plan:
                    if len(plan) > 1:
                        context.log.info(
                            f"Export part {part.index + 1} of {len(plan)}: "
                            f"{part.request.filter.describe()}"
                        )
                    outcomes.append(_export(context, marketo, client, ledger, staging, spec, part))
                outcome = outcomes[0] if len(plan) == 1 else _combined(plan, outcomes)
            except BaseException:
                ledger.release(spec.asset, spec.partition_key, context.run.run_id)
                raise
            # The claim stays with this run until its load step has loaded the file.
            ledger.hand_over(spec.asset, spec.partition_key, context.run.run_id)
        except errors.QuotaExceededError as exc:
            raise _fail_quota(exc) from exc
        except errors.UnsupportedFilterError as exc:
            raise _fail_unsupported(context, marketo, spec, exc) from exc
        except (
            errors.InvalidFieldsError,
            errors.InvalidRequestError,
            errors.AuthenticationError,
            errors.DailyCallLimitError,
            errors.HostNotFoundError,
            ExportIdConflictError,
        ) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        # Quota used today: the pre-create check's figure plus this export (saves a listing
        # call per job); a reattached or reused export has no such figure, so list again.
        before = outcome.quota_used_before
        used = before + outcome.bytes if before is not None else client.exported_bytes_today()
        quota = marketo.daily_quota_mb * MB
        outcome.metadata.update(
            {
                "rest_calls": client.calls_made - calls_before,
                "quota_used_today_bytes": used,
                "quota_used_today_pct": dg.MetadataValue.float(round(100 * used / quota, 2)),
            }
        )
    return outcome


def claim_partition(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    ledger: ExportLedger,
    asset: str,
    partition_key: str,
) -> None:
    """One run at a time exports and loads a partition: claim it in the ledger, or fail naming
    the run that holds it. A claim of a run that ended, or of a killed process, is taken over."""
    instance = context.instance

    def run_status(run_id: str) -> str | None:
        run = instance.get_run_by_id(run_id)
        if run is None:
            return None
        return "finished" if run.is_finished else "active"

    other = ledger.claim(
        asset,
        partition_key,
        context.run.run_id,
        lease_seconds=marketo.claim_lease_seconds,
        run_status=run_status,
    )
    if other is not None:
        raise dg.Failure(
            description=(
                f"Partition {partition_key} of {asset} is already being exported or loaded by "
                f"{other.describe()}. This run stops so that a partition never has two Marketo "
                "export jobs or two loads at once; nothing was changed. Let that run finish, "
                "or re-run this partition after it ends."
            ),
            metadata={"other_run_id": other.run_id},
            allow_retries=False,
        )


def _export(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    client: MarketoClient,
    ledger: ExportLedger,
    staging: Path,
    spec: ExportSpec,
    part: ExportPart,
) -> ExportOutcome:
    entry = ledger.active(spec.asset, spec.partition_key, part.request_hash)
    if entry and entry.status == "downloaded" and _staged_ok(entry):
        context.log.info(f"Export {entry.export_id} already downloaded; reusing the staged file")
        return _outcome_from_ledger(entry, reused=True)

    job: ExportJob | None = None
    if entry:
        job = client.export_usable(entry.export_id)
        if job is None:
            ledger.update(entry.export_id, status="expired", error="not reusable any more")
            context.log.warning(f"Export {entry.export_id} can no longer be used; creating anew")
        else:
            context.log.info(f"Reattaching to export {job.export_id} ({job.status})")
    reattached = job is not None
    attempts = 1 if reattached else 0
    recreated_for_missing_file = False
    quota_used_before: int | None = None
    while True:
        if job is None:
            quota_used_before = _check_quota(client, marketo)
            job = client.create_export(part.request)
            _remember_supported(marketo, spec)
            attempts += 1
            ledger.record_created(
                export_id=job.export_id,
                asset=spec.asset,
                partition_key=spec.partition_key,
                request_hash=part.request_hash,
                request=part.record,
                run_id=context.run.run_id,
            )
            siblings = [h for h in part.record.get("parts", ()) if h != part.request_hash]
            ledger.supersede_others(
                spec.asset, spec.partition_key, keep=job.export_id, siblings=siblings
            )
            context.log.info(f"Created export {job.export_id} (attempt {attempts})")
        try:
            job = _wait(context, client, ledger, job)
        except errors.ExportJobFailedError as exc:
            ledger.update(job.export_id, status="failed", error=str(exc))
            if attempts >= marketo.max_job_attempts:
                raise dg.Failure(
                    description=f"Marketo failed export {job.export_id} {attempts} times: {exc}",
                    allow_retries=False,
                ) from exc
            context.log.warning(f"Export {job.export_id} failed in Marketo ({exc}); re-creating")
            job = None
            continue
        except errors.ExportTimeoutError as exc:
            ledger.update(job.export_id, status="cancelled", error=str(exc))
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        except errors.ExportJobCancelledError as exc:
            ledger.update(job.export_id, status="cancelled", error=str(exc))
            raise dg.Failure(description=str(exc)) from exc

        dest = staging / f"{job.export_id}.{_EXTENSIONS[part.request.format]}"
        try:
            download = client.download_export(job, dest)
        except errors.ExportFileExpiredError as exc:
            ledger.update(job.export_id, status="expired", error=str(exc))
            if recreated_for_missing_file:
                raise dg.Failure(description=str(exc)) from exc
            context.log.warning(
                f"Export {job.export_id} is Completed but its file is gone ({exc}); "
                "re-creating the job once"
            )
            recreated_for_missing_file = True
            job = None
            continue
        except errors.ChecksumMismatchError as exc:
            # Already downloaded checksum_retries + 1 times: a step retry would only fetch the
            # same bad file again. The next run of the partition creates a new job.
            ledger.update(job.export_id, status="failed", error=str(exc))
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        break

    now = datetime.now(UTC)
    ledger.update(
        job.export_id,
        status="downloaded",
        downloaded_at=now,
        staged_file=str(download.path),
        records=job.number_of_records,
        bytes=download.bytes,
        checksum=job.file_checksum,
    )
    queue_wait = _seconds(job.queued_at, job.started_at)
    processing = _seconds(job.started_at, job.finished_at)
    metadata: dict[str, object] = {
        "export_id": job.export_id,
        "records": job.number_of_records or 0,
        "file_size_bytes": download.bytes,
        "checksum_verified": dg.MetadataValue.bool(True),
        "download_seconds": dg.MetadataValue.float(round(download.seconds, 3)),
        "download_mb_per_s": dg.MetadataValue.float(
            round(download.bytes / MB / download.seconds, 2) if download.seconds else 0.0
        ),
        "download_resumes": download.resumes,
        "job_attempts": attempts,
        "reattached": dg.MetadataValue.bool(reattached and attempts == 1),
        "filter": dg.MetadataValue.json(part.request.payload()["filter"]),
    }
    if queue_wait is not None:
        metadata["queue_wait_seconds"] = dg.MetadataValue.float(queue_wait)
    if processing is not None:
        metadata["processing_seconds"] = dg.MetadataValue.float(processing)
    return ExportOutcome(
        export_id=job.export_id,
        path=download.path,
        records=job.number_of_records or 0,
        bytes=download.bytes,
        metadata=metadata,
        quota_used_before=quota_used_before,
    )


def _combined(plan: list[ExportPart], outcomes: list[ExportOutcome]) -> ExportOutcome:
    """The outcome of a partition exported as several jobs: totals, and each job's export id,
    filter and size."""
    befores = [o.quota_used_before for o in outcomes]
    seconds = [o.metadata.get("download_seconds") for o in outcomes]
    metadata: dict[str, object] = {
        "export_ids": dg.MetadataValue.json([o.export_id for o in outcomes]),
        "export_parts": len(outcomes),
        "records": sum(o.records for o in outcomes),
        "file_size_bytes": sum(o.bytes for o in outcomes),
        "checksum_verified": dg.MetadataValue.bool(True),
        "job_attempts": sum(int(o.metadata.get("job_attempts", 0)) for o in outcomes),
        "parts": dg.MetadataValue.json(
            [
                {
                    "export_id": o.export_id,
                    "filter": p.request.payload()["filter"],
                    "records": o.records,
                    "file_size_bytes": o.bytes,
                    "reused_staged_file": "reused_staged_file" in o.metadata,
                }
                for p, o in zip(plan, outcomes, strict=True)
            ]
        ),
    }
    if all(isinstance(s, dg.FloatMetadataValue) for s in seconds):
        total = sum(s.value or 0.0 for s in seconds)  # type: ignore[union-attr]
        metadata["download_seconds"] = dg.MetadataValue.float(round(total, 3))
    return ExportOutcome(
        export_id=",".join(o.export_id for o in outcomes),
        path=outcomes[0].path,
        records=sum(o.records for o in outcomes),
        bytes=sum(o.bytes for o in outcomes),
        metadata=metadata,
        # The first job's pre-create figure plus all files; unknown if a job was reused.
        quota_used_before=None if None in befores else befores[0],
    )


def _wait(
    context: dg.AssetExecutionContext, client: MarketoClient, ledger: ExportLedger, job: ExportJob
) -> ExportJob:
    """Wait for Completed; an aborted run cancels the Marketo job before it re-raises."""
    try:
        done = client.wait_for_export(job.export_id)
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
        context.log.warning(f"Run interrupted: cancelling Marketo export {job.export_id}")
        try:
            client.cancel_export(job.export_id)
            ledger.update(job.export_id, status="cancelled", error="run interrupted")
        except Exception as exc:  # best effort: the interrupt must still propagate
            context.log.error(f"Could not cancel export {job.export_id}: {exc}")
        raise
    ledger.update(
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


def _check_quota(client: MarketoClient, marketo: MarketoResource) -> int:
    """Bytes exported today; fails fast (no retry) when the daily quota is used up."""
    used = client.exported_bytes_today()
    if used >= marketo.daily_quota_mb * MB:
        reset = MarketoClient.quota_reset_time(client.server_now())
        raise dg.Failure(
            description=(
                f"Marketo's daily export quota ({marketo.daily_quota_mb} MB) is used up "
                f"({used / MB:.1f} MB exported today). It resets at {reset.isoformat()} "
                "(midnight America/Chicago). Re-run this partition after that; nothing was changed."
            ),
            metadata={"quota_resets_at": dg.MetadataValue.text(reset.isoformat())},
            allow_retries=False,
        )
    return used


def _staged_ok(entry: LedgerEntry) -> bool:
    path = Path(entry.staged_file) if entry.staged_file else None
    return bool(path and path.exists() and path.stat().st_size == (entry.bytes or 0))


def _outcome_from_ledger(entry: LedgerEntry, reused: bool) -> ExportOutcome:
    return ExportOutcome(
        export_id=entry.export_id,
        path=Path(entry.staged_file or ""),
        records=entry.records or 0,
        bytes=entry.bytes or 0,
        metadata={
            "export_id": entry.export_id,
            "records": entry.records or 0,
            "file_size_bytes": entry.bytes or 0,
            "checksum_verified": dg.MetadataValue.bool(True),
            "reused_staged_file": dg.MetadataValue.bool(reused),
        },
    )


def staged_export(ledger: ExportLedger, asset: str, partition_key: str) -> LedgerEntry:
    entry = ledger.latest_downloaded(asset, partition_key)
    if entry is None or not _staged_ok(entry):
        raise dg.Failure(
            description=(
                f"No downloaded export is staged for {asset} partition {partition_key}. "
                "Materialize the export step of this partition first (it reattaches to its "
                "Marketo job if one is still usable)."
            ),
            allow_retries=False,
        )
    return entry


def staged_exports(ledger: ExportLedger, asset: str, partition_key: str) -> list[LedgerEntry]:
    """The staged files of the partition's newest export: one, or every part of an export
    sent as several jobs (each part's ledger record lists the request hashes of all parts)."""
    entry = staged_export(ledger, asset, partition_key)
    hashes = entry.request.get("parts")
    if not hashes:
        return [entry]
    entries = [ledger.latest_downloaded(asset, partition_key, request_hash=h) for h in hashes]
    missing = [str(i + 1) for i, e in enumerate(entries) if e is None or not _staged_ok(e)]
    if missing:
        raise dg.Failure(
            description=(
                f"{asset} partition {partition_key} is exported as {len(hashes)} Marketo jobs "
                f"(its window is longer than Marketo's 31 days) and part(s) "
                f"{', '.join(missing)} are not downloaded. Materialize the export step of this "
                "partition first (it reuses the parts already staged); nothing was loaded."
            ),
            allow_retries=False,
        )
    return [e for e in entries if e is not None]


def run_generation(context: dg.AssetExecutionContext) -> str:
    return context.run.tags.get(GENERATION_TAG, "")


def window_bounds(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    window = context.partition_time_window
    return window.start, window.end - timedelta(seconds=1)


# ---------------------------------------------------------------------------------- load step
CHECK_ROWS = "rows_match_marketo"
CHECK_PARTITIONS = "materialized_partitions_in_table"


@dataclass(frozen=True)
class LoadedPartition:
    """What the shared load step hands to an asset's own checks (inside the connection)."""

    entry: LedgerEntry
    result: LoadResult
    stats: dict
    id_column: str
    timestamp_column: str | None
    # Every export loaded (several when the window was exported as several jobs).
    entries: tuple[LedgerEntry, ...] = ()


ExtraChecks = Callable[[WarehouseSession, LoadedPartition], tuple[list[dg.AssetCheckResult], dict]]


def run_load(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    duckdb: DuckDBResource,
    *,
    table: str,
    ledger_asset: str,
    unique_check: str,
    lineage: dict[str, object] | None = None,
    timestamp_field: str | None = None,
    extra: ExtraChecks | None = None,
    check_partitions: bool = False,
) -> dg.MaterializeResult:
    """Load the staged export of this partition into `table`, replacing the partition's rows in
    one transaction, then evaluate the shared checks (rows = numberOfRecords, no lead twice in
    the partition) and the asset's `extra` checks (given the warehouse session) while the
    connection is open; with `check_partitions`, also CHECK_PARTITIONS (every partition
    Dagster shows as materialized with rows still has rows in `table`). The warehouse is the
    `duckdb` resource's: the DuckDB file, or PostgreSQL
    with MARKETO_WAREHOUSE=postgres. The connection is opened only around the SQL; the staged
    file (personal data) is deleted afterwards."""
    ledger = marketo.ledger()
    clean_staged_files(context, marketo)
    with stop_when_terminated(context):
        claim_partition(context, marketo, ledger, ledger_asset, context.partition_key)
        try:
            return _load(
                context,
                marketo,
                duckdb,
                ledger,
                table=table,
                ledger_asset=ledger_asset,
                unique_check=unique_check,
                lineage=lineage,
                timestamp_field=timestamp_field,
                extra=extra,
                check_partitions=check_partitions,
            )
        finally:
            ledger.release(ledger_asset, context.partition_key, context.run.run_id)


def _load(
    context: dg.AssetExecutionContext,
    marketo: MarketoResource,
    duckdb: DuckDBResource,
    ledger: ExportLedger,
    *,
    table: str,
    ledger_asset: str,
    unique_check: str,
    lineage: dict[str, object] | None,
    timestamp_field: str | None,
    extra: ExtraChecks | None,
    check_partitions: bool = False,
) -> dg.MaterializeResult:
    entries = staged_exports(ledger, ledger_asset, context.partition_key)
    entry = entries[0]
    export_ids = ", ".join(e.export_id for e in entries)
    records = sum(e.records or 0 for e in entries)
    record = entry.request
    headers = record["payload"].get("columnHeaderNames") or {}
    columns = columns_for([tuple(ft) for ft in record["field_types"]], headers)
    # Table columns are the REST field names, whatever the file's headers (Column).
    id_col, ts_col = "id", timestamp_field

    with warehouse_session(duckdb) as wh:
        try:
            renamed = wh.rename_columns(table, header_columns(ledger, ledger_asset))
            for old, new in renamed:
                context.log.warning(f"Renamed column {old!r} of {table} to {new!r} (its field)")
            result = wh.load_partition(
                table=table,
                files=[(e.staged_file, {"_export_id": e.export_id}) for e in entries],
                file_format=record["payload"].get("format", "CSV"),
                columns=columns,
                partition_key=context.partition_key,
                lineage={"_loaded_at": datetime.now(UTC), **(lineage or {})},
            )
        except (SchemaConflictError, HeaderMismatchError, CastError) as exc:
            # The same file fails the same way: retrying would only wait. The table is
            # unchanged and the staged file is kept for the load once the cause is fixed.
            raise dg.Failure(
                description=(
                    f"{exc} The table is unchanged. The staged export {export_ids} is "
                    "kept: once this is fixed, re-run the load step of this partition (no new "
                    "export is needed)."
                ),
                allow_retries=False,
            ) from exc
        stats = wh.partition_stats(
            table, context.partition_key, id_column=id_col, timestamp_column=ts_col
        )
        loaded = LoadedPartition(entry, result, stats, id_col, ts_col, tuple(entries))
        extra_checks, extra_metadata = extra(wh, loaded) if extra else ([], {})
        if check_partitions:
            extra_checks.append(partitions_check(context, table, wh.partition_keys(table)))

    for loaded_entry in entries:
        ledger.update(loaded_entry.export_id, status="loaded", loaded_at=datetime.now(UTC))
        discard_staged(context, loaded_entry.staged_file)
    checks = [
        dg.AssetCheckResult(
            check_name=CHECK_ROWS,
            passed=result.rows == records,
            metadata={"loaded_rows": result.rows, "marketo_records": records},
        ),
        dg.AssetCheckResult(
            check_name=unique_check,
            passed=stats["duplicate_ids"] == 0 and stats["null_ids"] == 0,
            metadata={"duplicate_ids": stats["duplicate_ids"], "null_ids": stats["null_ids"]},
        ),
        *extra_checks,
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows,
            "dagster/table_name": table,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, type_) for name, type_ in result.columns]
            ),
            **(
                {"export_id": entry.export_id}
                if len(entries) == 1
                else {"export_ids": dg.MetadataValue.json([e.export_id for e in entries])}
            ),
            "marketo_records": records,
            "load_seconds": dg.MetadataValue.float(round(result.seconds, 3)),
            **extra_metadata,
        },
        check_results=checks,
    )


def header_columns(ledger: ExportLedger, asset: str) -> dict[str, str]:
    """{header: field} of every header the asset's exports gave a field: loads before header
    names stopped naming columns made such columns, renamed back to the field's name. A header
    that is also some field's name is left out (that column may be the field's own)."""
    out: dict[str, str] = {}
    fields: set[str] = set()
    for entry in ledger.entries(asset):
        payload = entry.request.get("payload", {})
        fields.update(name.casefold() for name in payload.get("fields", []))
        headers = payload.get("columnHeaderNames") or {}
        out.update({header: field for field, header in headers.items() if header != field})
    return {header: field for header, field in out.items() if header.casefold() not in fields}


def partitions_check(
    context: dg.AssetExecutionContext, table: str, in_table: set[str]
) -> dg.AssetCheckResult:
    """CHECK_PARTITIONS: fails naming the partitions Dagster shows as materialized (with rows)
    whose rows `table` does not have, e.g. after the DuckDB file was deleted or replaced."""
    missing = lost_partitions(context, in_table)
    names = ", ".join(missing)
    assets = [k.to_user_string() for k in sorted(context.assets_def.dependency_keys)]
    assets.append(context.asset_key.to_user_string())
    fix = (
        f"Partitions {names} are materialized in Dagster but have no rows in {table} (was the "
        "database file deleted or replaced?). Restore them with a backfill of those partitions "
        f"of {' and '.join(assets)} (Materialize, select the partitions; this exports them "
        "again)."
    )
    return dg.AssetCheckResult(
        check_name=CHECK_PARTITIONS,
        passed=not missing,
        description=fix if missing else None,
        metadata={
            "missing_partitions": dg.MetadataValue.json(missing),
            "partitions_in_table": len(in_table),
        },
    )


def lost_partitions(context: dg.AssetExecutionContext, in_table: set[str]) -> list[str]:
    """Partitions of this asset that Dagster shows as materialized, other than the one being
    loaded, whose rows are not in the table. A window without leads is materialized with 0
    rows and has none in the table: only partitions whose last materialization had rows count."""
    instance, key = context.instance, context.asset_key
    partitions_def = context.assets_def.partitions_def
    keys = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    status = instance.get_status_by_partition(key, keys, partitions_def) or {}
    candidates = {
        k
        for k, state in status.items()
        if state == dg.AssetPartitionStatus.MATERIALIZED
        and k not in in_table
        and k != context.partition_key
    }
    rows: dict[str, int | None] = {}
    cursor = None
    while len(rows) < len(candidates):  # newest first: the first one seen is the latest
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=sorted(candidates)),
            limit=1000,
            cursor=cursor,
        )
        for record in page.records:
            if record.partition_key not in rows and record.asset_materialization:
                count = record.asset_materialization.metadata.get("dagster/row_count")
                rows[record.partition_key] = None if count is None else count.value
        if not page.has_more:
            break
        cursor = page.cursor
    return sorted(k for k in candidates if rows.get(k) != 0)


def discard_staged(context: dg.AssetExecutionContext, staged_file: str | None) -> None:
    """Staged exports hold personal data: delete them once they are loaded."""
    if staged_file:
        path = Path(staged_file)
        path.unlink(missing_ok=True)
        # NUL-free copies a killed load left behind (warehouse.strip_nul) hold the same data.
        for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.nonul"):
            leftover.unlink(missing_ok=True)
        context.log.info("Deleted the staged export file after loading")
