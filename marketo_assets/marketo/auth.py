"""Access-token management for the Marketo identity endpoint (thread-safe)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .errors import AuthenticationError, TransientError
from .settings import ClientSettings

__all__ = ["IDENTITY_PATH", "TokenManager"]

log = logging.getLogger("marketo_assets.marketo")
IDENTITY_PATH = "/identity/oauth/token"


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
        self.auth_calls = 0

    def __repr__(self) -> str:
        state = "valid" if self._token and self._clock() < self._expires_at else "none"
        return f"TokenManager(client_id={self._settings.client_id!r}, token={state})"

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            reason = "initial" if self._token is None else "refresh"
            return self._fetch(reason)

    def invalidate(self, token: str, reason: str) -> str:
        """Drop `token` (refused by Marketo with 601/602) and return a fresh one."""
        with self._lock:
            if self._token is not None and self._token != token:
                return self._token  # another thread already re-authenticated
            self._token = None
            return self._fetch(reason)

    def _fetch(self, reason: str) -> str:
        s = self._settings
        form = {
            "grant_type": "client_credentials",
            "client_id": s.client_id,
            "client_secret": s.client_secret.get_secret_value(),
        }
        self.auth_calls += 1
        started = self._clock()
        try:
            resp = self._http.post(IDENTITY_PATH, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise TransientError(
                f"Could not reach the Marketo identity endpoint ({type(exc).__name__}); "
                "check the network and base_url"
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
            raise TransientError(
                f"Marketo identity endpoint answered HTTP {resp.status_code} without an "
                "access_token; will retry",
                http_status=resp.status_code,
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
