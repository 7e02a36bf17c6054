"""Client settings."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "JOB_TIMEOUT",
    "MAX_CALLS_PER_WINDOW",
    "MAX_CONCURRENT",
    "POLL_INTERVAL",
    "QUEUE_FULL_BACKOFF",
    "RETRY_INITIAL_WAIT",
    "RETRY_MAX_WAIT",
    "WINDOW_SECONDS",
    "CallsPerWindow",
    "ClientSettings",
    "JobTimeout",
    "MaxConcurrent",
    "PollInterval",
    "RetryInitialWait",
    "RetryMaxWait",
    "WindowSeconds",
    "check_backoff",
    "instance_root",
    "is_loopback_host",
]

# The client's knobs that a project may set, each declared once here: default, bounds and help.
# ClientSettings, the project settings (marketo_assets.settings, environment variables) and the
# Dagster resource (defs/resources.py, run config) all use these types and defaults.
MAX_CALLS_PER_WINDOW = 80
CallsPerWindow = Annotated[
    int,
    Field(ge=1, le=100, description="Calls started per rate-limit window (Marketo: 100 / 20 s)"),
]
WINDOW_SECONDS = 20.0
WindowSeconds = Annotated[
    float, Field(gt=0, description="Length of Marketo's rate-limit window (s)")
]
MAX_CONCURRENT = 5
MaxConcurrent = Annotated[
    int, Field(ge=1, le=10, description="Calls in flight at once, at most (Marketo: 10)")
]
POLL_INTERVAL = 60.0
PollInterval = Annotated[
    float,
    Field(gt=0, description="Seconds between two status polls of an export job (Marketo: 60)"),
]
JOB_TIMEOUT = 3 * 3600.0
JobTimeout = Annotated[
    float, Field(gt=0, description="Cancel an export job still unfinished after this many s")
]
RETRY_INITIAL_WAIT = 1.0
RetryInitialWait = Annotated[
    float,
    Field(ge=0, description="First wait (s) before retrying a transient Marketo error; doubles"),
]
RETRY_MAX_WAIT = 60.0
RetryMaxWait = Annotated[float, Field(ge=0, description="Longest wait (s) between two retries")]
# Waits (s) when Marketo's export queue is full (1029), then the export fails.
QUEUE_FULL_BACKOFF = (60.0, 120.0, 240.0)


def check_backoff(value: tuple[float, ...]) -> tuple[float, ...]:
    if any(v < 0 for v in value):
        raise ValueError("queue_full_backoff delays must be >= 0")
    return value


# What Admin > Integration > Web Services shows after the instance root (REST Endpoint, Identity).
SHOWN_PATHS = ("", "/rest", "/identity")


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def instance_root(url: httpx.URL) -> str:
    """The instance root of a base URL given as Marketo shows it: without the `/rest` (REST
    Endpoint) or `/identity` (Identity) and without a trailing slash. ValueError (the text
    follows the setting's name) for any other path or for a user name/password in the URL."""
    root = f"{url.scheme}://{url.netloc.decode('ascii')}"
    if url.userinfo:
        raise ValueError(f"must not contain a user name or password: use {root}")
    path = url.path.rstrip("/")
    if path.lower() not in SHOWN_PATHS:
        raise ValueError(
            f"has the path {path!r}: use the instance root {root} (the REST Endpoint "
            f"{root}/rest or the Identity {root}/identity, as shown in Marketo Admin > "
            "Integration > Web Services, work too)"
        )
    return root


class ClientSettings(BaseModel):
    """Connection and behaviour settings of a MarketoClient (immutable).

    `base_url` is the instance root, e.g. `https://123-ABC-456.mktorest.com` (the REST Endpoint
    `.../rest` or the Identity `.../identity` that Marketo shows are reduced to it); the identity
    endpoint is `<base_url>/identity/oauth/token`. Plain http is allowed for loopback only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    max_calls_per_window: CallsPerWindow = MAX_CALLS_PER_WINDOW
    window_seconds: WindowSeconds = WINDOW_SECONDS
    max_concurrent: MaxConcurrent = MAX_CONCURRENT
    poll_interval: PollInterval = POLL_INTERVAL
    job_timeout: JobTimeout = JOB_TIMEOUT
    request_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    max_retry_seconds: float = Field(default=900.0, ge=0)
    queue_full_backoff: tuple[float, ...] = QUEUE_FULL_BACKOFF
    download_max_resumes: int = Field(default=10, ge=0)
    checksum_retries: int = Field(default=2, ge=0)
    token_refresh_margin: float = Field(default=60.0, ge=0)
    # Extra knobs (not in the original contract; defaults keep the contract's behaviour).
    retry_initial_wait: RetryInitialWait = RETRY_INITIAL_WAIT
    retry_max_wait: RetryMaxWait = RETRY_MAX_WAIT
    download_chunk_size: int = Field(default=1 << 20, ge=1 << 16)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip()
        try:
            url = httpx.URL(value)
        except Exception as exc:
            raise ValueError(f"base_url is not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                "base_url must be an absolute http(s) URL, e.g. https://x.mktorest.com"
            )
        if url.scheme != "https" and not is_loopback_host(url.host):
            raise ValueError(
                "base_url must use https (plain http is only allowed for loopback hosts such "
                "as 127.0.0.1 or localhost)"
            )
        if url.query or url.fragment:
            raise ValueError("base_url must not contain a query string or fragment")
        try:
            return instance_root(url)
        except ValueError as exc:
            raise ValueError(f"base_url {exc}") from None

    @field_validator("client_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret.strip():
            raise ValueError("client_secret is empty: set the LaunchPoint service's secret")
        if secret != secret.strip():
            raise ValueError(
                "client_secret has leading or trailing whitespace (a copy-paste error?): remove it"
            )
        return value

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError(
                "client_id is empty or has leading/trailing whitespace: set the LaunchPoint "
                "service's client id"
            )
        return value

    @field_validator("queue_full_backoff")
    @classmethod
    def _check_backoff(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return check_backoff(value)
