"""Marketo bulk lead export client (httpx; no dagster import)."""

from . import errors
from .client import MarketoClient
from .exports import ExportFilter, ExportJob, ExportRequest
from .models import DownloadResult, Event, LeadField, SmartList, StaticList
from .settings import ClientSettings

__all__ = [
    "ClientSettings",
    "DownloadResult",
    "Event",
    "ExportFilter",
    "ExportJob",
    "ExportRequest",
    "LeadField",
    "MarketoClient",
    "SmartList",
    "StaticList",
    "errors",
]
