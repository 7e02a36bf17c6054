"""Deleted leads: Marketo's "Get Deleted Leads" activities, paged from a paging token.

`GET /rest/v1/activities/pagingtoken.json?sinceDatetime=<start>` gives the token of the first
page; `GET /rest/v1/activities/deletedleads.json?nextPageToken=…&batchSize=300` returns the
deletions in activityDate order, paged while `moreResult` is true (a page may be empty and still
have more). A window [start, end) costs one token call and one call per 300 deletions from
`start` on: paging stops at the first deletion at or after `end`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .core import RequestCore
from .errors import InvalidRequestError, MarketoAPIError, TransientError
from .exports import format_marketo_datetime, parse_marketo_datetime

__all__ = ["BATCH_SIZE", "DeletedLead", "iter_deleted_leads"]

BATCH_SIZE = 300  # Marketo's maximum page size
PAGING_PATH = "/rest/v1/activities/pagingtoken.json"
PAGE_PATH = "/rest/v1/activities/deletedleads.json"


@dataclass(frozen=True)
class DeletedLead:
    id: int  # the "Delete Lead" activity's id
    lead_id: int
    deleted_at: datetime  # the activity's activityDate (UTC)

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> DeletedLead:
        deleted_at = parse_marketo_datetime(item.get("activityDate"))
        if deleted_at is None or item.get("leadId") is None:
            raise MarketoAPIError("", f"a deleted-lead activity without date or lead: {item}")
        return cls(id=int(item.get("id") or 0), lead_id=int(item["leadId"]), deleted_at=deleted_at)


def iter_deleted_leads(
    core: RequestCore, start: datetime, end: datetime, batch_size: int = BATCH_SIZE
) -> Iterator[DeletedLead]:
    """The leads deleted in [start, end) (timezone-aware datetimes), in Marketo's order."""
    for label, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise InvalidRequestError(f"deleted leads: {label} must be timezone-aware")
    if not start < end:
        raise InvalidRequestError("deleted leads: start must be before end")
    if not 1 <= batch_size <= BATCH_SIZE:
        raise InvalidRequestError(f"deleted leads: batchSize must be 1..{BATCH_SIZE}")
    env = core.call(
        "GET",
        PAGING_PATH,
        params={"sinceDatetime": format_marketo_datetime(start)},
        expect_result=False,
    )
    token = env.get("nextPageToken")
    if not token:
        raise TransientError("Marketo returned no paging token")
    while True:
        env = core.call(
            "GET",
            PAGE_PATH,
            params={"nextPageToken": token, "batchSize": batch_size},
            expect_result=False,
        )
        for item in env.get("result") or []:
            lead = DeletedLead.from_api(item)
            if lead.deleted_at >= end:
                return
            if lead.deleted_at >= start:
                yield lead
        next_token = env.get("nextPageToken")
        if not env.get("moreResult") or not next_token or next_token == token:
            return
        token = next_token
