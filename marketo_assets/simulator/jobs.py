"""Bulk lead export jobs: request validation, the job record and file generation."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .data import EXPORTABLE, FIELD_BY_NAME, DataSet, ListDef, iso
from .files import DELIMITERS, write_export

FILTER_TYPES = (
    "createdAt",
    "updatedAt",
    "staticListId",
    "staticListName",
    "smartListId",
    "smartListName",
)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:?\d{2})?$")
MAX_SPAN = 31 * 86400
STATUSES = ("Created", "Queued", "Processing", "Completed", "Failed", "Cancelled")
KINDS = ("leads", "activities", "program_members")  # one queue and one quota for all
_SEQ = itertools.count(1)  # orders status transitions made at the same simulated second


class ApiError(Exception):
    """A Marketo error answered as HTTP 200 with success:false."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def parse_date(value, where: str) -> int:
    if not isinstance(value, str) or not DATE_RE.match(value):
        raise ApiError(
            "1003",
            f"Invalid date format for {where}: {value!r}. Use ISO-8601 without milliseconds, "
            "e.g. 2025-01-01T00:00:00Z",
        )
    text = value.replace("Z", "+00:00")
    if len(text) == 19:  # no offset: GMT
        text += "+00:00"
    elif text[-3] != ":":  # +0000 -> +00:00
        text = text[:-2] + ":" + text[-2:]
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise ApiError("1003", f"Invalid date for {where}: {value!r}") from None


def parse_range(value, key: str, strict: bool = True) -> tuple[int, int]:
    """A {startAt, endAt} date range -> (start, end) epoch seconds; 1003 when malformed or (if
    `strict`) longer than 31 days."""
    if not isinstance(value, dict):
        raise ApiError("1003", f"Invalid data: {key} must be an object with startAt, endAt")
    for part in ("startAt", "endAt"):
        if part not in value:
            raise ApiError("1003", f"Invalid data: {key}.{part} is required")
    extra = [k for k in value if k not in ("startAt", "endAt")]
    if extra:
        raise ApiError("1003", f"Invalid data: unknown keys in {key}: {', '.join(extra)}")
    start = parse_date(value["startAt"], f"{key}.startAt")
    end = parse_date(value["endAt"], f"{key}.endAt")
    if end < start:
        raise ApiError("1003", f"Invalid data: {key}.endAt is before {key}.startAt")
    if strict and end - start > MAX_SPAN:
        raise ApiError("1003", f"Invalid data: {key} date range exceeds 31 days")
    return start, end


def check_format(body: dict, fields: list[str], allowed_keys: tuple[str, ...]) -> tuple[str, dict]:
    """format and columnHeaderNames of a create body, and no unknown keys: (FORMAT, headers)."""
    fmt = body.get("format", "CSV")
    if not isinstance(fmt, str) or fmt.upper() not in DELIMITERS:
        raise ApiError("1003", f"Invalid format {fmt!r}: use CSV, TSV or SSV")
    headers = body.get("columnHeaderNames") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ApiError("1003", "Invalid data: columnHeaderNames must map field names to strings")
    stray = [k for k in headers if k not in fields]
    if stray:
        raise ApiError(
            "1003", "Invalid data: columnHeaderNames keys not in fields: " + ", ".join(stray)
        )
    extra = [k for k in body if k not in allowed_keys]
    if extra:
        raise ApiError("1003", f"Invalid data: unknown request keys: {', '.join(extra)}")
    return fmt.upper(), dict(headers)


@dataclass(frozen=True)
class Selection:
    """A validated filter: kind in createdAt|updatedAt|static|smart."""

    kind: str
    start: int = 0
    end: int = 0
    list_key: tuple[str, int] | None = None


