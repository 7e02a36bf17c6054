"""Typed errors raised by the Marketo client.

Every message says what happened and what to do about it. No message, attribute or repr ever
contains the client secret or an access token.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

CHICAGO = ZoneInfo("America/Chicago")

__all__ = [
    "AuthenticationError",
    "ChecksumMismatchError",
    "DailyCallLimitError",
    "ExportFileExpiredError",
    "ExportJobCancelledError",
    "ExportJobFailedError",
    "ExportTimeoutError",
    "HostNotFoundError",
    "InvalidExportIdError",
    "InvalidFieldsError",
    "InvalidRequestError",
    "MarketoAPIError",
    "MarketoError",
    "QueueFullError",
    "QuotaExceededError",
    "TokenRefusedError",
    "TransientError",
    "UnsupportedFilterError",
]


def _fmt_reset(reset_at: datetime) -> str:
    local = reset_at.astimezone(CHICAGO)
    utc = reset_at.astimezone(ZoneInfo("UTC"))
    return (
        f"{local.strftime('%Y-%m-%d %H:%M %Z')} (America/Chicago) = "
        f"{utc.strftime('%Y-%m-%d %H:%M')} UTC"
    )


class MarketoError(Exception):
    """Base class of every error raised by the Marketo client."""


class AuthenticationError(MarketoError):
    """The identity endpoint refused the credentials, or a fresh token was refused too."""


class TokenRefusedError(AuthenticationError):
    """Marketo refused an access token (601 invalid, 602 expired). The client fetches a new
    token and repeats the call (retry policy TOKEN_EXPIRED); this error reaches the caller only
    when `tries` fresh tokens in a row were refused."""

    def __init__(self, code: str, message: str, call: str, tries: int = 3):
        self.code = code
        super().__init__(
            f"Marketo refused {tries} freshly issued access tokens in a row ({code}: {message}) "
            f"on {call}. Check that the LaunchPoint service and its API-only user are active"
        )


class HostNotFoundError(MarketoError):
    """The base URL's host name does not exist in DNS. Not retried: a retry cannot fix it."""

    def __init__(self, host: str):
        self.host = host
        super().__init__(
            f"The Marketo host {host!r} does not resolve (DNS: no such host); nothing was sent. "
            "Check MARKETO_BASE_URL (base_url): it must be your instance's REST host, e.g. "
            "https://123-ABC-456.mktorest.com (Marketo Admin > Integration > Web Services). "
            f"If it is right, check this machine's DNS and network (e.g. `nslookup {host}`; "
            "a VPN or proxy may be needed)"
        )


class InvalidRequestError(MarketoError, ValueError):
    """A request was rejected by client-side validation, before any call was made."""


class InvalidExportIdError(InvalidRequestError):
    """An export id that is not a UUID (from Marketo's answer, a ledger or a caller). It is
    never put into a URL path or a file name."""

    def __init__(self, export_id: object, source: str):
        shown = repr(export_id)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        self.source = source
        super().__init__(
            f"Export id {shown} from {source} is not a UUID (Marketo export ids look like "
            "ce45a7a1-f19d-4ce2-882c-a3c795a3d4fb); refusing to use it in a URL or a file name. "
            "If Marketo answered it, report the response to Marketo Support; if it came from "
            "the export ledger, the ledger file was changed by hand"
        )


class TransientError(MarketoError):
    """A temporary failure (HTTP 5xx, connection error, 604/606/608/611/615/713, no `result`).

    Raised to the caller only once the retry budget (max_attempts / max_retry_seconds) is spent.
    """

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class MarketoAPIError(MarketoError):
    """Marketo answered `success: false` with an error code the client does not handle itself."""

    def __init__(self, code: str, message: str, *, hint: str | None = None):
        self.code = str(code)
        self.message = message
        text = f"Marketo error {self.code}: {message}"
        if hint:
            text += f". {hint}"
        super().__init__(text)


class InvalidFieldsError(MarketoAPIError):
    """Marketo rejected one or more `fields` of an export (1003)."""

    def __init__(self, fields: Iterable[str], message: str, code: str = "1003"):
        self.fields = list(fields)
        shown = ", ".join(self.fields) if self.fields else "(not named by Marketo)"
        super().__init__(
            code,
            message,
            hint=(
                f"Invalid fields: {shown}. Use describe_fields() (describe2) to list the REST "
                "field names available in this instance and request only those"
            ),
        )


class UnsupportedFilterError(MarketoAPIError):
    """The filter type is not enabled for this subscription (1035)."""

    def __init__(self, filter_type: str | None, message: str, code: str = "1035"):
        self.filter_type = filter_type
        name = filter_type or "this filter type"
        super().__init__(
            code,
            message,
            hint=(
                f"The {name} filter is not enabled for this Marketo subscription. Ask Marketo "
                "Support to enable it, or export with the createdAt filter instead"
            ),
        )


