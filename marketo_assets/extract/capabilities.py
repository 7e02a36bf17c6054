"""Remembered subscription capabilities: is the updatedAt / smart-list filter enabled?

Marketo answers 1035 ("Unsupported filter type for target subscription") when a subscription
does not have the `updatedAt` or smart-list filters. That is learned once (a probe or a failed
export) and kept in a small JSON file next to the export ledger, so sensors and schedules can
read it without calling Marketo and without touching DuckDB. Delete the file, or let the
recheck period pass, to check again (e.g. after Marketo Support enabled the filter).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from marketo_assets.marketo import ExportFilter, errors

from .local_paths import private_dirs

__all__ = [
    "FILTER_CAPABILITY",
    "FilterCapabilities",
    "FilterStatus",
    "capability_for",
    "filter_answer",
    "filter_status",
    "smart_list_answer",
    "updated_at_answer",
    "updated_at_note",
    "updated_at_probe",
]

# Filter kind (as in ExportFilter.kind) -> the capability Marketo switches on or off.
FILTER_CAPABILITY = {
    "updatedAt": "updatedAt",
    "smartListId": "smartList",
    "smartListName": "smartList",
}


def capability_for(filter_kind: str) -> str | None:
    return FILTER_CAPABILITY.get(filter_kind)


@dataclass(frozen=True)
class FilterStatus:
    supported: bool
    checked_at: datetime
    source: str  # "probe" (create + cancel a tiny job) or "export" (a real export job)
    message: str | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["checked_at"] = self.checked_at.isoformat(timespec="seconds")
        return data

    @classmethod
    def from_json(cls, data: dict) -> FilterStatus:
        return cls(
            supported=bool(data["supported"]),
            checked_at=datetime.fromisoformat(data["checked_at"]),
            source=str(data.get("source") or "export"),
            message=data.get("message"),
        )


class FilterCapabilities:
    """A JSON file {capability: {supported, checked_at, source, message}}."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, capability: str) -> FilterStatus | None:
        entry = self._read().get(capability)
        if not isinstance(entry, dict):
            return None
        try:
            return FilterStatus.from_json(entry)
        except (KeyError, TypeError, ValueError):
            return None

    def record(
        self,
        capability: str,
        supported: bool,
        *,
        source: str,
        message: str | None = None,
        now: datetime | None = None,
    ) -> FilterStatus:
        status = FilterStatus(supported, now or datetime.now(UTC), source, message)
        data = self._read()
        data[capability] = status.to_json()
        private_dirs(self.path.parent)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".capabilities-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return status

    def needs_check(
        self, capability: str, recheck: timedelta | None, now: datetime | None = None
    ) -> bool:
        """True when unknown, or known unsupported for longer than `recheck` (None or 0 = never
        recheck automatically). A supported filter is not probed again."""
        status = self.get(capability)
        if status is None:
            return True
        if status.supported or not recheck:
            return False
        return (now or datetime.now(UTC)) - status.checked_at >= recheck


def filter_status(
    store: FilterCapabilities,
    capability: str,
    probe: Callable[[], bool],
    recheck: timedelta | None,
    log: Any = None,  # a logger: info, warning
    inconclusive_ok: bool = False,
) -> FilterStatus | None:
    """The remembered status of `capability` ("updatedAt", "smartList"), asked first when
    unknown or stale with `probe` (a job created and cancelled, no quota used: True when
    Marketo accepts the filter). With `inconclusive_ok`, a probe failing for another reason
    than 1035 returns None (unknown) instead of raising."""
    if store.needs_check(capability, recheck):
        try:
            supported = probe()
        except errors.MarketoAPIError as exc:
            if not inconclusive_ok:
                raise
            if log:  # not a 1035: the probe says nothing about the filter
                log.warning(f"{capability} filter probe inconclusive: {exc}")
            return None
        message = None if supported else f"Marketo answered 1035 to a {capability} probe job"
        store.record(capability, supported, source="probe", message=message)
        if log:
            log.info(f"{capability} filter enabled for this subscription: {supported}")
    return store.get(capability)


def updated_at_probe(now: datetime) -> ExportFilter:
    """A one-second updatedAt window of yesterday: the probe job of the lead-change schedule."""
    start = now.astimezone(UTC).replace(microsecond=0) - timedelta(days=1)
    return ExportFilter.updated_at(start, start + timedelta(seconds=1))


def updated_at_note(store: FilterCapabilities) -> str:
    """What the remembered updatedAt status is, for the lead-change export's description."""
    status = store.get("updatedAt")
    if status is None:
        return "Filter status: not checked yet (the daily schedule checks it first)."
    when = status.checked_at.isoformat(timespec="seconds")
    if status.supported:
        return f"Filter status: enabled (checked {when})."
    return (
        f"Filter status: NOT enabled for this subscription (1035, {status.source} at {when}): "
        "the daily schedule skips. Ask Marketo Support to enable the updatedAt filter."
    )


def updated_at_answer(status: FilterStatus, path: Path) -> tuple[bool, str]:
    """(enabled, why) for the lead-change schedule; `path`: the capabilities file."""
    when = status.checked_at.isoformat(timespec="seconds")
    if status.supported:
        return True, f"updatedAt filter enabled (checked {when})"
    return False, (
        "Incremental updates are off: Marketo's updatedAt filter is not enabled for this "
        f"subscription (1035, {status.source} at {when}). Ask Marketo Support to enable it. "
        f"Checked again after MARKETO_FILTER_RECHECK_HOURS, or delete "
        f"{path} to check on the next tick. Lead partitions (createdAt) are not affected."
    )


def smart_list_answer(status: FilterStatus | None, path: Path) -> tuple[bool, str | None]:
    """(enabled, why not) for the smart-list sensor; unknown counts as enabled."""
    if status is None or status.supported:
        return True, None
    when = status.checked_at.isoformat(timespec="seconds")
    return False, (
        f"The smart-list filter is not enabled for this Marketo subscription (1035, "
        f"{status.source} at {when}); smart-list export runs are not requested. Ask Marketo "
        "Support to enable it, or export these audiences as static lists. It is checked again "
        f"after MARKETO_FILTER_RECHECK_HOURS, or delete {path} to check on the next tick."
    )


def filter_answer(
    store: FilterCapabilities,
    probe: ExportFilter,
    ask: Callable[[], bool],
    recheck: timedelta | None,
    log: Any = None,
) -> tuple[bool, str | None]:
    """(enabled, why not) of the probe's filter (updatedAt, smart list) for this subscription:
    the remembered answer, asked with `ask` (creates and cancels the probe job) only when
    unknown or older than `recheck`. An inconclusive smart-list probe (not 1035) counts as
    enabled; an inconclusive updatedAt probe raises."""
    capability = FILTER_CAPABILITY[probe.kind]
    smart = capability == "smartList"
    status = filter_status(store, capability, ask, recheck, log, inconclusive_ok=smart)
    if smart:
        return smart_list_answer(status, store.path)
    assert status is not None
    return updated_at_answer(status, store.path)