def validate_filter(
    ds: DataSet, flt, disabled: set[str], *, strict: bool = True
) -> tuple[Selection, dict]:
    """Check one lead filter. Returns the selection and the normalised filter dict."""
    if not isinstance(flt, dict) or not flt:
        raise ApiError(
            "1003",
            "Invalid data: filter is required; use exactly one of " + ", ".join(FILTER_TYPES),
        )
    unknown = [k for k in flt if k not in FILTER_TYPES]
    if unknown:
        raise ApiError(
            "1003",
            f"Invalid filter type(s): {', '.join(unknown)}. Use exactly one "
            "of " + ", ".join(FILTER_TYPES),
        )
    if len(flt) != 1:
        raise ApiError(
            "1003", "Only one filter type is allowed per export job, got: " + ", ".join(flt)
        )
    ((key, value),) = flt.items()
    if strict:
        if key == "updatedAt" and "updatedAt" in disabled:
            raise ApiError("1035", "Unsupported filter type for target subscription: updatedAt")
        if key.startswith("smartList") and "smartList" in disabled:
            raise ApiError("1035", f"Unsupported filter type for target subscription: {key}")
    if key in ("createdAt", "updatedAt"):
        start, end = parse_range(value, key, strict)
        sel = Selection(key, start, end)
        return sel, {key: {"startAt": value["startAt"], "endAt": value["endAt"]}}
    kind = "static" if key.startswith("static") else "smart"
    label = "Static list" if kind == "static" else "Smart list"
    if key.endswith("Id"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ApiError("1003", f"Invalid data: {key} must be an integer")
        try:
            list_id = int(value)
        except ValueError:
            raise ApiError("1003", f"Invalid data: {key} must be an integer") from None
        lst = ds.find_list(kind, list_id=list_id)
        if lst is None:
            raise ApiError("1003", f"Invalid data: {label} with id {list_id} not found")
        return Selection(kind, list_key=(kind, lst.id)), {key: list_id}
    if not isinstance(value, str) or not value:
        raise ApiError("1003", f"Invalid data: {key} must be a non-empty string")
    lst = ds.find_list(kind, name=value)
    if lst is None:
        raise ApiError("1003", f"Invalid data: {label} named {value!r} not found")
    return Selection(kind, list_key=(kind, lst.id)), {key: value}


def validate_request(ds: DataSet, body, disabled: set[str]) -> tuple[dict, Selection]:
    """Validate a create body. Returns (normalised request, selection)."""
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON")
    fields = body.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise ApiError(
            "1003",
            "Invalid data: fields is required and must be a non-empty list of field REST names",
        )
    bad = [f for f in fields if f not in FIELD_BY_NAME]
    formula = [f for f in fields if f in FIELD_BY_NAME and f not in EXPORTABLE]
    if bad or formula:
        msg = "Invalid fields: " + ", ".join(bad + formula)
        if formula:
            msg += " (formula fields cannot be exported)"
        raise ApiError("1003", msg)
    fmt, headers = check_format(body, fields, ("fields", "format", "columnHeaderNames", "filter"))
    sel, flt = validate_filter(ds, body.get("filter"), disabled)
    req = {"fields": list(fields), "format": fmt, "columnHeaderNames": headers, "filter": flt}
    return req, sel


def signature(req: dict) -> str:
    return json.dumps(req, sort_keys=True, ensure_ascii=True)


@dataclass
class FileInfo:
    path: str
    rows: int
    size: int
    sha256: str
    seconds: float


@dataclass
class Job:
    export_id: str
    owner: str
    request: dict
    selection: Any  # the family's validated selection (None for foreign jobs)
    created: float
    status: str = "Created"
    queued: float | None = None
    started: float | None = None
    finished: float | None = None
    file: FileInfo | None = None
    error_msg: str | None = None
    create_count: int = 1
    foreign: bool = False
    hold_until: float = 0.0
    future: Future[FileInfo] | None = None  # while processing
    cache_key: str = ""
    extra: dict = field(default_factory=dict)
    kind: str = "leads"
    clock: Callable[[], float] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.transitions: list[dict] = [self._transition(self.status, self.created)]

    def _transition(self, status: str, at: float) -> dict:
        return {"status": status, "at": iso(int(at)), "epoch": at, "seq": next(_SEQ)}

    def __setattr__(self, name: str, value) -> None:
        # every status change lands in the job record (/_sim/jobs/record)
        if name == "status" and "transitions" in self.__dict__ and value != self.status:
            at = self.clock() if self.clock is not None else time.time()
            self.transitions.append(self._transition(value, at))
        object.__setattr__(self, name, value)

    @property
    def signature(self) -> str:
        return signature(self.request)

    def public(self) -> dict:
        """The ExportResponse object; unset fields are omitted like real Marketo."""
        out = {
            "exportId": self.export_id,
            "format": self.request.get("format", "CSV"),
            "status": self.status,
            "createdAt": iso(int(self.created)),
        }
        if self.queued is not None:
            out["queuedAt"] = iso(int(self.queued))
        if self.started is not None:
            out["startedAt"] = iso(int(self.started))
        if self.finished is not None:
            out["finishedAt"] = iso(int(self.finished))
        if self.status == "Completed" and self.file is not None:
            out["numberOfRecords"] = self.file.rows
            out["fileSize"] = self.file.size
            out["fileChecksum"] = "sha256:" + self.file.sha256
        if self.status == "Failed":
            out["errorMsg"] = self.error_msg or "Export failed"
        return out

    def state(self) -> dict:
        """Everything, for /_sim/state."""
        out = self.public()
        out.update(
            type=self.kind,
            owner=self.owner,
            filter=self.request.get("filter"),
            fields=self.request.get("fields"),
            columnHeaderNames=self.request.get("columnHeaderNames"),
            createCount=self.create_count,
            foreign=self.foreign,
        )
        if self.file is not None:
            out.update(
                numberOfRecords=self.file.rows,
                fileSize=self.file.size,
                generationSeconds=round(self.file.seconds, 3),
            )
        if self.foreign:
            out["holdUntil"] = iso(int(self.hold_until))
        return out

    def record(self) -> dict:
        """Type, id, owner and every status change, for /_sim/jobs/record."""
        return {
            "type": self.kind,
            "exportId": self.export_id,
            "owner": self.owner,
            "foreign": self.foreign,
            "status": self.status,
            "transitions": list(self.transitions),
        }


def snapshot_list(lst: ListDef) -> ListDef:
    """Copy of a list's membership rule, taken when a job starts Processing."""
    return ListDef(
        lst.kind,
        lst.id,
        lst.name,
        lst.description,
        lst.created,
        lst.updated,
        lst.density,
        lst.salt,
        added=set(lst.added),
        removed=set(lst.removed),
    )


def select_ids(ds: DataSet, sel: Selection, lst: ListDef | None, changed: dict[int, int]):
    if sel.kind == "createdAt":
        return ds.ids_created(sel.start, sel.end)
    if sel.kind == "updatedAt":
        return ds.ids_updated(sel.start, sel.end, changed)
    if lst is None:
        raise RuntimeError("list was deleted before the job started")
    return ds.members(lst)


def generate(
    ds: DataSet,
    req: dict,
    sel: Selection,
    lst: ListDef | None,
    overrides: dict,
    changed: dict,
    path: str,
    ssv_separator: str = ";",
) -> FileInfo:
    """Runs in a worker thread: select the leads, write the file."""
    t0 = time.perf_counter()
    ids = select_ids(ds, sel, lst, changed)
    rows, size, sha = write_export(
        ds, ids, req["fields"], req["format"], req["columnHeaderNames"], path, overrides, changed,
        ssv_separator,
    )  # fmt: skip
    return FileInfo(path, rows, size, sha, time.perf_counter() - t0)