class QuotaExceededError(MarketoAPIError):
    """The daily bulk-export quota is used up (1029 "Export daily quota ... exceeded")."""

    def __init__(self, message: str, reset_at: datetime, code: str = "1029"):
        self.reset_at = reset_at
        super().__init__(
            code,
            message,
            hint=(
                "The daily bulk export quota is used up; Marketo accepts new export jobs again "
                f"after the reset at {_fmt_reset(reset_at)}. Do not retry before then (or buy "
                "more quota)"
            ),
        )


class DailyCallLimitError(MarketoAPIError):
    """The daily REST call limit is reached (607)."""

    def __init__(self, message: str, reset_at: datetime, code: str = "607"):
        self.reset_at = reset_at
        super().__init__(
            code,
            message,
            hint=(
                "The daily REST API call limit of this instance is reached; calls work again "
                f"after the reset at {_fmt_reset(reset_at)}"
            ),
        )


class QueueFullError(MarketoAPIError):
    """The subscription's export queue stayed full (1029 "Too many jobs ... in queue")."""

    def __init__(self, message: str, *, waited_seconds: float = 0.0, code: str = "1029"):
        self.waited_seconds = waited_seconds
        super().__init__(
            code,
            message,
            hint=(
                f"The bulk export queue (10 jobs, shared by the whole subscription) stayed full "
                f"after waiting {waited_seconds:.0f} s. Try again later, or cancel jobs that are "
                "no longer needed"
            ),
        )


class ExportJobFailedError(MarketoError):
    """Marketo reports the export job as Failed."""

    def __init__(self, export_id: str, error_msg: str | None):
        self.export_id = export_id
        self.error_msg = error_msg
        super().__init__(
            f"Export job {export_id} failed in Marketo: {error_msg or '(no errorMsg given)'}. "
            "A failed job cannot be restarted: create a new export job"
        )


class ExportJobCancelledError(MarketoError):
    """The export job was cancelled (by this client or someone else)."""

    def __init__(self, export_id: str):
        self.export_id = export_id
        super().__init__(
            f"Export job {export_id} was cancelled. Create a new export job to get the data"
        )


class ExportFileExpiredError(MarketoError):
    """The export file is gone (HTTP 404 on file.json)."""

    def __init__(self, export_id: str, detail: str | None = None):
        self.export_id = export_id
        self.detail = detail
        text = (
            f"The file of export job {export_id} is not available (HTTP 404). Marketo keeps "
            "export files for 7 days only: re-create the export job to get the data again"
        )
        if detail:
            text += f" (Marketo said: {detail})"
        super().__init__(text)


class ExportTimeoutError(MarketoError):
    """The job did not finish within job_timeout; it has been cancelled."""

    def __init__(self, export_id: str, timeout: float, last_status: str | None, cancelled: bool):
        self.export_id = export_id
        self.timeout = timeout
        self.last_status = last_status
        self.cancelled = cancelled
        what = "it was cancelled to free its queue slot" if cancelled else "cancelling it failed"
        super().__init__(
            f"Export job {export_id} did not complete within {timeout:.0f} s (last status "
            f"{last_status}); {what}. The subscription's export queue may be busy: retry later "
            "or raise job_timeout"
        )


class ChecksumMismatchError(MarketoError):
    """The downloaded file does not match fileSize / fileChecksum, even after re-downloads."""

    def __init__(
        self,
        export_id: str,
        *,
        expected_size: int | None,
        actual_size: int,
        expected_sha256: str | None,
        actual_sha256: str,
        attempts: int,
        too_long: bool = False,
    ):
        self.export_id = export_id
        self.expected_size = expected_size
        self.actual_size = actual_size
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        self.attempts = attempts
        self.too_long = too_long
        if too_long:
            sent = (
                f"a body of {actual_size} bytes"
                if expected_size is not None and actual_size > expected_size
                else "more"
            )
            super().__init__(
                f"The file of export job {export_id} is corrupt after {attempts} download(s): "
                f"Marketo announced {expected_size} bytes (fileSize) but the server sent {sent}; "
                "nothing past the announced size was read. The partial file was deleted; "
                "re-create the export job (re-run the partition), and report it to Marketo "
                "Support if it happens again"
            )
            return
        super().__init__(
            f"The file of export job {export_id} is corrupt after {attempts} download(s): "
            f"got {actual_size} bytes sha256:{actual_sha256}, Marketo announced "
            f"{expected_size} bytes sha256:{expected_sha256}. The partial file was deleted; "
            "retry the download later or re-create the export job"
        )
