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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .local_paths import private_dirs

__all__ = ["FILTER_CAPABILITY", "FilterCapabilities", "FilterStatus", "capability_for"]

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
