"""Export requests (validated before any call) and export jobs parsed from Marketo JSON."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .errors import InvalidExportIdError, InvalidRequestError

__all__ = [
    "DELIMITERS",
    "EXPORT_BASE",
    "EXPORT_BASES",
    "EXPORT_TYPES",
    "MAX_PROGRAMS",
    "MAX_VALUES",
    "MAX_WINDOW",
    "ActivityFilter",
    "AnyFilter",
    "ExportFilter",
    "ExportJob",
    "ExportRequest",
    "ExportType",
    "ProgramMemberFilter",
    "checked_export_id",
    "export_base",
    "export_path",
    "format_marketo_datetime",
    "parse_marketo_datetime",
    "split_window",
]

MAX_WINDOW = timedelta(days=31)
DELIMITERS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
FilterKind = Literal[
    "createdAt", "updatedAt", "staticListId", "staticListName", "smartListId", "smartListName"
]
ExportFormat = Literal["CSV", "TSV", "SSV"]
# The bulk export types: one queue and one daily quota for all of them, each its own paths.
ExportType = Literal["leads", "activities", "program_members"]
EXPORT_TYPES: tuple[ExportType, ...] = ("leads", "activities", "program_members")
EXPORT_BASES: dict[str, str] = {
    "leads": "/bulk/v1/leads/export",
    "activities": "/bulk/v1/activities/export",
    "program_members": "/bulk/v1/program/members/export",
}
EXPORT_BASE = EXPORT_BASES["leads"]
MAX_VALUES = 50  # primaryAttributeValueIds / primaryAttributeValues per activity export
MAX_PROGRAMS = 10  # programIds per program member export
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def checked_export_id(export_id: object, source: str = "the caller") -> str:
    """`export_id` if it is a UUID (the only form that goes into a URL path or file name)."""
    if not isinstance(export_id, str) or not _UUID.fullmatch(export_id):
        raise InvalidExportIdError(export_id, source)
    return export_id


def export_base(export_type: str) -> str:
    """The path under which `export_type`'s jobs live (e.g. `/bulk/v1/leads/export`)."""
    try:
        return EXPORT_BASES[export_type]
    except KeyError:
        raise InvalidRequestError(
            f"Unknown export type {export_type!r}; one of {', '.join(EXPORT_TYPES)}"
        ) from None


