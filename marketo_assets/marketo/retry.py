"""Every retry of the client, as named tenacity policies (factories of tenacity.Retrying).

TRANSIENT        every API call and the file probe: HTTP 5xx/408/429, connection errors,
                 604/606/608/611/614/615/713, an answer without `result`. Exponential backoff
                 with jitter, bounded by max_attempts and max_retry_seconds.
TOKEN_EXPIRED    601/602 on any call, the file download included: a new token, then the same
                 call again at once; AUTH_RETRIES times in a row at most.
QUEUE_FULL       1029 "Too many jobs in queue": waits along queue_full_backoff, then
                 QueueFullError with the time waited.
DOWNLOAD_RESUME  a broken file transfer: resumed with Range at once when the break brought new
                 bytes, with exponential backoff when it did not; download_max_resumes at most.

Nesting for an API call: QUEUE_FULL( TRANSIENT( TOKEN_EXPIRED( one request ))).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, Protocol

import tenacity

from .errors import QueueFullError, TokenRefusedError, TransientError
from .settings import ClientSettings

__all__ = [
    "AUTH_RETRIES",
    "DOWNLOAD_RESUME",
    "QUEUE_FULL",
    "TOKEN_EXPIRED",
    "TRANSIENT",
    "Resumable",
]

# More than once: tokens may be revoked at any moment (also right after we fetched one); a
# service whose fresh tokens keep being refused fails with AuthenticationError.
AUTH_RETRIES = 3

Hook = Callable[[tenacity.RetryCallState], None]


def _pause(sleep: Callable[[float], None]) -> Callable[[float], None]:
    """`sleep`, not called for no wait (resumes and token refreshes go at once)."""

    def pause(seconds: float) -> None:
        if seconds > 0:
            sleep(seconds)

    return pause


def TRANSIENT(
    settings: ClientSettings, *, sleep: Callable[[float], None], before_sleep: Hook | None = None
) -> tenacity.Retrying:
    def stop(rs: tenacity.RetryCallState) -> bool:
        if rs.attempt_number >= settings.max_attempts:
            return True
        elapsed = max(rs.seconds_since_start or 0.0, rs.idle_for)
        return elapsed + (rs.upcoming_sleep or 0.0) > settings.max_retry_seconds

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientError),
        stop=stop,
        wait=tenacity.wait_exponential_jitter(
            multiplier=settings.retry_initial_wait,
            max=settings.retry_max_wait,
            jitter=settings.retry_initial_wait,
        ),
        sleep=_pause(sleep),
        before_sleep=before_sleep,
        reraise=True,
    )


def TOKEN_EXPIRED() -> tenacity.Retrying:
    """The call raising TokenRefusedError must have dropped the refused token (the next try
    then fetches a new one); the last refusal reaches the caller as AuthenticationError."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TokenRefusedError),
        stop=tenacity.stop_after_attempt(AUTH_RETRIES + 1),
        sleep=_pause(lambda _: None),
        reraise=True,
    )


def QUEUE_FULL(
    schedule: tuple[float, ...], *, sleep: Callable[[float], None], before_sleep: Hook
) -> tenacity.Retrying:
    def wait(rs: tenacity.RetryCallState) -> float:
        n = rs.attempt_number
        return float(schedule[n - 1]) if n <= len(schedule) else 0.0

    def give_up(rs: tenacity.RetryCallState) -> NoReturn:
        exc = rs.outcome.exception() if rs.outcome else None
        message = exc.message if isinstance(exc, QueueFullError) else str(exc)
        raise QueueFullError(message, waited_seconds=rs.idle_for)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(QueueFullError),
        stop=tenacity.stop_after_attempt(len(schedule) + 1),
        wait=wait,
        sleep=_pause(sleep),
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )


class Resumable(Protocol):
    """A file transfer DOWNLOAD_RESUME drives."""

    resumes: int  # resumes so far (continuing a stopped process's leftover counts as one)
    stalled: int  # breaks in a row that brought no new bytes

    def resuming(self, rs: tenacity.RetryCallState) -> None:
        """Called before each resume."""

    def give_up(self, rs: tenacity.RetryCallState) -> NoReturn:
        """Called when no resume is left; raises."""


def DOWNLOAD_RESUME(
    settings: ClientSettings, transfer: Resumable, *, sleep: Callable[[float], None]
) -> tenacity.Retrying:
    def wait(rs: tenacity.RetryCallState) -> float:
        # A break after new bytes resumes at once (the server answers; waiting would only slow
        # a big download); breaks without progress back off exponentially.
        if not transfer.stalled:
            return 0.0
        backoff = settings.retry_initial_wait * 2 ** min(transfer.stalled - 1, 6)
        return float(min(backoff, settings.retry_max_wait))

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientError),
        stop=lambda rs: transfer.resumes >= settings.download_max_resumes,
        wait=wait,
        sleep=_pause(sleep),
        before_sleep=transfer.resuming,
        retry_error_callback=transfer.give_up,
    )
