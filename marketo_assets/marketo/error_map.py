"""Marketo's answers mapped to typed errors: one table from error codes and HTTP statuses to
error classes and the retry policy (retry.py) that handles each, or none."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from .errors import (
    DailyCallLimitError,
    InvalidFieldsError,
    MarketoAPIError,
    MarketoError,
    QueueFullError,
    QuotaExceededError,
    TokenRefusedError,
    TransientError,
    UnsupportedFilterError,
)
from .retry import AUTH_RETRIES

__all__ = ["RULES", "Failure", "Rule", "check_envelope", "error_for", "first_error", "transient"]


@dataclass(frozen=True)
class Failure:
    """A `success: false` answer and what the call asked for."""

    code: str
    message: str
    method: str
    path: str
    reset_at: datetime  # the next quota reset (Marketo's clock)
    fields: list[str] = field(default_factory=list)
    filter_kind: str | None = None

    @property
    def lower(self) -> str:
        return self.message.lower()


@dataclass(frozen=True)
class Rule:
    """Marketo error `code` (when `applies` to its message) -> the error `build` makes (None:
    the call succeeded), handled by the retry policy named in `retry` (None: not retried)."""

    code: str
    build: Callable[[Failure], MarketoError] | None
    retry: str | None = None
    applies: Callable[[Failure], bool] = lambda f: True


def _transient(f: Failure) -> MarketoError:
    return TransientError(f"Marketo error {f.code}: {f.message} ({f.method} {f.path})", code=f.code)


def _token_refused(f: Failure) -> MarketoError:
    return TokenRefusedError(f.code, f.message, f"{f.method} {f.path}", tries=AUTH_RETRIES)


def _bad_fields(f: Failure) -> MarketoError:
    bad = [n for n in f.fields if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w.])", f.message)]
    if not bad and ":" in f.message:
        tail = f.message.split(":", 1)[1]
        bad = [p.strip(" '\"[]") for p in re.split(r"[,\s]+", tail) if p.strip(" '\"[]")]
    return InvalidFieldsError(bad, f.message, code=f.code)


def _queue_full(f: Failure) -> bool:
    return "too many jobs" in f.lower or ("queue" in f.lower and "quota" not in f.lower)


_PERMISSION_HINT = (
    "The API user lacks a permission (Read-Only Lead / Asset) or the IP is not allowed; fix the "
    "role of the API-only user"
)

RULES: tuple[Rule, ...] = (
    Rule("601", _token_refused, "TOKEN_EXPIRED"),  # access token invalid
    Rule("602", _token_refused, "TOKEN_EXPIRED"),  # access token expired
    *(Rule(c, _transient, "TRANSIENT") for c in ("604", "606", "608", "611", "614", "615", "713")),
    Rule("603", lambda f: MarketoAPIError(f.code, f.message, hint=_PERMISSION_HINT)),
    Rule("607", lambda f: DailyCallLimitError(f.message, reset_at=f.reset_at)),
    Rule("1003", _bad_fields, applies=lambda f: "field" in f.lower),
    # 1029 has three meanings, told apart by the message.
    Rule("1029", None, applies=lambda f: "already queued" in f.lower),
    Rule("1029", lambda f: QueueFullError(f.message), "QUEUE_FULL", applies=_queue_full),
    Rule(
        "1029",
        lambda f: QuotaExceededError(f.message, reset_at=f.reset_at),
        applies=lambda f: "quota" in f.lower,
    ),
    Rule("1035", lambda f: UnsupportedFilterError(f.filter_kind, f.message, code=f.code)),
)


def error_for(failure: Failure) -> MarketoError | None:
    """The error a `success: false` answer means, or None when it means success (1029 "Job
    already queued"). Unknown codes are MarketoAPIError (not retried)."""
    if not failure.code:
        return TransientError(
            f"{failure.method} {failure.path}: success=false without an error code"
        )
    for rule in RULES:
        if rule.code == failure.code and rule.applies(failure):
            return rule.build(failure) if rule.build is not None else None
    return MarketoAPIError(failure.code, failure.message)


def transient(status: int) -> bool:
    """HTTP statuses retried by TRANSIENT: 5xx, 408 Request Timeout, 429 Too Many Requests."""
    return status >= 500 or status in (408, 429)


def first_error(env: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of an envelope's first error; ("", "") if it names none."""
    errs = env.get("errors") or []
    if errs and isinstance(errs, list):
        first = errs[0]
        if isinstance(first, dict):
            return str(first.get("code", "")), str(first.get("message", ""))
        return "", str(first)
    return "", ""


def check_envelope(resp: httpx.Response, method: str, path: str) -> dict[str, Any]:
    """The JSON envelope of an answer; TransientError for a retryable HTTP status or a body that
    is not an envelope, MarketoAPIError for another HTTP error without one."""
    status = resp.status_code
    if transient(status):
        raise TransientError(f"{method} {path}: HTTP {status}", http_status=status)
    try:
        env = resp.json()
    except ValueError:
        env = None
    if status >= 400:
        if isinstance(env, dict) and env.get("success") is False:
            return env
        snippet = resp.text[:200].strip() if resp.content else ""
        raise MarketoAPIError(str(status), f"HTTP {status} for {method} {path}: {snippet}")
    if not isinstance(env, dict):
        raise TransientError(
            f"{method} {path}: HTTP {status} with a body that is not a JSON envelope",
            http_status=status,
        )
    return env