def export_path(export_id: str, action: str, export_type: str = "leads") -> str:
    return f"{export_base(export_type)}/{checked_export_id(export_id)}/{action}.json"


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def format_marketo_datetime(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC (the form Marketo documents, without milliseconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_marketo_datetime(value: Any) -> datetime | None:
    """Parse Marketo date-times: `...Z`, `...+00:00`, `-08:00` and the asset form `...Z+0000`."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith("Z+0000"):
            text = text[: -len("Z+0000")] + "+00:00"
        elif text.endswith("Z"):
            text = text[:-1] + "+00:00"
        elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and text[-6] != ":":
            text = text[:-2] + ":" + text[-2:]
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def span(start: datetime, end: datetime) -> timedelta:
    """The absolute time from `start` to `end` (in UTC, whatever their timezones)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def split_window(
    start: datetime, end: datetime, max_window: timedelta = MAX_WINDOW
) -> list[tuple[datetime, datetime]]:
    """The inclusive window [start, end] as the fewest contiguous inclusive windows of at most
    `max_window` each (absolute time), of about equal length, in UTC: each starts one second
    after the previous one ends, so no second is in two windows or in none. Whole seconds.
    A window that fits is returned as it is (same datetimes)."""
    if span(start, end) <= max_window:
        return [(start, end)]
    first = start.astimezone(UTC)
    seconds = int(span(start, end).total_seconds()) + 1  # distinct seconds in [start, end]
    per_part = int(max_window.total_seconds()) + 1
    parts = -(-seconds // per_part)
    size, extra = divmod(seconds, parts)
    windows = []
    for i in range(parts):
        length = size + (1 if i < extra else 0)
        windows.append((first, first + timedelta(seconds=length - 1)))
        first += timedelta(seconds=length)
    return windows


def _check_window(label: str, start: datetime, end: datetime) -> None:
    """A Marketo date filter: timezone-aware whole seconds, start <= end, at most 31 days."""
    for name, dt in (("start", start), ("end", end)):
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (e.g. tzinfo=UTC)")
        if dt.microsecond:
            raise ValueError(f"{name} must not have a sub-second part (Marketo: no ms)")
    if start > end:
        raise ValueError("start must be <= end")
    # Absolute time: Python subtracts two datetimes of the same tzinfo on the wall clock,
    # which hides the extra hour of a DST change (Europe/Berlin's October).
    if span(start, end) > MAX_WINDOW:
        raise ValueError(
            f"{label} window {start.isoformat()} .. {end.isoformat()} is longer than "
            "31 days (Marketo's maximum); split it into smaller windows (split_window)"
        )


def _window_payload(start: datetime, end: datetime) -> dict[str, str]:
    return {"startAt": format_marketo_datetime(start), "endAt": format_marketo_datetime(end)}


def _strict_ints(value: Any, what: str) -> Any:
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if item is not None and (isinstance(item, bool) or not isinstance(item, int)):
            raise ValueError(f"{what} must be integers")
        if item is not None and item <= 0:
            raise ValueError(f"{what} must be positive integers")
    return value


class _Validated(BaseModel):
    """Base: any validation problem surfaces as errors.InvalidRequestError."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidRequestError(
                f"Invalid {type(self).__name__}: {_pydantic_message(exc)}"
            ) from None


class ExportFilter(_Validated):
    """Exactly one Marketo lead-export filter. Build it with the classmethods."""

    export_type: ClassVar[ExportType] = "leads"
    kind: FilterKind
    start: datetime | None = None
    end: datetime | None = None
    list_id: int | None = None
    list_name: str | None = None

    @classmethod
    def created_at(cls, start: datetime, end: datetime) -> ExportFilter:
        return cls(kind="createdAt", start=start, end=end)

    @classmethod
    def updated_at(cls, start: datetime, end: datetime) -> ExportFilter:
        return cls(kind="updatedAt", start=start, end=end)

    @classmethod
    def static_list_id(cls, list_id: int) -> ExportFilter:
        return cls(kind="staticListId", list_id=list_id)

    @classmethod
    def static_list_name(cls, name: str) -> ExportFilter:
        return cls(kind="staticListName", list_name=name)

    @classmethod
    def smart_list_id(cls, list_id: int) -> ExportFilter:
        return cls(kind="smartListId", list_id=list_id)

    @classmethod
    def smart_list_name(cls, name: str) -> ExportFilter:
        return cls(kind="smartListName", list_name=name)

    @field_validator("list_id", mode="before")
    @classmethod
    def _strict_int(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("list id must be an int")
        return value

    @model_validator(mode="after")
    def _check(self) -> ExportFilter:
        has_dates = self.start is not None or self.end is not None
        if self.kind in ("createdAt", "updatedAt"):
            if self.list_id is not None or self.list_name is not None:
                raise ValueError(f"{self.kind} takes only start/end: exactly one filter allowed")
            if self.start is None or self.end is None:
                raise ValueError(f"{self.kind} needs both start and end")
            _check_window(self.kind, self.start, self.end)
        elif self.kind in ("staticListId", "smartListId"):
            if has_dates or self.list_name is not None:
                raise ValueError(f"{self.kind} takes only a list id: exactly one filter allowed")
            if self.list_id is None or self.list_id <= 0:
                raise ValueError(f"{self.kind} must be a positive integer")
        else:
            if has_dates or self.list_id is not None:
                raise ValueError(f"{self.kind} takes only a list name: exactly one filter allowed")
            if self.list_name is None or not self.list_name.strip():
                raise ValueError(f"{self.kind} must be a non-empty list name")
        return self

    def payload(self) -> dict[str, Any]:
        if self.kind in ("createdAt", "updatedAt"):
            assert self.start is not None and self.end is not None
            return {self.kind: _window_payload(self.start, self.end)}
        if self.kind in ("staticListId", "smartListId"):
            return {self.kind: self.list_id}
        return {self.kind: self.list_name}

    def describe(self) -> str:
        ((key, value),) = self.payload().items()
        if isinstance(value, dict):
            return f"{key} {value['startAt']}..{value['endAt']}"
        return f"{key}={value}"


class ActivityFilter(_Validated):
    """The bulk activity export's filter: a createdAt window (required, at most 31 days),
    optionally only some activity types and, of those, some primary attribute values (by id
    or by value, at most 50, never both; they need `activity_type_ids`)."""

    export_type: ClassVar[ExportType] = "activities"
    kind: ClassVar[str] = "createdAt"
    start: datetime
    end: datetime
    activity_type_ids: tuple[int, ...] = ()
    primary_attribute_value_ids: tuple[int, ...] = ()
    primary_attribute_values: tuple[str, ...] = ()

    @field_validator("activity_type_ids", "primary_attribute_value_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _strict_ints(value, "ids")

    @model_validator(mode="after")
    def _check(self) -> ActivityFilter:
        _check_window("createdAt", self.start, self.end)
        ids, values = self.primary_attribute_value_ids, self.primary_attribute_values
        if ids and values:
            raise ValueError(
                "primaryAttributeValueIds and primaryAttributeValues cannot be combined: "
                "filter by one of them"
            )
        if (ids or values) and not self.activity_type_ids:
            raise ValueError(
                "primary attribute value filters need activityTypeIds (the activity types "
                "the values belong to)"
            )
        if len(ids or values) > MAX_VALUES:
            raise ValueError(
                f"at most {MAX_VALUES} primary attribute values per export "
                f"({len(ids or values)} given); split them into several exports"
            )
        if any(not v or not v.strip() for v in values):
            raise ValueError("primary attribute values must not be empty")
        if len(set(self.activity_type_ids)) != len(self.activity_type_ids):
            raise ValueError("activityTypeIds has duplicates")
        return self

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"createdAt": _window_payload(self.start, self.end)}
        if self.activity_type_ids:
            body["activityTypeIds"] = list(self.activity_type_ids)
        if self.primary_attribute_value_ids:
            body["primaryAttributeValueIds"] = list(self.primary_attribute_value_ids)
        if self.primary_attribute_values:
            body["primaryAttributeValues"] = list(self.primary_attribute_values)
        return body

    def describe(self) -> str:
        window = _window_payload(self.start, self.end)
        text = f"activities createdAt {window['startAt']}..{window['endAt']}"
        if self.activity_type_ids:
            text += f" activityTypeIds={','.join(map(str, self.activity_type_ids))}"
        return text


NurtureCadence = Literal["paused", "normal"]


class ProgramMemberFilter(_Validated):
    """The bulk program member export's filter: `program_id` or `program_ids` (at most 10; the
    file then starts with a programId column), ANDed with the optional ones."""

    export_type: ClassVar[ExportType] = "program_members"
    program_id: int | None = None
    program_ids: tuple[int, ...] = ()
    is_exhausted: bool | None = None
    nurture_cadence: NurtureCadence | None = None
    status_names: tuple[str, ...] = ()
    updated_start: datetime | None = None
    updated_end: datetime | None = None

    @field_validator("program_id", "program_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _strict_ints(value, "program ids")

    @model_validator(mode="after")
    def _check(self) -> ProgramMemberFilter:
        if (self.program_id is None) == (not self.program_ids):
            raise ValueError("give programId or programIds (exactly one of them)")
        if len(self.program_ids) > MAX_PROGRAMS:
            raise ValueError(
                f"at most {MAX_PROGRAMS} programs per export ({len(self.program_ids)} given); "
                "split them into several exports"
            )
        if len(set(self.program_ids)) != len(self.program_ids):
            raise ValueError("programIds has duplicates")
        if any(not n or not n.strip() for n in self.status_names):
            raise ValueError("status names must not be empty")
        if (self.updated_start is None) != (self.updated_end is None):
            raise ValueError("updatedAt needs both start and end")
        if self.updated_start is not None and self.updated_end is not None:
            _check_window("updatedAt", self.updated_start, self.updated_end)
        return self

    @property
    def kind(self) -> str:
        """The filter Marketo may have switched off (1035): updatedAt, else the program one."""
        if self.updated_start is not None:
            return "programMemberUpdatedAt"
        return "programId" if self.program_id is not None else "programIds"

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = (
            {"programId": self.program_id}
            if self.program_id is not None
            else {"programIds": list(self.program_ids)}
        )
        if self.is_exhausted is not None:
            body["isExhausted"] = self.is_exhausted
        if self.nurture_cadence is not None:
            body["nurtureCadence"] = self.nurture_cadence
        if self.status_names:
            body["statusNames"] = list(self.status_names)
        if self.updated_start is not None and self.updated_end is not None:
            body["updatedAt"] = _window_payload(self.updated_start, self.updated_end)
        return body

    def describe(self) -> str:
        return "program members " + ", ".join(
            f"{k}={v}" for k, v in self.payload().items() if not isinstance(v, dict)
        )


AnyFilter = ExportFilter | ActivityFilter | ProgramMemberFilter


_JOINERS = {"\u200c", "\u200d"}  # zero-width (non-)joiners: parts of emoji and scripts


def _bad_header_char(name: str) -> str | None:
    """Control and invisible format characters have no place in a column name. Quotes and
    delimiters are fine: the file quotes such a header (RFC 4180) and the loader quotes every
    identifier."""
    for ch in name:
        if unicodedata.category(ch) == "Cc" or (
            unicodedata.category(ch) == "Cf" and ch not in _JOINERS
        ):
            return repr(ch)
    return None


class ExportRequest(_Validated):
    """A validated create-export request. Raises errors.InvalidRequestError when invalid."""

    fields: list[str]
    filter: AnyFilter
    format: ExportFormat = "CSV"
    column_header_names: dict[str, str] = {}

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("fields must not be empty")
        empty = [i for i, f in enumerate(value) if not f or not f.strip()]
        if empty:
            raise ValueError(f"field names must not be empty (positions {empty})")
        seen: set[str] = set()
        dupes = sorted({f for f in value if f in seen or seen.add(f)})  # type: ignore[func-returns-value]
        if dupes:
            raise ValueError(f"duplicate fields: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _check_headers(self) -> ExportRequest:
        unknown = [k for k in self.column_header_names if k not in self.fields]
        if unknown:
            raise ValueError(
                f"columnHeaderNames keys must be in fields; not in fields: {', '.join(unknown)}. "
                "Add those fields to the export or remove their header names"
            )
        for key, name in self.column_header_names.items():
            if not name or not name.strip():
                raise ValueError(f"header name for {key!r} must not be empty")
            if name != name.strip():
                raise ValueError(
                    f"header name {name!r} for {key!r} has leading or trailing spaces: remove them"
                )
            bad = _bad_header_char(name)
            if bad:
                raise ValueError(
                    f"header name for {key!r} contains {bad} (no newline, tab, control or "
                    "invisible format characters allowed)"
                )
        headers = self.headers()
        seen: set[str] = set()
        dupes = sorted({h for h in headers if h in seen or seen.add(h)})  # type: ignore[func-returns-value]
        if dupes:
            raise ValueError(
                f"header names must be unique; duplicated: {', '.join(dupes)}. Give each "
                "field its own header name (a header may not repeat another field's name)"
            )
        return self

    @property
    def export_type(self) -> ExportType:
        """Which bulk export the request is for (its filter's type)."""
        return self.filter.export_type

    def headers(self) -> list[str]:
        """The header row the export file will have."""
        return [self.column_header_names.get(f, f) for f in self.fields]

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "fields": list(self.fields),
            "format": self.format,
            "filter": self.filter.payload(),
        }
        if self.column_header_names:
            body["columnHeaderNames"] = dict(self.column_header_names)
        return body


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ExportJob:
    """One bulk export job as Marketo reports it (optional fields are None when absent);
    `export_type` says under which paths it lives."""

    export_id: str
    status: str
    format: str | None = None
    created_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    number_of_records: int | None = None
    file_size: int | None = None
    file_checksum: str | None = None
    error_msg: str | None = None
    export_type: ExportType = "leads"

    TERMINAL = frozenset({"Completed", "Failed", "Cancelled"})
    ACTIVE = frozenset({"Created", "Queued", "Processing"})

    @classmethod
    def from_api(cls, data: dict[str, Any], export_type: ExportType = "leads") -> ExportJob:
        status = str(data.get("status") or "")
        if status.lower() in ("canceled", "cancelled"):
            status = "Cancelled"
        elif status:
            status = status[:1].upper() + status[1:].lower()
        return cls(
            export_id=str(data.get("exportId") or ""),
            status=status,
            format=data.get("format"),
            created_at=parse_marketo_datetime(data.get("createdAt")),
            queued_at=parse_marketo_datetime(data.get("queuedAt")),
            started_at=parse_marketo_datetime(data.get("startedAt")),
            finished_at=parse_marketo_datetime(data.get("finishedAt")),
            number_of_records=_int_or_none(data.get("numberOfRecords")),
            file_size=_int_or_none(data.get("fileSize")),
            file_checksum=data.get("fileChecksum") or None,
            error_msg=data.get("errorMsg") or None,
            export_type=export_type,
        )

    @property
    def sha256(self) -> str | None:
        """The announced checksum as lowercase hex, without the `sha256:` prefix."""
        if not self.file_checksum:
            return None
        value = self.file_checksum.strip()
        if value.lower().startswith("sha256:"):
            value = value[len("sha256:") :]
        return value.lower()
