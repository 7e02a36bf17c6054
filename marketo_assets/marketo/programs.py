"""Programs: the catalog (`GET /rest/asset/v1/programs.json`, offset paging, 200 per page) and
the program member describe (`GET /rest/v1/programs/members/describe.json`): the fields the
bulk program member export takes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .core import RequestCore
from .errors import MarketoAPIError
from .exports import parse_marketo_datetime
from .models import LeadField

__all__ = [
    "MAX_RETURN",
    "Program",
    "asset_pages",
    "describe_program_members",
    "fields_of",
    "iter_programs",
]

MAX_RETURN = 200  # the asset API's maximum page size
PROGRAMS_PATH = "/rest/asset/v1/programs.json"
DESCRIBE_PATH = "/rest/v1/programs/members/describe.json"


@dataclass(frozen=True)
class Program:
    id: int
    name: str
    type: str | None = None
    channel: str | None = None
    workspace_name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Program:
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            type=data.get("type") or None,
            channel=data.get("channel") or None,
            workspace_name=data.get("workspace") or None,
            created_at=parse_marketo_datetime(data.get("createdAt")),
            updated_at=parse_marketo_datetime(data.get("updatedAt")),
        )


def asset_pages(core: RequestCore, path: str, max_return: int = MAX_RETURN) -> Iterator[dict]:
    """Every item of an asset API listing, paged by offset. The pages end with a short page or
    with the warning "No assets found for the given search criteria" (no `result`)."""
    offset = 0
    while True:
        env = core.call(
            "GET", path, params={"offset": offset, "maxReturn": max_return}, expect_result=False
        )
        result = env.get("result") or []
        yield from result
        if len(result) < max_return or env.get("warnings"):
            return
        offset += len(result)


def iter_programs(core: RequestCore) -> Iterator[Program]:
    """Every program, 200 per call."""
    return (Program.from_api(item) for item in asset_pages(core, PROGRAMS_PATH))


def fields_of(env: dict[str, Any]) -> list[LeadField]:
    """The `fields` of a describe2-style answer (`result[0].fields`)."""
    result = env.get("result") or []
    fields = result[0].get("fields") if result and isinstance(result[0], dict) else None
    return [
        LeadField(
            name=str(f["name"]),
            display_name=f.get("displayName"),
            data_type=f.get("dataType"),
            length=f.get("length"),
            updateable=f.get("updateable"),
        )
        for f in fields or []
        if f.get("name")
    ]


def describe_program_members(core: RequestCore) -> list[LeadField]:
    """The program member fields (lead and membership fields) the bulk export can take."""
    fields = fields_of(core.call("GET", DESCRIBE_PATH))
    if not fields:
        raise MarketoAPIError("", "the program member describe lists no field")
    return fields
