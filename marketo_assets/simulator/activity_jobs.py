"""Bulk activity export jobs: create-request validation and the file writer."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .activity_data import (
    DELETE_LEAD,
    EXPORTABLE_TYPES,
    GROUPS,
    ActivityModel,
    Filter,
    attributes_json,
)
from .data import iso
from .files import escape, header_line
from .jobs import ApiError, FileInfo, check_format, parse_range

if TYPE_CHECKING:
    from .server import Simulator

DEFAULT_FIELDS = (
    "marketoGUID",
    "leadId",
    "activityDate",
    "activityTypeId",
    "campaignId",
    "primaryAttributeValueId",
    "primaryAttributeValue",
    "attributes",
)
FIELDS = (*DEFAULT_FIELDS, "actionResult")
FILTER_KEYS = ("createdAt", "activityTypeIds", "primaryAttributeValueIds", "primaryAttributeValues")
MAX_VALUES = 50
BATCH = 5000


def _int_list(value, key: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ApiError("1003", f"Invalid data: {key} must be a non-empty array of integers")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ApiError("1003", f"Invalid data: {key} must be a non-empty array of integers")
    return list(value)


def validate_filter(flt, *, strict: bool = True) -> tuple[Filter, dict]:
    """Check an activity filter: (selection, normalised filter)."""
    if not isinstance(flt, dict) or "createdAt" not in flt:
        raise ApiError("1003", "Invalid data: filter.createdAt is required")
    unknown = [k for k in flt if k not in FILTER_KEYS]
    if unknown:
        raise ApiError(
            "1003",
            f"Invalid filter type(s): {', '.join(unknown)}. Use " + ", ".join(FILTER_KEYS),
        )
    start, end = parse_range(flt["createdAt"], "createdAt", strict)
    created = flt["createdAt"]
    norm: dict = {"createdAt": {"startAt": created["startAt"], "endAt": created["endAt"]}}
    types = None
    if "activityTypeIds" in flt:
        ids = _int_list(flt["activityTypeIds"], "activityTypeIds")
        if DELETE_LEAD in ids:
            raise ApiError(
                "1003",
                "Invalid data: activity type 37 (Delete Lead) is not supported by the bulk "
                "activity export; use Get Deleted Leads",
            )
        bad = sorted({i for i in ids if i not in EXPORTABLE_TYPES})
        if bad:
            raise ApiError("1003", "Invalid activity type ids: " + ", ".join(map(str, bad)))
        types = frozenset(ids)
        norm["activityTypeIds"] = sorted(types)
    has_ids = "primaryAttributeValueIds" in flt
    has_names = "primaryAttributeValues" in flt
    if has_ids and has_names:
        raise ApiError(
            "1003",
            "Invalid data: primaryAttributeValueIds and primaryAttributeValues cannot be used "
            "together",
        )
    value_ids = values = None
    if has_ids or has_names:
        key = "primaryAttributeValueIds" if has_ids else "primaryAttributeValues"
        raw = flt[key]
        if has_ids:
            raw = _int_list(raw, key)
        elif not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
            raise ApiError("1003", f"Invalid data: {key} must be a non-empty array of strings")
        if len(raw) > MAX_VALUES:
            raise ApiError("1003", f"Invalid data: {key} accepts at most {MAX_VALUES} values")
        if types is None:
            raise ApiError("1003", f"Invalid data: {key} requires activityTypeIds")
        groups = {GROUPS.get(t) for t in types}
        if None in groups or len(groups) != 1:
            raise ApiError(
                "1003",
                f"Invalid data: with {key}, activityTypeIds must all be of one asset group "
                "(Web Form: 2; Lead Field: 13, 22; Static List: 24, 25; Marketing Program: 104)",
            )
        if has_ids:
            value_ids = frozenset(raw)
        else:
            values = frozenset(raw)
        norm[key] = sorted(set(raw))
    return Filter(start, end, types, value_ids, values), norm


def validate_request(body) -> tuple[dict, Filter]:
    """Validate a create body: (normalised request, selection)."""
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON")
    fields = body.get("fields", list(DEFAULT_FIELDS))  # optional for activities
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise ApiError("1003", "Invalid data: fields must be a non-empty list of field names")
    bad = [f for f in fields if f not in FIELDS]
    if bad:
        raise ApiError("1003", "Invalid fields: " + ", ".join(bad))
    fmt, headers = check_format(body, fields, ("fields", "format", "columnHeaderNames", "filter"))
    sel, flt = validate_filter(body.get("filter"))
    return {"fields": list(fields), "format": fmt, "columnHeaderNames": headers, "filter": flt}, sel


def _cells(row, ts) -> dict[str, str | None]:
    guid, lead, t, type_id, campaign, vid, value, attrs, action = row
    return {
        "marketoGUID": guid,
        "leadId": str(lead),
        "activityDate": ts(t),
        "activityTypeId": str(type_id),
        "campaignId": None if campaign is None else str(campaign),
        "primaryAttributeValueId": None if vid is None else str(vid),
        "primaryAttributeValue": value,
        "attributes": attributes_json(attrs),
        "actionResult": action,
    }


def write_activities(
    model: ActivityModel, req: dict, sel: Filter, path: str, delim: str, stopping=lambda: False
) -> FileInfo:
    """Runs in a worker thread: render the window's activities, a day at a time."""
    t0 = time.perf_counter()
    fields = req["fields"]
    days, day0, tod = model.ds.ts_tables()

    def ts(t: int) -> str:
        k = t // 86400 - day0
        return days[k] + tod[t % 86400] if 0 <= k < len(days) else iso(t)

    h = hashlib.sha256()
    rows = size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        buf = [header_line(fields, req["columnHeaderNames"], delim)]

        def flush() -> None:
            nonlocal size
            data = "".join(buf).encode("utf-8")
            out.write(data)
            h.update(data)
            size += len(data)
            buf.clear()

        for row in model.rows(sel):
            cells = _cells(row, ts)
            buf.append(delim.join(escape(cells[f], delim) for f in fields) + "\n")
            rows += 1
            if len(buf) >= BATCH:
                if stopping():
                    raise RuntimeError("simulator is stopping")
                flush()
        flush()
    return FileInfo(path, rows, size, h.hexdigest(), time.perf_counter() - t0)


async def truth(sim: Simulator, request: Request) -> Response:
    """POST /_sim/truth/activities {"start", "end", "activityTypeIds"?, "ids"?}: the activities
    with start <= activityDate <= end (no 31-day limit); the value filters are accepted too."""
    body = await request.json()
    flt: dict = {"createdAt": {"startAt": body.get("start"), "endAt": body.get("end")}}
    for key in ("activityTypeIds", "primaryAttributeValueIds", "primaryAttributeValues"):
        if body.get(key) is not None:
            flt[key] = body[key]
    try:
        sel, _ = validate_filter(flt, strict=False)
    except ApiError as e:
        return JSONResponse({"error": e.message, "code": e.code}, 400)

    def count() -> dict:
        n, guids = 0, []
        for row in sim.activity_model().rows(sel):
            n += 1
            if body.get("ids"):
                guids.append(row[0])
        return {"count": n, "guids": guids} if body.get("ids") else {"count": n}

    return JSONResponse(await asyncio.to_thread(count))
