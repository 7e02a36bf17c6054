"""Programs (`programs.json`), the program member describe and bulk program member export jobs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .data import EXPORTABLE, DataSet, iso
from .files import escape, header_line
from .jobs import ApiError, FileInfo, check_format, parse_range
from .programs import MEMBER_FIELD_NAMES, MEMBER_FIELDS, Program, member_values, members

if TYPE_CHECKING:
    from .server import Simulator

FILTER_KEYS: tuple[str, ...] = ("programId", "programIds", "isExhausted", "nurtureCadence")
FILTER_KEYS += ("statusNames", "updatedAt")
OPTIONAL = ("isExhausted", "nurtureCadence", "statusNames", "updatedAt")  # may be switched off
MAX_PROGRAMS = 10
CADENCES = {"paused": "paused", "normal": "normal", "pause": "paused", "norm": "normal"}
DATES = ("membershipDate", "reachedSuccessDate", "createdAt", "updatedAt")
# lead fields a program member export may add (program member fields win on a name clash)
LEAD_FIELDS = tuple(f for f in EXPORTABLE if f not in MEMBER_FIELD_NAMES)
ALL_FIELDS = frozenset(MEMBER_FIELD_NAMES) | frozenset(LEAD_FIELDS)
BATCH = 5000


@dataclass(frozen=True)
class Selection:
    program_ids: tuple[int, ...]
    multi: bool  # programIds: the file starts with a programId column
    exhausted: bool | None = None
    cadence: str | None = None
    statuses: frozenset[str] | None = None
    updated: tuple[int, int] | None = None


def validate_filter(
    programs: list[Program], flt, disabled: set[str], *, strict: bool = True
) -> tuple[Selection, dict]:
    if not isinstance(flt, dict):
        raise ApiError("1003", "Invalid data: filter with programId or programIds is required")
    unknown = [k for k in flt if k not in FILTER_KEYS]
    if unknown:
        raise ApiError(
            "1003",
            f"Invalid filter type(s): {', '.join(unknown)}. Use " + ", ".join(FILTER_KEYS),
        )
    off = [k for k in flt if k in OPTIONAL and k in disabled]
    if off and strict:
        raise ApiError("1035", f"Unsupported filter type for target subscription: {off[0]}")
    if "programId" in flt and "programIds" in flt:
        raise ApiError("1003", "Invalid data: programId and programIds cannot be used together")
    if "programId" in flt:
        raw, multi = [flt["programId"]], False
    elif "programIds" in flt:
        raw, multi = flt["programIds"], True
        if not isinstance(raw, list) or not raw:
            raise ApiError("1003", "Invalid data: programIds must be a non-empty array")
        if strict and len(raw) > MAX_PROGRAMS:
            raise ApiError("1003", f"Invalid data: programIds accepts at most {MAX_PROGRAMS} ids")
    else:
        raise ApiError("1003", "Invalid data: filter.programId or filter.programIds is required")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
        raise ApiError("1003", "Invalid data: program ids must be integers")
    known = {p.id: p for p in programs}
    missing = [str(i) for i in raw if i not in known]
    if missing:
        raise ApiError("1003", f"Invalid data: program id(s) not found: {', '.join(missing)}")
    ids = tuple(dict.fromkeys(raw))
    norm: dict = {"programIds": list(ids)} if multi else {"programId": ids[0]}
    exhausted = cadence = statuses = updated = None
    if "isExhausted" in flt:
        if not isinstance(flt["isExhausted"], bool):
            raise ApiError("1003", "Invalid data: isExhausted must be true or false")
        exhausted = norm["isExhausted"] = flt["isExhausted"]
    if "nurtureCadence" in flt:
        raw_cadence = flt["nurtureCadence"]
        cadence = CADENCES.get(raw_cadence) if isinstance(raw_cadence, str) else None
        if cadence is None:
            raise ApiError("1003", "Invalid data: nurtureCadence must be paused or normal")
        norm["nurtureCadence"] = cadence
    if "statusNames" in flt:
        names = flt["statusNames"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ApiError("1003", "Invalid data: statusNames must be a non-empty array of names")
        offered = {s for i in ids for s in known[i].statuses}
        if not offered & set(names):
            raise ApiError("1003", "Invalid data: no program member status found for statusNames")
        statuses = frozenset(names)
        norm["statusNames"] = sorted(statuses)
    if "updatedAt" in flt:
        updated = parse_range(flt["updatedAt"], "updatedAt", strict)
        upd = flt["updatedAt"]
        norm["updatedAt"] = {"startAt": upd["startAt"], "endAt": upd["endAt"]}
    return Selection(ids, multi, exhausted, cadence, statuses, updated), norm


def validate_request(programs: list[Program], body, disabled: set[str]) -> tuple[dict, Selection]:
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON")
    fields = body.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise ApiError(
            "1003", "Invalid data: fields is required and must be a non-empty list of field names"
        )
    bad = [f for f in fields if f not in ALL_FIELDS]
    if bad:
        raise ApiError("1003", "Invalid fields: " + ", ".join(bad))
    fmt, headers = check_format(body, fields, ("fields", "format", "columnHeaderNames", "filter"))
    sel, flt = validate_filter(programs, body.get("filter"), disabled)
    return {"fields": list(fields), "format": fmt, "columnHeaderNames": headers, "filter": flt}, sel


def selected(ds: DataSet, programs: list[Program], sel: Selection) -> Iterator[dict]:
    """The memberships the selection matches (all filters ANDed), by program then lead id."""
    known = {p.id: p for p in programs}
    for pid in sel.program_ids:
        p = known[pid]
        for lead in members(ds, p):
            v = member_values(ds, p, lead)
            if sel.exhausted is not None and v["isExhausted"] != sel.exhausted:
                continue
            if sel.cadence is not None and v["nurtureCadence"] != sel.cadence:
                continue
            if sel.statuses is not None and v["statusName"] not in sel.statuses:
                continue
            if sel.updated is not None and not sel.updated[0] <= v["updatedAt"] <= sel.updated[1]:
                continue
            yield v


def _text(name: str, value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in DATES:
        return iso(value)
    return str(value)


def columns(req: dict, sel: Selection) -> list[str]:
    fields = list(req["fields"])
    return ["programId", *fields] if sel.multi and "programId" not in fields else fields


def write_members(
    ds: DataSet, programs: list[Program], req: dict, sel: Selection, path: str, delim: str
) -> FileInfo:
    """Runs in a worker thread: write the program member file."""
    t0 = time.perf_counter()
    cols = columns(req, sel)
    lead_cols = [c for c in cols if c not in MEMBER_FIELD_NAMES]
    h = hashlib.sha256()
    rows = size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        buf = [header_line(cols, req["columnHeaderNames"], delim)]

        def flush() -> None:
            nonlocal size
            data = "".join(buf).encode("utf-8")
            out.write(data)
            h.update(data)
            size += len(data)
            buf.clear()

        for v in selected(ds, programs, sel):
            cells = {c: _text(c, v.get(c)) for c in cols if c in MEMBER_FIELD_NAMES}
            if lead_cols:
                lead = ds.lead_values(v["leadId"])
                cells.update({c: lead[c] for c in lead_cols})
            buf.append(delim.join(escape(cells[c], delim) for c in cols) + "\n")
            rows += 1
            if len(buf) >= BATCH:
                if ds.stopping:
                    raise RuntimeError("simulator is stopping")
                flush()
        flush()
    return FileInfo(path, rows, size, h.hexdigest(), time.perf_counter() - t0)


# ---- REST and truth endpoints ---------------------------------------------------------------
def _asset_date(sec: int) -> str:
    return iso(sec) + "+0000"


def program_json(p: Program) -> dict:
    return {
        "id": p.id,
        "name": p.name,
        "description": f"{p.channel} program",
        "createdAt": _asset_date(p.created),
        "updatedAt": _asset_date(p.updated),
        "url": f"https://app-sim.marketo.com/#PG{p.id}A1",
        "type": p.type,
        "channel": p.channel,
        "folder": {"type": "Folder", "value": 40 + p.id % 5, "folderName": "Marketing Activities"},
        "status": "on" if p.nurture else "",
        "workspace": "Default",
        "tags": [],
        "costs": [],
    }


async def programs(sim: Simulator, request: Request) -> Response:
    """GET /rest/asset/v1/programs.json: offset + maxReturn (default 20, at most 200)."""
    q = request.query_params
    try:
        offset = int(q.get("offset", 0))
        max_return = int(q.get("maxReturn", 20))
    except ValueError:
        return sim.fail("1003", "Invalid offset or maxReturn")
    if max_return > 200 or max_return < 1 or offset < 0:
        return sim.fail("1003", "maxReturn must be between 1 and 200, offset not negative")
    items = sim.programs()
    ftype, fvalues = q.get("filterType"), q.get("filterValues")
    if ftype in ("id", "programId") and fvalues:
        wanted = {v.strip() for v in fvalues.split(",")}
        items = [p for p in items if str(p.id) in wanted]
    page = [program_json(p) for p in items[offset : offset + max_return]]
    base = {"requestId": sim.request_id(), "success": True, "errors": []}
    if not page:
        return JSONResponse(base | {"warnings": ["No assets found for the given search criteria."]})
    return JSONResponse(base | {"warnings": [], "result": page})


async def describe(sim: Simulator, request: Request) -> Response:
    """GET /rest/v1/programs/members/describe.json."""
    fields = [
        {
            "name": name,
            "displayName": display,
            "dataType": data_type,
            **({"length": 255} if data_type in ("string", "url") else {}),
            "updateable": name not in ("programId", "leadId", "createdAt", "updatedAt"),
            "crmManaged": False,
        }
        for name, display, data_type in MEMBER_FIELDS
    ]
    created = _asset_date(sim.ds.start - 90 * 86400)
    return sim.ok(
        [
            {
                "name": "API Program Member",
                "description": "API Program Member Map",
                "createdAt": created,
                "updatedAt": created,
                "dedupeFields": ["leadId", "programId"],
                "searchableFields": [["leadId"], ["programId"], ["statusName"]],
                "fields": fields,
            }
        ]
    )


async def truth(sim: Simulator, request: Request) -> Response:
    """POST /_sim/truth/program_members {"programIds", "ids"?, "filter"?}."""
    body = await request.json()
    flt = {**(body.get("filter") or {}), "programIds": body.get("programIds")}
    try:
        sel, _ = validate_filter(sim.programs(), flt, set(), strict=False)
    except ApiError as e:
        return JSONResponse({"error": e.message, "code": e.code}, 400)

    def count() -> dict:
        rows = [[v["programId"], v["leadId"]] for v in selected(sim.ds, sim.programs(), sel)]
        return {"count": len(rows), "rows": rows} if body.get("ids") else {"count": len(rows)}

    return JSONResponse(await asyncio.to_thread(count))
