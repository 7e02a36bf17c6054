"""Failures below HTTP (DNS, connection, TLS) mapped to the client's errors."""

from __future__ import annotations

import socket

import httpx

from .errors import HostNotFoundError, MarketoError, TransientError

__all__ = ["transport_failure"]


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
