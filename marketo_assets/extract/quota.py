"""The quota autopilot: predict an export's file size, keep each day within the budget, and
say which stopped partitions to launch again after the reset.

Marketo's daily bulk export quota (the allocation, MARKETO_DAILY_QUOTA_MB) is shared by every
tool of the subscription; this project uses at most its budget (MARKETO_QUOTA_BUDGET_MB).
Everything here is keyed by the ledger's asset name (`marketo/leads`, ...), so every export
type the engine runs is covered alike.

Prediction (docs/QUOTA.md): bytes per row of the asset and field set from the ledger's
finished jobs, times the rows of the last export of the same request (same window), else of
the same partition, else the asset's average job; plus HEADROOM. An asset without history is
predicted as the average job of all assets; with no history at all the size is unknown: such a
job starts only when no other job is in flight, so the next prediction has its size to learn
from.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from marketo_assets.marketo.clock import quota_reset_time
from marketo_assets.settings import ProjectSettings, SettingsError

from .ledger import ExportLedger
from .ledger_base import Ledger, LedgerEntry
from .local_paths import LocalPathError

__all__ = [
    "HEADROOM",
    "QUOTA_USAGE_COLUMNS",
    "QUOTA_USAGE_TABLE",
    "History",
    "Prediction",
    "Stop",
    "check_budget",
    "defer",
    "member_rows",
    "order_stops",
    "plan_resume",
    "progress",
    "resume",
    "smallest_job",
    "stops",
    "usage_rows",
]

MB = 1024 * 1024
HEADROOM = 1.1  # predictions are 10% above the history's average size
IN_FLIGHT = ("created", "queued", "processing")
# A job created longer ago than this and never finished (a crashed run) is no longer counted.
IN_FLIGHT_HOURS = 24
CHICAGO = ZoneInfo("America/Chicago")  # Marketo's quota day
QUOTA_USAGE_TABLE = "marketo.quota_usage"
QUOTA_USAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("day", "DATE NOT NULL"),
    ("export_type", "VARCHAR NOT NULL"),  # leads, activities, program_members
    ("asset", "VARCHAR NOT NULL"),
    ("jobs", "BIGINT NOT NULL"),
    ("bytes", "BIGINT NOT NULL"),
    ("budget_bytes", "BIGINT NOT NULL"),
)


@dataclass(frozen=True)
class Prediction:
    bytes: int | None  # None: no history for this asset yet
    bytes_per_row: float | None
    rows: float | None
    basis: str  # where the rows come from

    def metadata(self) -> dict[str, object]:
        return {
            "predicted_bytes": self.bytes,
            "predicted_rows": None if self.rows is None else round(self.rows),
            "predicted_bytes_per_row": (
                None if self.bytes_per_row is None else round(self.bytes_per_row, 1)
            ),
            "prediction_basis": self.basis,
        }


def _fields(entry: LedgerEntry) -> tuple[str, ...]:
    return _request_facts(entry.request_json)[0]


@functools.lru_cache(maxsize=8192)
def _request_facts(request_json: str) -> tuple[tuple[str, ...], str]:
    """(sorted fields, export type) of a recorded request, parsed once per process."""
    request = json.loads(request_json)
    fields = tuple(sorted(request.get("payload", {}).get("fields", [])))
    return fields, str(request.get("export_type") or "leads")


@functools.lru_cache(maxsize=1024)
def _field_list(fields_json: str | None) -> tuple[str, ...]:
    """The sorted fields of a field list as the ledger sums it (JSON text, None without)."""
    return tuple(sorted(json.loads(fields_json))) if fields_json else ()


def _sized(entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    return [e for e in entries if e.records is not None and e.bytes is not None]


@dataclass
class _Totals:
    """The jobs of known size of one asset and field list."""

    jobs: int = 0
    bytes: int = 0
    records: int = 0
    widest: int = 0  # largest file (only empty files: their header)
    full_bytes: int = 0  # of the jobs with rows
    full_records: int = 0

    def add(self, other: _Totals) -> None:
        self.jobs += other.jobs
        self.bytes += other.bytes
        self.records += other.records
        self.widest = max(self.widest, other.widest)
        self.full_bytes += other.full_bytes
        self.full_records += other.full_records


class History:
    """What predictions use of the ledger's whole history: sums per asset and field list
    (`Ledger.sized_totals`, a few rows however long the history), the last rows of a
    partition and the jobs in flight, each read when needed. Read once per quota check: no
    cache across checks (another process may have written meanwhile)."""

    def __init__(
        self,
        totals: dict[tuple[str, tuple[str, ...]], _Totals],
        last_records: Callable[[str, str, str], int | None],
        in_flight_entries: Callable[[], Sequence[LedgerEntry]],
    ):
        self._totals = totals
        self._last_records = last_records
        self._in_flight_entries = in_flight_entries
        self._assets: dict[str, _Totals] = {}
        for (asset, _), total in totals.items():
            self._assets.setdefault(asset, _Totals()).add(total)

    @classmethod
    def read(cls, ledger: Ledger) -> History:
        """The sums and the jobs in flight now; a partition's last rows when predicted (call
        it inside `ledger.reading()` to read all on one connection)."""
        with ledger.reading():
            sums = ledger.sized_totals()
            flying = ledger.with_status(IN_FLIGHT)
        totals: dict[tuple[str, tuple[str, ...]], _Totals] = {}
        for row in sums:
            key = (row["asset"], _field_list(row["fields"]))
            totals.setdefault(key, _Totals()).add(
                _Totals(**{k: row[k] for k in _Totals.__dataclass_fields__})
            )
        return cls(totals, ledger.last_sized_records, lambda: flying)

    @classmethod
    def of(cls, entries: Sequence[LedgerEntry]) -> History:
        """The same from entries already read (oldest first)."""
        sized = _sized(entries)
        totals: dict[tuple[str, tuple[str, ...]], _Totals] = {}
        for e in sized:
            size, rows, full = e.bytes or 0, e.records or 0, (e.records or 0) > 0
            totals.setdefault((e.asset, _fields(e)), _Totals()).add(
                _Totals(1, size, rows, size, size if full else 0, rows if full else 0)
            )

        def last_records(asset: str, partition_key: str, request_hash: str) -> int | None:
            same = [e for e in sized if e.asset == asset and e.partition_key == partition_key]
            exact = [e for e in same if e.request_hash == request_hash]
            return (exact or same)[-1].records if same else None

        return cls(totals, last_records, lambda: [e for e in entries if e.status in IN_FLIGHT])

    def per_row(self, asset: str, fields: tuple[str, ...]) -> float | None:
        """Bytes per row of the asset's jobs with these fields, else of all its jobs with rows
        (only empty files so far: their size is the header); None without history."""
        asset_total = self._assets.get(asset)
        if asset_total is None:
            return None
        same = self._totals.get((asset, fields))
        basis = same if same is not None and same.full_records else asset_total
        if basis.full_records:
            return basis.full_bytes / basis.full_records
        return float(asset_total.widest)

    def predict(
        self,
        asset: str,
        partition_key: str,
        request_hash: str,
        fields: Sequence[str],
        member_rows: float | None = None,
    ) -> Prediction:
        """The file size of a job of `asset` for this partition and request. `member_rows`:
        the rows a job shared by several partitions will hold (see `member_rows`)."""
        per_row = self.per_row(asset, tuple(sorted(fields)))
        if per_row is None:
            if not self._assets:
                return Prediction(None, None, None, "no history")
            jobs = sum(t.jobs for t in self._assets.values())
            average = sum(t.bytes for t in self._assets.values()) / jobs
            return Prediction(
                math.ceil(average * HEADROOM), None, None, "average export of any type"
            )
        if member_rows is not None:
            rows, basis = member_rows, "last rows of the batch's partitions"
        elif (last := self._last_records(asset, partition_key, request_hash)) is not None:
            rows, basis = float(last), "last export of this window"
        else:
            total = self._assets[asset]
            rows, basis = total.records / total.jobs, "average export of this type"
        size = math.ceil(max(rows, 1.0) * per_row * HEADROOM)
        return Prediction(size, per_row, rows, basis)

    def predict_entry(self, entry: LedgerEntry) -> int | None:
        fields = _fields(entry)
        return self.predict(entry.asset, entry.partition_key, entry.request_hash, fields).bytes

    def in_flight(self, *, exclude: Collection[tuple[str, str]] = ()) -> tuple[int, int]:
        """(predicted bytes, jobs of unknown size) of the jobs created and not finished yet,
        other than those of the partitions `exclude` ((asset, partition_key) pairs)."""
        since = datetime.now(UTC) - timedelta(hours=IN_FLIGHT_HOURS)
        total = unknown = 0
        for entry in self._in_flight_entries():
            if entry.status not in IN_FLIGHT or (entry.asset, entry.partition_key) in exclude:
                continue
            if _parse(entry.created_at) < since:
                continue
            size = self.predict_entry(entry)
            if size is None:
                unknown += 1
            else:
                total += size
        return total, unknown


def member_rows(ledger: Ledger, asset: str, partition_keys: Sequence[str]) -> float | None:
    """The rows of a job shared by these partitions: the sum of each one's last loaded rows;
    None when one has never been loaded."""
    last: dict[str, int] = {}
    for member in ledger.members(asset):
        if member["status"] == "loaded" and member["row_count"] is not None:
            last[member["partition_key"]] = member["row_count"]
    if not partition_keys or any(k not in last for k in partition_keys):
        return None
    return float(sum(last[k] for k in partition_keys))


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ------------------------------------------------------------------ stops and their resumption
@dataclass(frozen=True)
class Stop:
    """A partition not exported because of the quota or the budget, due again at `resets_at`."""

    asset: str
    partition_key: str
    reason: str  # "quota" (Marketo's) or "budget" (ours)
    resets_at: datetime
    predicted_bytes: int | None

    @property
    def run_key(self) -> str:
        return f"quota-resume:{self.asset}:{self.partition_key}@{self.resets_at.isoformat()}"


def stops(ledger: Ledger) -> list[Stop]:
    return [
        Stop(
            r["asset"],
            r["partition_key"],
            r["reason"],
            _parse(r["resets_at"]),
            r["predicted_bytes"],
        )
        for r in ledger.stops()
    ]


def order_stops(
    due: Sequence[Stop], windows: dict[tuple[str, str], tuple[bool, datetime | None]], order: str
) -> list[Stop]:
    """`windows[(asset, key)]`: (open, window start); a list partition is (True, None).
    open-first: open windows and lists, then history newest first; oldest-first: history
    oldest first, then open windows and lists."""

    def start(stop: Stop) -> float:  # a list (no window) after the windows
        when = windows.get((stop.asset, stop.partition_key), (True, None))[1]
        return when.timestamp() if when else (math.inf if order == "oldest-first" else 0.0)

    def is_open(stop: Stop) -> bool:
        return windows.get((stop.asset, stop.partition_key), (True, None))[0]

    if order == "oldest-first":
        return sorted(due, key=lambda s: (is_open(s), start(s), s.asset, s.partition_key))
    return sorted(due, key=lambda s: (not is_open(s), -start(s), s.asset, s.partition_key))


def plan_resume(
    ordered: Sequence[Stop],
    *,
    now: datetime,
    used_today: int,
    in_flight_bytes: int,
    in_flight_unknown: int,
    budget_bytes: int,
) -> tuple[list[Stop], list[Stop]]:
    """(launch, defer): the due stops (reset passed) to launch now, in order, as long as their
    predictions fit into what is left of today's budget, and those that do not fit today
    (`defer` them to the next reset). A stop of unknown size goes alone, when nothing is in
    flight. The export step checks again before it creates its job."""
    left = budget_bytes - used_today - in_flight_bytes
    launch: list[Stop] = []
    defer: list[Stop] = []
    busy = in_flight_unknown > 0 or in_flight_bytes > 0
    for stop in ordered:
        if stop.resets_at > now:
            continue
        if stop.predicted_bytes is None:
            if not (busy or launch):
                launch.append(stop)
                busy = True
        elif not defer and stop.predicted_bytes <= left and in_flight_unknown == 0:
            left -= stop.predicted_bytes
            launch.append(stop)
        elif in_flight_unknown == 0:
            defer.append(stop)  # keep the order: nothing later jumps the queue today
    return launch, defer


def resume(
    ledger: Ledger,
    stopped: Sequence[Stop],
    pending: Collection[tuple[str, str]],
    window: Callable[[Stop], tuple[bool, datetime | None]],
    exists: Callable[[Stop], bool],
    *,
    now: datetime,
    used_today: int,
    order: str,
    budget_bytes: int,
) -> list[Stop]:
    """The stopped partitions to launch now, in `order`, within today's budget; those that do
    not fit today are deferred to the next reset (in the ledger). `pending`: (asset, partition)
    of unfinished runs (their stops count as in flight); `window(stop)`: (open, window start),
    see `order_stops`; a stop whose partition no longer `exists` is left alone."""
    with ledger.reading():
        flight, unknown = History.read(ledger).in_flight(exclude=pending)
    flight += sum(s.predicted_bytes or 0 for s in stopped if (s.asset, s.partition_key) in pending)
    waiting = [s for s in stopped if (s.asset, s.partition_key) not in pending and exists(s)]
    windows = {(s.asset, s.partition_key): window(s) for s in waiting}
    launch, later = plan_resume(
        order_stops(waiting, windows, order),
        now=now,
        used_today=used_today,
        in_flight_bytes=flight,
        in_flight_unknown=unknown,
        budget_bytes=budget_bytes,
    )
    defer(ledger, later, now)
    return launch


def defer(ledger: Ledger, deferred: Sequence[Stop], now: datetime) -> None:
    """Due again at the next reset: today's budget is predicted to be spent."""
    for stop in deferred:
        ledger.record_stop(
            stop.asset,
            stop.partition_key,
            reason=stop.reason,
            resets_at=quota_reset_time(now),
            predicted_bytes=stop.predicted_bytes,
            run_id=None,
        )


