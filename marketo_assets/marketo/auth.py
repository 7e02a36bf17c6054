"""Access-token management for the Marketo identity endpoint (thread-safe)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .errors import AuthenticationError, TransientError
from .settings import ClientSettings
from .transport import transport_failure

__all__ = ["IDENTITY_PATH", "RedactingFilter", "TokenManager", "install_log_redaction"]

log = logging.getLogger("marketo_assets.marketo")
IDENTITY_PATH = "/identity/oauth/token"
_SECRET_PARAMS = re.compile(r"((?:client_secret|access_token)=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    """Masks `client_secret=` / `access_token=` values in log records (e.g. httpx's request
    line, which prints the full URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            if any(_SECRET_PARAMS.search(str(a)) for a in args):
                record.args = tuple(
                    redact(str(a)) if _SECRET_PARAMS.search(str(a)) else a for a in args
                )
        if isinstance(record.msg, str) and _SECRET_PARAMS.search(record.msg):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    """Attach RedactingFilter to the httpx/httpcore loggers (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def _describe(resp: httpx.Response, body: Any, secret: str) -> str:
    """What came back, short and without secrets: the JSON keys (and a Marketo error), or
    the start of the text."""
    if isinstance(body, dict):
        text = f"a JSON object with keys {sorted(map(str, body))[:12]}"
        errs = body.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            text += f", error {errs[0].get('code')}: {str(errs[0].get('message'))[:80]}"
        return redact(text).replace(secret, "***")
    if body is not None:
        return f"JSON {type(body).__name__}"
    location = resp.headers.get("location")
    if location:
        return redact(f"a redirect to {location[:120]}").replace(secret, "***")
    excerpt = " ".join(resp.text[:120].split())
    if not excerpt:
        return "an empty body"
    return redact(f"a body starting {excerpt!r}").replace(secret, "***")


class TokenManager:
    """Gets a token from `/identity/oauth/token` and refreshes it before it expires.

    Credentials are sent in a POST form body (never in the URL, so they cannot end up in access
    or httpx logs). Marketo returns the *same* token with its remaining life when asked before
    expiry, so a token that is already inside the refresh margin is kept until it expires.
    """

    def __init__(
        self,
        http: httpx.Client,
        settings: ClientSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_auth: Callable[[dict[str, Any]], None] | None = None,
    ):
        self._http = http
        self._settings = settings
        self._clock = clock
        self._on_auth = on_auth
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._refused_reason: str | None = None  # the code that made us drop the last token
        self._style = "form"  # "form" (POST body) or "query" (fallback, see _post_identity)
        self.auth_calls = 0
        install_log_redaction()

    def __repr__(self) -> str:
        state = "valid" if self._token and self._clock() < self._expires_at else "none"
        return f"TokenManager(client_id={self._settings.client_id!r}, token={state})"

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            reason = self._refused_reason or ("initial" if self._token is None else "refresh")
            token = self._fetch(reason)
            self._refused_reason = None
            return token

    def refused(self, token: str, reason: str) -> None:
        """Marketo refused `token` (601/602): drop it, so that the next token() fetches a new
        one (unless another thread has already replaced it)."""
        with self._lock:
            if self._token == token:
                self._token = None
                self._refused_reason = reason

    def _post_identity(self, form: dict[str, str]) -> httpx.Response:
        """POST the credentials as a form body. Servers that read only the query string (the
        OpenAPI spec puts the POST parameters there) answer 400 invalid_request: then send them
        in the query string, once and from then on (log lines are redacted, see
        RedactingFilter)."""
        headers = {"Accept": "application/json"}
        if self._style == "form":
            self.auth_calls += 1
            resp = self._http.post(IDENTITY_PATH, data=form, headers=headers)
            if resp.status_code != 400 or "invalid_request" not in resp.text:
                return resp
            log.info("marketo: identity endpoint ignores form bodies; using query parameters")
            self._style = "query"
        self.auth_calls += 1
        return self._http.post(IDENTITY_PATH, params=form, headers=headers)

    def _fetch(self, reason: str) -> str:
        s = self._settings
        form = {
            "grant_type": "client_credentials",
            "client_id": s.client_id,
            "client_secret": s.client_secret.get_secret_value(),
        }
        started = self._clock()
        try:
            resp = self._post_identity(form)
        except httpx.TransportError as exc:
            raise transport_failure(
                exc,
                self._http.base_url.host,
                "Could not reach the Marketo identity endpoint (check the network and base_url)",
            ) from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientError(
                f"Marketo identity endpoint answered HTTP {resp.status_code}; will retry",
                http_status=resp.status_code,
            )
        body: Any
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code in (400, 401, 403) or (
            isinstance(body, dict) and "error" in body and "access_token" not in body
        ):
            err = desc = None
            if isinstance(body, dict):
                err, desc = body.get("error"), body.get("error_description")
            raise AuthenticationError(
                f"Marketo refused the client credentials for client_id {s.client_id!r} "
                f"(HTTP {resp.status_code}: {err or 'error'}: {desc or 'no description'}). "
                "Check client_id and client_secret of the LaunchPoint custom service and that "
                "its API-only user is active"
            )
        if not isinstance(body, dict) or not body.get("access_token"):
            # Not an identity endpoint (a wrong base URL, a proxy or login page): no retry.
            raise AuthenticationError(
                f"POST {s.base_url}{IDENTITY_PATH} answered HTTP {resp.status_code} "
                f"({resp.headers.get('content-type') or 'no content type'}) without an "
                f"access_token: {_describe(resp, body, form['client_secret'])}. This is not "
                "Marketo's identity endpoint: set MARKETO_BASE_URL (base_url) to the instance "
                "root, e.g. https://123-ABC-456.mktorest.com (Marketo Admin > Integration > "
                "Web Services)"
            )
        token = str(body["access_token"])
        try:
            expires_in = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600.0
        now = self._clock()
        margin = s.token_refresh_margin
        same = token == self._token
        self._token = token
        self._expires_at = now + expires_in
        if expires_in > margin and not same:
            self._refresh_at = now + expires_in - margin
        else:
            # Inside the margin already (Marketo hands back the same token with its remaining
            # life): asking again before expiry would only return it again, so keep it until
            # it expires and rely on 601/602 handling after that.
            self._refresh_at = now + max(expires_in - 1.0, 0.0)
        log.debug("marketo: got access token (%s), expires in %.0f s", reason, expires_in)
        if self._on_auth is not None:
            self._on_auth(
                {
                    "reason": reason,
                    "expires_in": expires_in,
                    "seconds": round(now - started, 3),
                    "auth_calls": self.auth_calls,
                }
            )
        return token
