"""Is a Marketo export filter enabled for this subscription (see extract.filter_status)? Asked
by the lead-changes schedule (updatedAt) and the smart-list sensor (smartListId)."""

from datetime import timedelta
from typing import Any

from marketo_assets.extract import FilterStatus
from marketo_assets.extract.capabilities import filter_status as remembered_status
from marketo_assets.marketo import ExportFilter

from .resources import MarketoResource

# A sensor or schedule tick must end within a minute: a small retry budget for its calls.
TICK_CLIENT: dict[str, Any] = {
    "max_attempts": 3,
    "max_retry_seconds": 20.0,
    "request_timeout": 20.0,
}


def filter_status(
    marketo: MarketoResource,
    capability: str,
    probe: ExportFilter,
    recheck: timedelta | None,
    log: Any = None,  # a Dagster context.log
    inconclusive_ok: bool = False,
) -> FilterStatus | None:
    def ask() -> bool:
        with marketo.client(**TICK_CLIENT) as client:
            return client.supports_filter(probe)

    return remembered_status(marketo.capabilities(), capability, ask, recheck, log, inconclusive_ok)
