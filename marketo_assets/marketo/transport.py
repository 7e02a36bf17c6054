"""The client's HTTP transport, and failures below HTTP (DNS, connection, TLS) mapped to the
client's errors."""

from __future__ import annotations

import os
import socket
import ssl
import threading

import httpx

from .errors import HostNotFoundError, MarketoError, TransientError

__all__ = ["http_transport", "transport_failure", "verified_context"]

_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def http_transport(base_url: str) -> httpx.HTTPTransport:
    """httpx's default transport for a client of `base_url`, whose TLS context is built once per
    process (`verified_context`), not per client: reading the CA bundle takes ~25 ms. A plain
    http:// URL reads none: its context trusts no certificate (all requests are to base_url)."""
    if httpx.URL(base_url).scheme == "https":
        return httpx.HTTPTransport(verify=verified_context())
    return httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


def verified_context() -> ssl.SSLContext:
    """httpx's default context (verify=True, trust_env=True: certifi's CAs, or SSL_CERT_FILE /
    SSL_CERT_DIR), shared by this process's clients while those variables are unchanged."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS[key] = httpx.create_ssl_context()
        return _CONTEXTS[key]


def _dns_error(exc: BaseException) -> socket.gaierror | None:
    """The socket.gaierror behind an httpx error (httpx.ConnectError <- httpcore.ConnectError
    <- gaierror), if a DNS lookup is what failed."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, socket.gaierror):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def transport_failure(exc: httpx.TransportError, host: str, what: str) -> MarketoError:
    """The error to raise for a request to `host` that failed below HTTP: HostNotFoundError
    (not retried) when the name does not resolve, else a TransientError (retried within the
    budget): refused connections, resets, timeouts and temporary DNS failures (EAI_AGAIN)."""
    dns = _dns_error(exc)
    if dns is not None and dns.errno != socket.EAI_AGAIN:
        return HostNotFoundError(host)
    if dns is not None:
        return TransientError(f"{what}: DNS lookup of {host!r} failed for now (will retry)")
    return TransientError(f"{what}: {type(exc).__name__} (connection problem)")
