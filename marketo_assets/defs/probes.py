"""Is a Marketo export filter enabled for this subscription (not answered with 1035)? Asked by
the lead-changes schedule (updatedAt) and the smart-list sensor (smartListId) before they
request runs: remembered in the capability file, probed (a job created and cancelled, no quota
used) when unknown or when MARKETO_FILTER_RECHECK_HOURS passed."""

from datetime import timedelta
from typing import Any

from marketo_assets.extract import FilterStatus
from marketo_assets.marketo import ExportFilter, errors

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
    """The remembered status of `capability` ("updatedAt", "smartList"), probed with `probe`
    first when needed. With `inconclusive_ok`, a probe failing for another reason than 1035
    returns None (unknown) instead of raising."""
    store = marketo.capabilities()
    if store.needs_check(capability, recheck):
        try:
            with marketo.client(**TICK_CLIENT) as client:
                supported = client.supports_filter(probe)
        except errors.MarketoAPIError as exc:
            if not inconclusive_ok:
                raise
            if log:  # not a 1035: the probe says nothing about the filter
                log.warning(f"{capability} filter probe inconclusive: {exc}")
            return None
        message = None if supported else f"Marketo answered 1035 to a {capability} probe job"
        store.record(capability, supported, source="probe", message=message)
        if log:
            log.info(f"{capability} filter enabled for this subscription: {supported}")
    return store.get(capability)