# ------------------------------------------------------------------ what the user sees
def progress(ledger: Ledger, used_today: int, budget_bytes: int) -> dict[str, object]:
    """Today's use against the budget, and what the stopped partitions still need."""
    pending = stops(ledger)
    pending_bytes = sum(s.predicted_bytes or 0 for s in pending)
    return {
        "quota_budget_bytes": budget_bytes,
        "quota_budget_used_pct": round(100 * used_today / budget_bytes, 2),
        "pending_partitions": len(pending),
        "pending_predicted_bytes": pending_bytes,
        "pending_days": math.ceil(pending_bytes / budget_bytes) if pending else 0,
    }


def quota_day(moment: datetime) -> date:
    return moment.astimezone(CHICAGO).date()


@functools.lru_cache(maxsize=4096)
def _quota_day_of(finished_at: str) -> date:
    return quota_day(_parse(finished_at))


def usage_rows(ledger: Ledger, budget_bytes: int) -> list[dict[str, object]]:
    """Rows of QUOTA_USAGE_TABLE: per quota day and asset, the jobs that finished and their
    bytes (Marketo counts a job's file on the day it completes), next to the budget."""
    days: dict[tuple[date, str, str], list[int]] = {}
    for row in ledger.finished_sizes():
        key = (_quota_day_of(row["finished_at"]), str(row["kind"] or "leads"), row["asset"])
        day = days.setdefault(key, [0, 0])
        day[0] += 1
        day[1] += row["bytes"]
    return [
        {"day": day, "export_type": kind, "asset": asset, "jobs": jobs, "bytes": size,
         "budget_bytes": budget_bytes}
        for (day, kind, asset), (jobs, size) in sorted(days.items())
    ]  # fmt: skip


