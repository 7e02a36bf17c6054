"""Marketo bulk export client: leads, activities, program members (httpx; no dagster import).

client.py    MarketoClient: the calls (export jobs of every type, field catalog, lists, programs,
             deleted leads)
exports.py   the validated requests and filters of each export type, jobs, windows
programs.py, deleted_leads.py: the program catalog and member describe; deleted-lead paging
core.py      RequestCore: every call's throttle, token, retries, error mapping, call count
retry.py     the retry policies (TRANSIENT, TOKEN_EXPIRED, QUEUE_FULL, DOWNLOAD_RESUME)
error_map.py Marketo error codes and HTTP statuses -> error classes (errors.py)
download.py  the streaming, resumable, verified download (writer.py: its writer thread)
auth.py, throttle.py, clock.py, transport.py: token, call limits, Marketo's clock, DNS/TCP errors
"""

from . import errors
from .client import MarketoClient
from .deleted_leads import DeletedLead
from .exports import (
    ActivityFilter,
    AnyFilter,
    ExportFilter,
    ExportJob,
    ExportRequest,
    ExportType,
    ProgramMemberFilter,
)
from .models import ActivityType, DownloadResult, Event, LeadField, SmartList, StaticList
from .programs import Program
from .settings import ClientSettings

__all__ = [
    "ActivityFilter",
    "ActivityType",
    "AnyFilter",
    "ClientSettings",
    "DeletedLead",
    "DownloadResult",
    "Event",
    "ExportFilter",
    "ExportJob",
    "ExportRequest",
    "ExportType",
    "LeadField",
    "MarketoClient",
    "Program",
    "ProgramMemberFilter",
    "SmartList",
    "StaticList",
    "errors",
]
