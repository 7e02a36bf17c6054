"""Small value objects returned by the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .exports import parse_marketo_datetime

__all__ = ["ActivityType", "DownloadResult", "Event", "LeadField", "SmartList", "StaticList"]


@dataclass(frozen=True)
class Event:
    """Progress/diagnostic event passed to the `on_event` callback.

    kinds: auth, retry, rate_limited, status, download_progress, download_resumed,
    checksum_mismatch, enqueue_wait. `data` never contains secrets or tokens.
    """

    kind: str
    export_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LeadField:
    name: str
    display_name: str | None = None
    data_type: str | None = None
    length: int | None = None
    updateable: bool | None = None


@dataclass(frozen=True)
class ActivityType:
    """One activity type of `GET /rest/v1/activities/types.json`: its primary attribute and
    attributes as {"name", "dataType"} dicts."""

    id: int
    name: str
    description: str | None = None
    primary_attribute: dict[str, Any] | None = None
    attributes: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ActivityType:
        def attribute(item: Any) -> dict[str, Any]:
            return {"name": item.get("name"), "dataType": item.get("dataType")}

        primary = data.get("primaryAttribute")
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            description=data.get("description") or None,
            primary_attribute=attribute(primary) if isinstance(primary, dict) else None,
            attributes=tuple(
                attribute(a) for a in data.get("attributes") or () if isinstance(a, dict)
            ),
        )


@dataclass(frozen=True)
class StaticList:
    id: int
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    program_name: str | None = None
    workspace_name: str | None = None
    description: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> StaticList:
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            created_at=parse_marketo_datetime(data.get("createdAt")),
            updated_at=parse_marketo_datetime(data.get("updatedAt")),
            program_name=data.get("programName") or None,
            workspace_name=data.get("workspaceName") or None,
            description=data.get("description") or None,
        )


@dataclass(frozen=True)
class SmartList:
    id: int
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    folder: dict[str, Any] | None = None
    description: str | None = None
    workspace_name: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> SmartList:
        folder = data.get("folder")
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            created_at=parse_marketo_datetime(data.get("createdAt")),
            updated_at=parse_marketo_datetime(data.get("updatedAt")),
            folder=dict(folder) if isinstance(folder, dict) else None,
            description=data.get("description") or None,
            workspace_name=data.get("workspace") or None,
        )


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    bytes: int
    sha256: str
    resumes: int
    attempts: int
    seconds: float
    # Every body was read straight from the connection's socket (the fast path; False through
    # test transports, HTTP/2, chunked or encoded bodies).
    direct: bool = False
