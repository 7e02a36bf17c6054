"""Client settings."""

from __future__ import annotations

import ipaddress

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["ClientSettings", "instance_root", "is_loopback_host"]

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
    max_calls_per_window: int = Field(default=80, ge=1)
    window_seconds: float = Field(default=20.0, gt=0)
    max_concurrent: int = Field(default=5, ge=1, le=10)
    poll_interval: float = Field(default=60.0, ge=0)
    job_timeout: float = Field(default=3 * 3600.0, gt=0)
    request_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    max_retry_seconds: float = Field(default=900.0, ge=0)
    queue_full_backoff: tuple[float, ...] = (60, 120, 240)
    download_max_resumes: int = Field(default=10, ge=0)
    checksum_retries: int = Field(default=2, ge=0)
    token_refresh_margin: float = Field(default=60.0, ge=0)
    # Extra knobs (not in the original contract; defaults keep the contract's behaviour).
    retry_initial_wait: float = Field(default=1.0, ge=0)
    retry_max_wait: float = Field(default=60.0, ge=0)
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
        if any(v < 0 for v in value):
            raise ValueError("queue_full_backoff delays must be >= 0")
        return value