def smallest_job(ledger: Ledger) -> tuple[int, str] | None:
    """The smallest predicted job (bytes, asset partition) of the ledger's history: a budget
    below it could never start a job. The job of each partition's last sized entry, as
    `predict_entry` predicts it (its rows are that entry's). It runs when the definitions load
    (in every run's process): read as the fewest rows per asset and field list, then the
    partitions of the same size (the smallest name wins a tie)."""
    with ledger.reading():
        history, fewest = History.read(ledger), ledger.fewest_last_rows()
    groups = []
    for row in fewest:
        per_row = history.per_row(row["asset"], _field_list(row["fields"] or None)) or 0.0
        groups.append((_job_size(row["rows"], per_row), row, per_row))
    if not groups:
        return None
    smallest = min(size for size, _, _ in groups)
    names = []
    for size, row, per_row in groups:
        if size != smallest:
            continue
        # Larger jobs of the same size after rounding up: rows up to smallest / bytes a row.
        most = math.floor(smallest / (per_row * HEADROOM)) + 1 if per_row else 2**62
        for last in ledger.last_rows_up_to(row["asset"], row["fields"], most):
            if _job_size(last["rows"], per_row) == smallest:
                names.append(f"{row['asset']} {last['partition_key']}")
    return smallest, min(names)


def _job_size(rows: int, per_row: float) -> int:
    return math.ceil(max(float(rows), 1.0) * per_row * HEADROOM)


def check_budget(settings: ProjectSettings) -> None:
    """At definitions load: SettingsError when the budget is below the smallest job the
    ledger's history predicts (no job could ever start). Without a readable ledger there is
    nothing to compare with (the steps report a ledger that cannot work); a PostgreSQL ledger
    is not opened while the definitions load (the export steps check the budget)."""
    if settings.ledger_store != "sqlite" or not settings.ledger_path.is_file():
        return
    try:
        smallest = smallest_job(ExportLedger(settings.ledger_path))
    except (LocalPathError, sqlite3.Error):
        return
    budget = settings.quota_budget
    if smallest is not None and smallest[0] > budget * MB:
        raise SettingsError(
            f"MARKETO_QUOTA_BUDGET_MB ({budget:g} MB a day) is below the smallest export job "
            f"predicted from the ledger's history ({smallest[0] / MB:.2f} MB, {smallest[1]}): "
            "no export could ever start. Raise MARKETO_QUOTA_BUDGET_MB (at most "
            f"MARKETO_DAILY_QUOTA_MB, {settings.daily_quota_mb} MB)."
        )
