"""Deleted leads (`activities/pagingtoken.json`, `activities/deletedleads.json`) and the truth
endpoints for deletions and merges."""

from __future__ import annotations

import asyncio
import base64
from bisect import bisect_left
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .activity_data import DELETE_LEAD, guid, guid_salt, lead_name
from .data import iso

if TYPE_CHECKING:
    from .server import Simulator

MAX_BATCH = 300
ACTIVITY_ID_BASE = 10_000_000_000  # id of lead n's "Delete Lead" activity: base + n


def _parse_time(text: str | None) -> int | None:
    """sinceDatetime / truth bounds: a date or an ISO-8601 datetime (GMT when no offset)."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _token(t: int, lead: int) -> str:
    """Opaque page token: the position (deletedAt, lead id) the next page starts at."""
    return base64.urlsafe_b64encode(f"d:{t}:{lead}".encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[int, int] | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        tag, t, lead = text.split(":")
        return (int(t), int(lead)) if tag == "d" else None
    except (ValueError, UnicodeDecodeError):
        return None


async def paging_token(sim: Simulator, request: Request) -> Response:
    since = _parse_time(request.query_params.get("sinceDatetime"))
    if since is None:
        return sim.fail("1003", "Invalid or missing sinceDatetime (use ISO-8601)")
    return JSONResponse(
        {"requestId": sim.request_id(), "success": True, "nextPageToken": _token(since, 0)}
    )


def _activity(sim: Simulator, t: int, lead: int, salt: int) -> dict:
    return {
        "id": ACTIVITY_ID_BASE + lead,
        "marketoGUID": guid((3 << 60) | lead, salt),
        "leadId": lead,
        "activityDate": iso(t),
        "activityTypeId": DELETE_LEAD,
        "primaryAttributeValueId": lead,
        "primaryAttributeValue": lead_name(sim.ds, lead),
        "attributes": [
            {"name": "Remove from CRM", "value": False},
            {"name": "API Method Name", "value": "deleteLead"},
        ],
    }


async def deleted_leads(sim: Simulator, request: Request) -> Response:
    q = request.query_params
    pos = _untoken(q.get("nextPageToken") or "")
    if pos is None:
        return sim.fail("1003", "Invalid or missing nextPageToken (get one from pagingtoken.json)")
    try:
        size = int(q.get("batchSize", MAX_BATCH))
    except ValueError:
        return sim.fail("1003", "Invalid batchSize")
    if size <= 0:
        return sim.fail("1003", "Invalid batchSize")
    size = min(size, MAX_BATCH)
    life = await asyncio.to_thread(sim.lifecycle)
    start = bisect_left(life.deleted, pos)
    page = life.deleted[start : start + size]
    more = start + size < len(life.deleted)
    if more:
        nxt = life.deleted[start + size]
    elif page:
        nxt = (page[-1][0], page[-1][1] + 1)
    else:
        nxt = pos
    out: dict = {"requestId": sim.request_id(), "success": True}
    salt = guid_salt(sim.ds)
    if page:
        out["result"] = [_activity(sim, t, lead, salt) for t, lead in page]
    out.update(nextPageToken=_token(*nxt), moreResult=more)
    return JSONResponse(out)


async def truth_deleted(sim: Simulator, request: Request) -> Response:
    """GET /_sim/truth/deleted_leads?start=&end= (inclusive; both optional)."""
    q = request.query_params
    start = _parse_time(q.get("start")) if q.get("start") else 0
    end = _parse_time(q.get("end")) if q.get("end") else 1 << 62
    if start is None or end is None:
        return JSONResponse({"error": "start and end must be ISO-8601"}, 400)
    life = await asyncio.to_thread(sim.lifecycle)
    rows = life.deleted_between(start, end)
    return JSONResponse(
        {
            "count": len(rows),
            "leadIds": [lead for _, lead in rows],
            "deletedAt": [iso(t) for t, _ in rows],
        }
    )


async def truth_merges(sim: Simulator, request: Request) -> Response:
    """GET /_sim/truth/merges: every merge, oldest first."""
    life = await asyncio.to_thread(sim.lifecycle)
    return JSONResponse(
        {
            "merges": [
                {"winner": m.winner, "merged": list(m.merged), "mergedAt": iso(m.at)}
                for m in life.merges
            ]
        }
    )
